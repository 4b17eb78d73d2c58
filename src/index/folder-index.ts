// One folder's part of the index: local and global records, change log, block map, peer sequences, counters.

import { randomBytes } from 'node:crypto';
import type { Key } from 'lmdb';
import { FerryError } from '../errors.js';
import { applyPathChange, countsOf, emptyFolderState, isNeeded, type FolderState, type PathState } from './counters.js';
import { beneathRanges, checkIndexPath, folderRange, hashKey, hashRange, isDigestKey, isLongPath, normaliseDirectory, pathEntriesRange, pathKey, pathOfKey, remoteDevice } from './keys.js';
import { decodeRecord, decodeRemote, decodeStat, encodeRecord, encodeRemote, isLocalMarker, storedGlobal, storedPath, type LocalMarker } from './record-codec.js';
import { compareVersions, conflictWinner, supersedes, type FileRecord, type VersionVector } from './records.js';
import type { IndexDbs } from './schema.js';
import {
  INDEX_ID_BYTES,
  type BlockLocation,
  type FolderCounts,
  type FolderIndex,
  type LocalStat,
  type NeededPath,
  type NewFileRecord,
  type PutLocalOptions,
} from './types.js';

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Remote entries deleted per transaction by clearRemote. */
const CLEAR_BATCH_ENTRIES = 10_000;

/** Stored value of the `peers` database: [sequence, index ID | null] (a bare number is read as a sequence). */
type StoredPeer = [sequence: number, indexId: Uint8Array | null];

function readPeer(stored: unknown): StoredPeer {
  if (Array.isArray(stored)) return [stored[0] as number, (stored[1] as Uint8Array | null) ?? null];
  return [typeof stored === 'number' ? stored : 0, null];
}

/** What a folder index needs from the store that owns the environment. */
export interface IndexContext {
  /** The databases, or a CLOSED error when the store is not open. */
  dbs(): IndexDbs;
  /** Runs `action` in one asynchronous write transaction; resolves when it is durable. */
  write<T>(action: () => T): Promise<T>;
  /** Inside a write transaction, last: `records` records were written (counted towards the next repack, repack.ts). */
  churn?(records: number): void;
  /**
   * A generator begins reading the databases (lazily, across its caller's awaits); the function returned is called when
   * it ends. The store keeps an environment that a background repack replaced open until its readers ended.
   */
  reader?(): () => void;
  /** A scan begins: no background repack starts until the function returned is called. */
  scanning?(): () => void;
}

type RecordDb = 'local' | 'global';

export class LmdbFolderIndex implements FolderIndex {
  private cachedIndexId: Buffer | undefined;

  /**
   * @param prefix the short key that stands for the folder in every per-folder database (see
   *   store.ts folderPrefix): 2–4 bytes instead of the folder ID's 40 in each of a file's entries.
   */
  constructor(
    readonly folderId: string,
    private readonly prefix: string,
    private readonly context: IndexContext,
  ) {}

  getLocal(path: string): FileRecord | undefined {
    return this.read('local', path);
  }

  getLocalStat(path: string): LocalStat | undefined {
    const stored: unknown = this.context.dbs().local.get([this.prefix, pathKey(path)]);
    return stored === undefined ? undefined : decodeStat(path, stored);
  }

