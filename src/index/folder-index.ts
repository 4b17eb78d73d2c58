// One folder's part of the index: local and global records, change log, block map, peer sequences, counters.

import { FerryError } from '../errors.js';
import { applyPathChange, countsOf, emptyFolderState, type FolderState, type PathState } from './counters.js';
import { beneathRange, checkIndexPath, folderRange, hashKey, hashRange, normaliseDirectory } from './keys.js';
import { decodeRecord, encodeRecord } from './record-codec.js';
import { compareVersions, type FileRecord } from './records.js';
import type { IndexDbs } from './schema.js';
import type { BlockLocation, FolderCounts, FolderIndex, NewFileRecord } from './types.js';

/** What a folder index needs from the store that owns the environment. */
export interface IndexContext {
  /** The databases, or a CLOSED error when the store is not open. */
  dbs(): IndexDbs;
  /** Runs `action` in one asynchronous write transaction; resolves when it is durable. */
  write<T>(action: () => T): Promise<T>;
}

type RecordDb = 'local' | 'global';

export class LmdbFolderIndex implements FolderIndex {
  constructor(
    readonly folderId: string,
    private readonly context: IndexContext,
  ) {}

  getLocal(path: string): FileRecord | undefined {
    return this.read('local', path);
  }

  async putLocal(records: NewFileRecord[]): Promise<FileRecord[]> {
    for (const record of records) checkRecord(record);
    return this.context.write(() => {
      const dbs = this.context.dbs();
      const batch = new PathBatch(this, this.readState());
      const stored: FileRecord[] = [];
      for (const record of records) {
        const before = batch.pathState(record.path);
        const local = normalise({ ...record, sequence: ++batch.state.sequence });
        const order = before.global ? compareVersions(local.version, before.global.version) : 'newer';
        const global = order === 'newer' || order === 'equal' ? local : before.global;
        batch.change(record.path, before, { local, global });
        const key = [this.folderId, record.path];
        if (before.local) {
          const previous = before.local;
          batch.writes.push(() => dbs.sequence.removeSync([this.folderId, previous.sequence]));
          batch.writes.push(() => this.removeBlocks(previous));
        }
        batch.writes.push(() => {
          dbs.local.putSync(key, encodeRecord(local));
          dbs.sequence.putSync([this.folderId, local.sequence], local.path);
          if (!local.deleted) this.addBlocks(local);
          if (global === local) dbs.global.putSync(key, encodeRecord(local));
        });
        stored.push(local);
      }
      batch.commit();
      return stored;
    });
  }

  *localRecords(options?: { under?: string }): Iterable<FileRecord> {
    yield* this.records('local', options?.under);
  }

  *localSince(sequence: number): Iterable<FileRecord> {
    const dbs = this.context.dbs();
    const range = folderRange(this.folderId);
    for (const { key, value } of dbs.sequence.getRange({ start: [this.folderId, sequence], end: range.end, snapshot: false })) {
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
        batch.writes.push(() => dbs.global.putSync([this.folderId, global.path], encodeRecord(global)));
      }
      batch.commit();
    });
  }

  *globalRecords(options?: { under?: string }): Iterable<FileRecord> {
    yield* this.records('global', options?.under);
  }

  findBlock(hash: Uint8Array): BlockLocation | undefined {
    for (const { key, value } of this.context.dbs().blocks.getRange({ ...hashRange(this.folderId, hash), limit: 1 })) {
      return { path: (key as [string, string, string])[2], index: value as number };
    }
    return undefined;
  }

  peerSequence(deviceId: string): number {
    return (this.context.dbs().peers.get([this.folderId, deviceId]) as number | undefined) ?? 0;
  }

  setPeerSequence(deviceId: string, sequence: number): Promise<void> {
    return this.context.write(() => {
      this.context.dbs().peers.putSync([this.folderId, deviceId], sequence);
    });
  }

  counts(): FolderCounts {
    return countsOf(this.readState());
  }

  /** Counters and last sequence; inside a write transaction this reads the transaction's own state. */
  readState(): FolderState {
    const stored = this.context.dbs().counters.get(this.folderId) as FolderState | undefined;
    return stored ? { ...emptyFolderState(), ...stored } : emptyFolderState();
  }

  writeState(state: FolderState): void {
    this.context.dbs().counters.putSync(this.folderId, state);
  }

  read(db: RecordDb, path: string): FileRecord | undefined {
    const stored: unknown = this.context.dbs()[db].get([this.folderId, path]);
    return stored === undefined ? undefined : decodeRecord(path, stored);
  }

  private *records(db: RecordDb, under: string | undefined): Iterable<FileRecord> {
    const dbs = this.context.dbs();
    const dir = normaliseDirectory(under);
    const range = dir === '' ? folderRange(this.folderId) : beneathRange(this.folderId, dir);
    if (dir !== '') {
      const exact = this.read(db, dir);
      if (exact) yield exact;
    }
    for (const { key, value } of dbs[db].getRange({ ...range, snapshot: false })) {
      yield decodeRecord((key as [string, string])[1], value);
    }
  }

  private addBlocks(record: FileRecord): void {
    const blocks = this.context.dbs().blocks;
    // Backwards, so a hash repeated within the file maps to its first block.
    for (let i = record.blocks.length - 1; i >= 0; i--) {
      blocks.putSync([this.folderId, hashKey(record.blocks[i]!), record.path], i);
    }
  }

  private removeBlocks(record: FileRecord): void {
    const blocks = this.context.dbs().blocks;
    for (const hash of record.blocks) blocks.removeSync([this.folderId, hashKey(hash), record.path]);
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
  }

  commit(): void {
    for (const write of this.writes) write();
    this.index.writeState(this.state);
  }
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