  async putLocal(records: NewFileRecord[], options: PutLocalOptions = {}): Promise<FileRecord[]> {
    const updateGlobal = options.updateGlobal ?? true;
    for (const record of records) checkRecord(record);
    return this.context.write(() => {
      const dbs = this.context.dbs();
      const batch = new PathBatch(this, this.readState());
      const stored: FileRecord[] = [];
      for (const record of records) {
        const before = batch.pathState(record.path);
        const local = normalise({ ...record, sequence: ++batch.state.sequence });
        const global = updateGlobal && localBecomesGlobal(local, before.global) ? local : before.global;
        batch.change(record.path, before, { local, global });
        const key = [this.prefix, pathKey(record.path)];
        if (before.local) {
          const previous = before.local;
          batch.writes.push(() => dbs.sequence.removeSync([this.prefix, previous.sequence]));
          batch.writes.push(() => this.removeBlocks(previous));
        }
        batch.writes.push(() => {
          dbs.local.putSync(key, encodeRecord(local));
          dbs.sequence.putSync([this.prefix, local.sequence], local.path);
          if (!local.deleted) this.addBlocks(local);
          // The global record may have been stored as "the local record": it is written again
          // against the new local one whether it changed or not. Removed first: LMDB merges pages
          // only on removal, and a full record turned into a marker would leave its page mostly empty.
          if (before.global) dbs.global.removeSync(key);
          if (global) dbs.global.putSync(key, storedGlobal(global, local));
        });
        stored.push(local);
      }
      batch.commit();
      this.context.churn?.(records.length);
      return stored;
    });
  }

  *localRecords(options?: { under?: string }): Iterable<FileRecord> {
    yield* this.records('local', options?.under);
  }

  *localPaths(options?: { under?: string }): Iterable<string> {
    const release = this.context.reader?.();
    try {
      yield* this.localPathsOf(options);
    } finally {
      release?.();
    }
  }

  private *localPathsOf(options?: { under?: string }): Iterable<string> {
    const dir = normaliseDirectory(options?.under);
    const local = this.context.dbs().local;
    if (dir !== '' && local.doesExist([this.prefix, pathKey(dir)])) yield dir;
    const ranges = dir === '' ? [folderRange(this.prefix)] : beneathRanges(this.prefix, dir);
    for (const range of ranges) {
      for (const key of local.getKeys({ ...range, snapshot: false })) {
        const part = (key as [string, string])[1];
        if (!isDigestKey(part)) {
          yield part;
          continue;
        }
        // Keys only, except for the few long paths: their full path is in the value.
        const path = storedPath(part, local.get(key));
        if (dir === '' || path.startsWith(dir + '/')) yield path;
      }
    }
  }

  *localSince(sequence: number): Iterable<FileRecord> {
    const release = this.context.reader?.();
    try {
      yield* this.localSinceOf(sequence);
    } finally {
      release?.();
    }
  }

  private *localSinceOf(sequence: number): Iterable<FileRecord> {
    const dbs = this.context.dbs();
    const range = folderRange(this.prefix);
    for (const { key, value } of dbs.sequence.getRange({ start: [this.prefix, sequence], end: range.end, snapshot: false })) {
      const recordSequence = (key as [string, number])[1];
      if (recordSequence <= sequence) continue;
      const record = this.read('local', value as string);
      // A path rewritten while we iterate shows up again at its new sequence.
      if (record && record.sequence === recordSequence) yield record;
    }
  }

  localSequence(): number {
    return this.readState().sequence;
  }

  getGlobal(path: string): FileRecord | undefined {
    return this.read('global', path);
  }

  async putGlobal(records: FileRecord[]): Promise<void> {
    for (const record of records) checkRecord(record);
    return this.context.write(() => {
      const dbs = this.context.dbs();
      const batch = new PathBatch(this, this.readState());
      for (const record of records) {
        const before = batch.pathState(record.path);
        const global = normalise(record);
        batch.change(record.path, before, { local: before.local, global });
        batch.writes.push(() => dbs.global.putSync([this.prefix, pathKey(global.path)], storedGlobal(global, before.local)));
      }
      batch.commit();
      this.context.churn?.(records.length);
    });
  }

  async offerGlobal(records: FileRecord[]): Promise<FileRecord[]> {
    for (const record of records) checkRecord(record);
    return this.context.write(() => {
      const dbs = this.context.dbs();
      const batch = new PathBatch(this, this.readState());
      const taken: FileRecord[] = [];
      for (const record of records) {
        const before = batch.pathState(record.path);
        if (!supersedes(record, before.global)) continue;
        const global = normalise(record);
        batch.change(record.path, before, { local: before.local, global });
        batch.writes.push(() => dbs.global.putSync([this.prefix, pathKey(global.path)], storedGlobal(global, before.local)));
        taken.push(global);
      }
      batch.commit();
      this.context.churn?.(taken.length);
      return taken;
    });
  }

  *globalRecords(options?: { under?: string }): Iterable<FileRecord> {
    yield* this.records('global', options?.under);
  }

  findBlock(hash: Uint8Array, path?: string): BlockLocation | undefined {
    for (const { key, value } of this.context.dbs().blocks.getRange({ ...hashRange(this.prefix, hash), limit: 1 })) {
      // A long path's entry holds [index, full path] (see addBlocks).
      const part = (key as [string, string, string])[2];
      if (!isDigestKey(part)) return { path: part, index: value as number };
      const [index, path] = Array.isArray(value) ? (value as [number, unknown]) : [value as number, undefined];
      return { path: pathOfKey(part, path), index };
    }
    // A single-block file is not in the block map (addBlocks): only the file at `path` itself is looked at.
    if (path === undefined) return undefined;
    const local = this.read('local', path);
    if (local && !local.deleted && local.type === 'file' && local.blocks.length === 1 && sameHash(local.blocks[0]!, hash)) return { path, index: 0 };
    return undefined;
  }

  *needed(options: { reverse?: boolean } = {}): Iterable<NeededPath> {
    const release = this.context.reader?.();
    try {
      yield* this.neededOf(options);
    } finally {
      release?.();
    }
  }

  private *neededOf(options: { reverse?: boolean } = {}): Iterable<NeededPath> {
    const dbs = this.context.dbs();
    const range = folderRange(this.prefix);
    const bounds = options.reverse ? { start: range.end, end: range.start, reverse: true } : range;
    // The `need` database lists exactly these paths: a pass costs what it has to do, not the folder's size.
    for (const { key, value } of dbs.need.getRange({ ...bounds, snapshot: false })) {
      // A long path's entry holds the full path instead of 1 (see markNeeded).
      const path = pathOfKey((key as [string, string])[1], value);
      const global = this.read('global', path);
      const local = this.read('local', path);
      if (isNeeded(local, global)) yield local ? { global: global!, local } : { global: global! };
    }
  }

  async putRemote(deviceId: string, records: FileRecord[]): Promise<void> {
    for (const record of records) checkRecord(record);
    return this.context.write(() => {
      const remote = this.context.dbs().remote;
      // Only the version: what a peer holds is all completion and block sources ask (schema 3).
      for (const record of records) remote.putSync([this.prefix, pathKey(record.path), remoteDevice(deviceId)], encodeRemote(record));
      this.context.churn?.(records.length);
    });
  }

  remoteVersion(deviceId: string, path: string): VersionVector | undefined {
    const stored: unknown = this.context.dbs().remote.get([this.prefix, pathKey(path), remoteDevice(deviceId)]);
    return stored === undefined ? undefined : decodeRemote(path, stored);
  }

  devicesWith(path: string, version: VersionVector): string[] {
    // Keys hold short device IDs (remoteDevice).
    const devices: string[] = [];
    for (const { key, value } of this.context.dbs().remote.getRange(pathEntriesRange(this.prefix, path))) {
      if (compareVersions(decodeRemote(path, value), version) === 'equal') devices.push((key as [string, string, string])[2]);
    }
    return devices;
  }

  async clearRemote(deviceId: string): Promise<void> {
    const range = folderRange(this.prefix);
    const device = remoteDevice(deviceId);
    let start = range.start as Key;
    for (;;) {
      // Collect a bounded batch of this device's keys, then delete them in their own transaction.
      const keys: unknown[][] = [];
      let last: Key | undefined;
      for (const key of this.context.dbs().remote.getKeys({ start, end: range.end, snapshot: false })) {
        last = key;
        if ((key as unknown[])[2] === device) keys.push(key as unknown[]);
        if (keys.length >= CLEAR_BATCH_ENTRIES) break;
      }
      if (keys.length > 0) {
        await this.context.write(() => {
          const remote = this.context.dbs().remote;
          for (const key of keys) remote.removeSync(key as never);
        });
      }
      if (keys.length < CLEAR_BATCH_ENTRIES || !last) return;
      start = last;
    }
  }

  indexId(): Buffer {
    if (this.cachedIndexId) return this.cachedIndexId;
    const stored = this.readState().indexId;
    if (stored) return (this.cachedIndexId = Buffer.from(stored));
    const fresh = randomBytes(INDEX_ID_BYTES);
    this.cachedIndexId = fresh;
    // Persisted in the background; should it be lost, peers simply take a full index once more.
    this.context
      .write(() => {
        const state = this.readState();
        if (!state.indexId) this.writeState({ ...state, indexId: fresh });
      })
      .catch(() => undefined);
    return fresh;
  }

  peerIndexId(deviceId: string): Buffer | undefined {
    const [, indexId] = readPeer(this.context.dbs().peers.get([this.prefix, deviceId]));
    return indexId ? Buffer.from(indexId) : undefined;
  }

  peerSequence(deviceId: string): number {
    return readPeer(this.context.dbs().peers.get([this.prefix, deviceId]))[0];
  }

  setPeerSequence(deviceId: string, sequence: number, indexId?: Uint8Array): Promise<void> {
    return this.context.write(() => {
      const peers = this.context.dbs().peers;
      const key = [this.prefix, deviceId];
      const kept = indexId ?? readPeer(peers.get(key))[1];
      const stored: StoredPeer = [sequence, kept ? Buffer.from(kept) : null];
      peers.putSync(key, stored);
    });
  }

  counts(): FolderCounts {
    return countsOf(this.readState());
  }

  hasNeeded(): boolean {
    for (const _key of this.context.dbs().need.getKeys({ ...folderRange(this.prefix), limit: 1 })) return true;
    return false;
  }

  scanning(): () => void {
    return this.context.scanning?.() ?? (() => undefined);
  }

  /** Counters and last sequence; inside a write transaction this reads the transaction's own state. */
  readState(): FolderState {
    const stored = this.context.dbs().counters.get(this.folderId) as FolderState | undefined;
    return stored ? { ...emptyFolderState(), ...stored } : emptyFolderState();
  }

  /** Inside a write transaction: adds or removes the path in the `need` database. */
  markNeeded(path: string, needed: boolean): void {
    const need = this.context.dbs().need;
    const key = [this.prefix, pathKey(path)];
    if (needed) need.putSync(key, isLongPath(path) ? path : 1);
    else need.removeSync(key);
  }

  writeState(state: FolderState): void {
    this.context.dbs().counters.putSync(this.folderId, state);
  }

  read(db: RecordDb, path: string): FileRecord | undefined {
    const stored: unknown = this.context.dbs()[db].get([this.prefix, pathKey(path)]);
    if (stored === undefined) return undefined;
    return db === 'global' && isLocalMarker(stored) ? this.globalFromLocal(path, stored) : decodeRecord(path, stored);
  }

  /** A global record stored as "the local record, with this sequence and inode" (storedGlobal). */
  private globalFromLocal(path: string, marker: LocalMarker): FileRecord {
    const local = this.read('local', path);
    if (!local) throw new FerryError('INDEX_CORRUPT', `global record of ${JSON.stringify(path)} refers to a local record that is missing`);
    return { ...local, sequence: marker[0], inode: marker[1], ...(marker.length === 3 ? { mtimeMs: marker[2]! } : {}) };
  }

  private *records(db: RecordDb, under: string | undefined): Iterable<FileRecord> {
    const release = this.context.reader?.();
    try {
      yield* this.recordsOf(db, under);
    } finally {
      release?.();
    }
  }

  private *recordsOf(db: RecordDb, under: string | undefined): Iterable<FileRecord> {
    const dbs = this.context.dbs();
    const dir = normaliseDirectory(under);
    const ranges = dir === '' ? [folderRange(this.prefix)] : beneathRanges(this.prefix, dir);
    if (dir !== '') {
      const exact = this.read(db, dir);
      if (exact) yield exact;
    }
    for (const range of ranges) {
      for (const { key, value } of dbs[db].getRange({ ...range, snapshot: false })) {
        const path = storedPath((key as [string, string])[1], value);
        if (dir !== '' && !path.startsWith(dir + '/')) continue;
        yield db === 'global' && isLocalMarker(value) ? this.globalFromLocal(path, value) : decodeRecord(path, value);
      }
    }
  }

  /**
   * Block map entries of a file of two blocks or more. A single-block file (most files: the block map would get one
   * entry per file, each inserted at a random place of a B-tree keyed by hash, so a first scan's working set would be
   * the whole map) is left out: its block is found only through its own path (findBlock), and a rename is matched by
   * the puller among the deletions it has due (sync/rename-sources.ts).
   */
  private addBlocks(record: FileRecord): void {
    if (record.blocks.length < 2) return;
    const blocks = this.context.dbs().blocks;
    // Backwards, so a hash repeated within the file maps to its first block.
    for (let i = record.blocks.length - 1; i >= 0; i--) {
      const key = [this.prefix, hashKey(record.blocks[i]!), pathKey(record.path)];
      blocks.putSync(key, isLongPath(record.path) ? [i, record.path] : i);
    }
  }

  private removeBlocks(record: FileRecord): void {
    if (record.blocks.length < 2 || record.deleted) return;
    const blocks = this.context.dbs().blocks;
    const part = pathKey(record.path);
    for (const hash of record.blocks) blocks.removeSync([this.prefix, hashKey(hash), part]);
  }
}

/**
 * One write transaction's view of the paths it touches. All reads happen first and the writes are
 * queued, because lmdb-js commits whatever was written before a callback throws.
 */
class PathBatch {
  readonly writes: Array<() => void> = [];
  private readonly touched = new Map<string, PathState>();

  constructor(
    private readonly index: LmdbFolderIndex,
    readonly state: FolderState,
  ) {}

  pathState(path: string): PathState {
    return this.touched.get(path) ?? { local: this.index.read('local', path), global: this.index.read('global', path) };
  }

  change(path: string, before: PathState, after: PathState): void {
    applyPathChange(this.state, before, after);
    this.touched.set(path, after);
    const wasNeeded = isNeeded(before.local, before.global);
    const nowNeeded = isNeeded(after.local, after.global);
    if (wasNeeded !== nowNeeded) this.writes.push(() => this.index.markNeeded(path, nowNeeded));
  }

  commit(): void {
    for (const write of this.writes) write();
    this.index.writeState(this.state);
  }
}

/** A local record becomes global when there is none, when it is newer, or when it wins a conflict. */
function localBecomesGlobal(local: FileRecord, global: FileRecord | undefined): boolean {
  if (!global) return true;
  const order = compareVersions(local.version, global.version);
  // Equal: the same version is already global, and the global record keeps its signature and fields as signed.
  return order === 'newer' || (order === 'concurrent' && conflictWinner(local, global) === local);
}

/** The record exactly as it will read back: copied vector, Uint8Array hashes, no stray fields. */
function normalise(record: FileRecord): FileRecord {
  return decodeRecord(record.path, encodeRecord(record));
}

const FILE_TYPES: readonly string[] = ['file', 'dir', 'symlink'];

function checkRecord(record: NewFileRecord | FileRecord): void {
  checkIndexPath(record.path);
  if (!FILE_TYPES.includes(record.type)) {
    throw new FerryError('INTERNAL', `record for ${JSON.stringify(record.path)} has unknown type ${String(record.type)}`);
  }
  if (!Array.isArray(record.blocks) || !record.blocks.every((block) => block instanceof Uint8Array)) {
    throw new FerryError('INTERNAL', `record for ${JSON.stringify(record.path)} has block hashes that are not bytes`);
  }
  if (typeof record.version !== 'object' || record.version === null) {
    throw new FerryError('INTERNAL', `record for ${JSON.stringify(record.path)} has no version vector`);
  }
}


