// Scanner: walks one folder (or a subtree), hashes what changed through the HashPool, records changes and tombstones in the index.

import { randomBytes } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, isFerryError } from '../errors.js';
import { sleep, throwIfAborted } from '../util/abort.js';
import { silentLogger, type Logger } from '../util/log.js';
import { pathDigest } from '../util/path-digest.js';
import { DigestSet } from '../util/digest-set.js';
import { bumpVersion, type FileRecord } from '../index/records.js';
import type { FolderIndex, LocalStat, NewFileRecord } from '../index/types.js';
import { blockSizeFor } from './blocksize.js';
import { DiskPresence, isGone } from './presence.js';
import type { HashPool } from './hash-pool.js';
import { IgnoreRules } from './ignore.js';
import { requireVolume } from './volume.js';
import { normaliseUnder, walk, type WalkEntry } from './walker.js';
import type { WarmFiles } from './warm-files.js';
import { NODE_FILE_READS, type FileReads } from '../util/file-io.js';

/** Records per putLocal transaction. */
export const SCAN_BATCH_RECORDS = 1000;
/**
 * Records a batch may grow to while the previous transaction still commits: on a slow or busy disk one
 * commit (fdatasync) then covers more records instead of the walk waiting for it (a group commit).
 */
export const SCAN_BATCH_MAX_RECORDS = 8 * SCAN_BATCH_RECORDS;
/** Hashed bytes per putLocal transaction, so a crash loses little work on big files. */
export const SCAN_BATCH_BYTES = 64 * 1024 * 1024;
/** How often a file that changes while it is hashed is tried again in the same scan. */
export const HASH_RETRIES = 2;
/** Pause before hashing a file again that changed under the hasher. */
export const HASH_RETRY_DELAY_MS = 250;
/** lstat calls in flight while looking for deleted paths. */
const EXISTENCE_CHECKS_IN_FLIGHT = 32;
/**
 * Paths the walk saw are not lstat'ed again by the deletion pass (a rescan of an unchanged tree
 * did every lstat twice). They are remembered as 53-bit digests, up to this many (in a DigestSet:
 * 4 MiB at most, 10-21 bytes each); paths beyond are checked as before. A deleted path whose digest collides with a seen one
 * (a chance of about 1 in 4·10^10 with 200,000 seen) has its deletion found by the watcher or the next scan.
 */
const SEEN_PATHS_MAX = 200_000;

/** Files at least this large have their block hashes told to onHashing as they are known (docs/protocol.md, Streaming large files). */
export const STREAM_MIN_BYTES = 16 * 1024 * 1024;

/**
 * Block hashes of a large file being hashed, as they become known: blocks `firstBlock`… of the file
 * as it was when this attempt (`tag`) began. `abandoned`: this attempt's hashes describe no file
 * (it changed, vanished or failed); forget them.
 */
export interface HashingEvent {
  path: string;
  tag: Buffer;
  size: number;
  mtimeMs: number;
  inode: number;
  blockSize: number;
  firstBlock: number;
  blocks: Buffer[];
  abandoned?: boolean;
}

export interface ScanProgress {
  under: string;
  hashedBytes: number;
  /** Bytes of the changed files found so far (grows while the walk goes on). */
  totalBytes?: number;
}

export interface ScannerOptions {
  /** Absolute path of the folder. */
  root: string;
  index: FolderIndex;
  deviceShortId: string;
  pool: HashPool;
  logger?: Logger;
  /** Fixed rules; without them `.ferryignore` is read again at the start of every scan. */
  ignore?: IgnoreRules;
  /** Subtrees this device does not take (selective sync): not walked, never made tombstones of. */
  excluded?: readonly string[];
  onProgress?: (progress: ScanProgress) => void;
  /**
   * A batch of records was stored while the scan goes on: peers can be told (and fetch) the first
   * files of a large folder before the last ones are hashed.
   */
  onCommitted?: () => void;
  /** Told of a large file's block hashes as they become known (files of at least streamMinBytes). */
  onHashing?: (event: HashingEvent) => void;
  /** @default STREAM_MIN_BYTES */
  streamMinBytes?: number;
  /** Notes each file hashed (read whole moments ago), for the block server. */
  warmFiles?: WarmFiles;
  /** Told of each entry not indexed because of its name (util/names.ts), with the reason. @default logged at warn */
  onRefused?: (path: string, reason: string) => void;
  /** Files being hashed or queued for hashing at once (small ones go to workers in batches). @default 64 × pool size */
  maxHashesInFlight?: number;
  /**
   * Told of each entry that could not be read or hashed (EIO, EACCES): skipped, never made a deletion,
   * tried again by the next scan. @default logged at warn
   */
  onUnreadable?: (path: string, reason: string) => void;
  /** The walk's reading file operations. @default NODE_FILE_READS (tests inject faults) */
  reads?: FileReads;
  /**
   * The root must hold the folder marker (scan/volume.ts), checked before the walk and again before
   * the deletion pass: a volume unmounted meanwhile fails the scan instead of deleting everything. @default false
   */
  requireMarker?: boolean;
}

export interface ScanOptions {
  /** Relative path of the subtree to scan ('' or absent: the whole folder). */
  under?: string;
  /**
   * Several subtrees (none inside another) in one run instead of `under`: their changes share
   * transactions, and peers hear of them at once.
   */
  subtrees?: readonly string[];
  signal?: AbortSignal;
}

export interface ScanResult {
  /** Entries seen on disk (not ignored). */
  scanned: number;
  /** Records written because something changed or appeared. */
  changed: number;
  /** Tombstones written for paths gone from disk. */
  deleted: number;
  hashedBytes: number;
  /** Entries that could not be read or hashed (skipped; retried by the next scan). */
  errors: number;
  /** Files that kept changing while they were hashed (not recorded; the next scan tries again). */
  busy: number;
}

interface QueuedScan {
  subtrees: string[];
  signal?: AbortSignal;
  promise: Promise<ScanResult>;
}

function covers(outer: string, inner: string): boolean {
  return outer === '' || inner === outer || inner.startsWith(outer + '/');
}

/** Whether the entry still matches its record, so it needs no hashing and no new version. */
function unchanged(old: LocalStat | undefined, entry: WalkEntry): boolean {
  if (!old || old.deleted || old.type !== entry.type || old.mode !== entry.mode) return false;
  switch (entry.type) {
    case 'file':
      return old.size === entry.size && old.mtimeMs === entry.mtimeMs && old.inode === entry.inode;
    case 'symlink':
      return old.linkTarget === entry.linkTarget;
    case 'dir':
      return true; // a directory's mtime moves with every change inside it; it carries no content
  }
}

function sameBlocks(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((block, i) => Buffer.compare(block, b[i]!) === 0);
}


/**
 * Whether the batch goes to the index now: at SCAN_BATCH_RECORDS records (or SCAN_BATCH_BYTES hashed), but
 * while the previous transaction still commits only at SCAN_BATCH_MAX_RECORDS (or the bytes).
 */
export function batchDue(records: number, bytes: number, commitsPending: number): boolean {
  if (bytes >= SCAN_BATCH_BYTES) return true;
  return records >= (commitsPending > 0 ? SCAN_BATCH_MAX_RECORDS : SCAN_BATCH_RECORDS);
}

/** Mutable state of one scan run. */
class ScanRun {
  /** The subtree being walked or checked for deletions now (for progress reports). */
  under = '';
  readonly result: ScanResult = { scanned: 0, changed: 0, deleted: 0, hashedBytes: 0, errors: 0, busy: 0 };
  batch: NewFileRecord[] = [];
  batchBytes = 0;
  /**
   * The previous batch's transaction, committing while the walk and the hashing go on (at most one
   * at a time, so at most two batches are held); rejects when that commit failed.
   */
  committing: Promise<void> | null = null;
  /** Transactions handed to the index and not committed yet. */
  commitsPending = 0;
  queuedBytes = 0;
  readonly inFlight = new Set<Promise<void>>();
  /** Woken, one per finished hash, when inFlight was full. */
  readonly roomWaiters: Array<() => void> = [];
  /** Digests of the paths the walk yielded (see SEEN_PATHS_MAX). */
  readonly seen = new DigestSet(SEEN_PATHS_MAX);
  constructor(
    readonly ignore: IgnoreRules,
    readonly signal?: AbortSignal,
  ) {}
}

export class Scanner {
  private readonly root: string;
  private readonly index: FolderIndex;
  private readonly device: string;
  private readonly pool: HashPool;
  private readonly logger: Logger;
  private readonly fixedIgnore?: IgnoreRules;
  private readonly excluded: readonly string[];
  private readonly onProgress?: (progress: ScanProgress) => void;
  private readonly onCommitted?: () => void;
  private readonly onHashing?: (event: HashingEvent) => void;
  private readonly streamMinBytes: number;
  private readonly warmFiles?: WarmFiles;
  private readonly maxInFlight: number;
  private readonly onRefused: (path: string, reason: string) => void;
  private readonly onUnreadable: (path: string, reason: string) => void;
  private readonly reads: FileReads;
  private readonly requireMarker: boolean;
  private tail: Promise<unknown> = Promise.resolve();
  private queued: QueuedScan | null = null;

  constructor(options: ScannerOptions) {
    this.root = options.root;
    this.index = options.index;
    this.device = options.deviceShortId;
    this.pool = options.pool;
    this.logger = options.logger ?? silentLogger;
    this.fixedIgnore = options.ignore;
    this.excluded = options.excluded ?? [];
    this.onProgress = options.onProgress;
    this.onCommitted = options.onCommitted;
    this.onHashing = options.onHashing;
    this.streamMinBytes = options.streamMinBytes ?? STREAM_MIN_BYTES;
    this.warmFiles = options.warmFiles;
    this.onRefused = options.onRefused ?? ((path, reason) => this.logger.warn('name refused, not indexed', { path, reason }));
    this.maxInFlight = Math.max(1, options.maxHashesInFlight ?? this.pool.size * 64);
    this.onUnreadable = options.onUnreadable ?? ((path, reason) => this.logger.warn('cannot read, skipped', { path, reason }));
    this.reads = options.reads ?? NODE_FILE_READS;
    this.requireMarker = options.requireMarker === true;
  }

  /**
   * Brings the index in line with the disk for the folder or one subtree. Scans of one folder run one at
   * a time; a request already covered by a waiting scan (same signal or none) joins it.
   */
  scan(options: ScanOptions = {}): Promise<ScanResult> {
    const subtrees = options.subtrees ? options.subtrees.map(normaliseUnder) : [normaliseUnder(options.under)];
    const waiting = this.queued;
    if (
      waiting &&
      subtrees.every((under) => waiting.subtrees.some((outer) => covers(outer, under))) &&
      (!options.signal || options.signal === waiting.signal)
    ) {
      return waiting.promise;
    }
    const entry: QueuedScan = { subtrees, signal: options.signal, promise: undefined as never };
    entry.promise = this.tail
      .catch(() => undefined)
      .then(() => {
        if (this.queued === entry) this.queued = null;
        return this.run(subtrees, options.signal);
      });
    this.queued = entry;
    this.tail = entry.promise;
    return entry.promise;
  }

  private async run(subtrees: readonly string[], signal?: AbortSignal): Promise<ScanResult> {
    throwIfAborted(signal);
    await this.requireRoot();
    const ignore = (this.fixedIgnore ?? (await IgnoreRules.load(this.root))).withExcluded(this.excluded);
    const run = new ScanRun(ignore, signal);
    const endScanning = this.index.scanning?.();
    try {
      const onError = (path: string, err: Error): void => this.onWalkError(run, path, err);
      // Subtrees without any record when the walk begins (a first scan, a new directory): every record they
      // get is written from what the walk saw, so no path is remembered and no deletion looked for.
      const fresh = new Set(subtrees.filter((under) => !this.indexedUnder(under)));
      for (const under of subtrees) {
        run.under = under;
        const remember = !fresh.has(under);
        for await (const entry of walk(this.root, { ignore, signal, under, onError, onRefused: this.onRefused, reads: this.reads })) {
          run.result.scanned++;
          if (remember) run.seen.add(pathDigest(entry.path));
          await this.handleEntry(run, entry);
          if (batchDue(run.batch.length, run.batchBytes, run.commitsPending)) await this.startFlush(run);
        }
      }
      await Promise.all(run.inFlight);
      // A folder that vanished mid-scan (unmounted volume) must not turn into deletions.
      await this.requireRoot();
      for (const under of subtrees) if (!fresh.has(under)) await this.recordDeletions(run, under);
      await this.flush(run);
    } catch (err) {
      await Promise.allSettled(run.inFlight);
      // Keep what was hashed before an abort: those records describe the disk correctly.
      if (signal?.aborted) await this.flush(run).catch(() => undefined);
      await run.committing?.catch(() => undefined); // no transaction of this scan outlives it
      throw err;
    } finally {
      endScanning?.();
    }
    return run.result;
  }

  /** Whether the index holds any local record (tombstones included) at or under `under`. */
  private indexedUnder(under: string): boolean {
    for (const _path of this.index.localPaths(under === '' ? {} : { under })) return true;
    return false;
  }

  private async requireRoot(): Promise<void> {
    if (this.requireMarker) return requireVolume(this.root);
    let isDir = false;
    try {
      isDir = (await lstat(this.root)).isDirectory();
    } catch (err) {
      throw new FerryError('FOLDER_NOT_FOUND', `folder ${this.root} is not there`, { cause: err });
    }
    if (!isDir) throw new FerryError('FOLDER_NOT_DIRECTORY', `folder ${this.root} is not a directory`);
  }

  private onWalkError(run: ScanRun, path: string, err: Error): void {
    if (path === '') throw new FerryError('IO', `cannot read folder ${this.root}`, { cause: err });
    if (isGone(err)) return; // vanished between listing and lstat: the deletion pass handles it
    run.result.errors++;
    this.onUnreadable(path, `cannot read: ${err.message}`);
  }

  private async handleEntry(run: ScanRun, entry: WalkEntry): Promise<void> {
    // Most entries of a rescan are unchanged: compare without reading the whole record.
    if (unchanged(this.index.getLocalStat(entry.path), entry)) return;
    if (entry.type !== 'file' || entry.size === 0) {
      const old = this.index.getLocal(entry.path);
      this.addChange(run, {
        path: entry.path,
        type: entry.type,
        size: entry.size,
        mode: entry.mode,
        mtimeMs: entry.mtimeMs,
        inode: entry.inode,
        version: bumpVersion(old?.version ?? {}, this.device),
        modifiedBy: this.device,
        blockSize: blockSizeFor(0),
        blocks: [],
        ...(entry.linkTarget !== undefined ? { linkTarget: entry.linkTarget } : {}),
        deleted: false,
      });
      return;
    }
    while (run.inFlight.size >= this.maxInFlight) await new Promise<void>((wake) => run.roomWaiters.push(wake));
    run.queuedBytes += entry.size;
    const task = this.hashEntry(run, entry)
      .catch((err) => {
        if (run.signal?.aborted) return;
        if (isGone(err)) {
          run.seen.delete(pathDigest(entry.path)); // deleted since the walk saw it: the deletion pass checks it
          return;
        }
        run.result.errors++;
        this.onUnreadable(entry.path, `cannot read: ${err instanceof Error ? err.message : String(err)}`);
      })
      .finally(() => {
        run.inFlight.delete(task);
        run.roomWaiters.shift()?.();
      });
    run.inFlight.add(task);
  }

  private async hashEntry(run: ScanRun, entry: WalkEntry): Promise<void> {
    const absPath = join(this.root, entry.diskPath ?? entry.path);
    let blockSize = blockSizeFor(entry.size);
    for (let attempt = 0; ; attempt++) {
      const stream = this.streamHashing(entry, blockSize);
      let hashed;
      try {
        hashed = await this.pool.hash(absPath, blockSize, run.signal, entry.size, stream?.progress, entry.inode);
      } catch (err) {
        stream?.abandon();
        throw err;
      }
      if (hashed.inode !== entry.inode || hashed.changedDuringHash || blockSizeFor(hashed.size) !== blockSize) stream?.abandon();
      run.result.hashedBytes += hashed.size;
      this.onProgress?.({ under: run.under, hashedBytes: run.result.hashedBytes, totalBytes: run.queuedBytes });
      if (hashed.inode !== entry.inode) {
        // Not the file the walk saw (replaced, or reached through a directory swapped meanwhile): the next scan looks again.
        run.result.busy++;
        this.logger.debug('file replaced between walk and hash; next scan retries', { path: entry.path });
        return;
      }
      const rightBlockSize = blockSizeFor(hashed.size);
      if (!hashed.changedDuringHash && rightBlockSize === blockSize) {
        this.warmFiles?.note(entry.path, hashed.size);
        this.recordHashed(run, entry, { ...hashed, blockSize });
        // The record takes over: the attempt is no longer announced (nor replayed to peers that attach later).
        stream?.abandon();
        return;
      }
      blockSize = rightBlockSize;
      if (attempt >= HASH_RETRIES) break;
      await sleep(HASH_RETRY_DELAY_MS, run.signal);
    }
    run.result.busy++;
    this.logger.debug('file keeps changing while hashed; next scan retries', { path: entry.path });
  }

  /** For a large file: a progress listener that tells onHashing of its blocks under a new tag, and how to abandon them. */
  private streamHashing(entry: WalkEntry, blockSize: number): { progress: (first: number, blocks: Buffer[]) => void; abandon: () => void } | undefined {
    const onHashing = this.onHashing;
    if (!onHashing || entry.size < this.streamMinBytes) return undefined;
    const base = { path: entry.path, tag: randomBytes(16), size: entry.size, mtimeMs: entry.mtimeMs, inode: entry.inode, blockSize };
    return {
      progress: (firstBlock, blocks) => onHashing({ ...base, firstBlock, blocks }),
      abandon: () => onHashing({ ...base, firstBlock: 0, blocks: [], abandoned: true }),
    };
  }

  private recordHashed(
    run: ScanRun,
    entry: WalkEntry,
    hashed: { size: number; mtimeMs: number; inode: number; mode: number; blockSize: number; blocks: Buffer[] },
  ): void {
    // Read the record again: another writer (the puller) may have stored a newer one meanwhile.
    const old = this.index.getLocal(entry.path);
    const contentSame =
      old !== undefined &&
      !old.deleted &&
      old.type === 'file' &&
      old.size === hashed.size &&
      old.mtimeMs === hashed.mtimeMs &&
      old.mode === hashed.mode &&
      sameBlocks(old.blocks, hashed.blocks);
    const record: NewFileRecord = {
      path: entry.path,
      type: 'file',
      size: hashed.size,
      mode: hashed.mode,
      mtimeMs: hashed.mtimeMs,
      inode: hashed.inode,
      // Only the inode moved (restore, copy in place): refresh it without announcing a new version.
      version: contentSame ? old.version : bumpVersion(old?.version ?? {}, this.device),
      modifiedBy: contentSame ? old.modifiedBy : this.device,
      blockSize: hashed.blockSize,
      blocks: hashed.blocks,
      deleted: false,
    };
    if (contentSame) {
      run.batch.push(record);
      return;
    }
    this.addChange(run, record);
    run.batchBytes += hashed.size;
  }

  private addChange(run: ScanRun, record: NewFileRecord): void {
    run.batch.push(record);
    run.result.changed++;
  }

  /**
   * Hands the batch to the index and returns once the previous batch has committed, not this one: the
   * walk and the hashing go on during a commit (a commit waits for the disk, 0.1 s and more on a busy
   * one, and the walk used to stand still meanwhile). Transactions stay in order, one at a time.
   */
  private async startFlush(run: ScanRun): Promise<void> {
    if (run.batch.length === 0) return;
    const previous = run.committing;
    const records = run.batch;
    run.batch = [];
    run.batchBytes = 0;
    run.commitsPending++;
    const commit = (async () => {
      try {
        await previous;
        await this.commit(run, records);
      } finally {
        run.commitsPending--;
      }
    })();
    run.committing = commit;
    commit.catch(() => undefined); // awaited below or by the next flush; never an unhandled rejection
    await previous;
  }

  /** Stores the batch and waits until every transaction of this scan so far has committed. */
  private async flush(run: ScanRun): Promise<void> {
    await this.startFlush(run);
    const last = run.committing;
    run.committing = null;
    await last;
  }

  private async commit(run: ScanRun, records: NewFileRecord[]): Promise<void> {
    try {
      await this.index.putLocal(records);
    } catch (err) {
      if (!isFerryError(err, 'PATH_UNSAFE')) throw err;
      // One path the index cannot hold (e.g. too long) must not sink the batch: store the rest one by one.
      for (const record of records) {
        try {
          await this.index.putLocal([record]);
        } catch (one) {
          if (!isFerryError(one, 'PATH_UNSAFE')) throw one;
          run.result.errors++;
          if (record.deleted) run.result.deleted--;
          else run.result.changed--;
          // Reported like a refused name (a failed item in status), not only logged.
          this.onRefused(record.path, `cannot be indexed: ${one.message}`);
        }
      }
    }
    this.onCommitted?.();
  }

  /** Tombstones for indexed paths under the scanned subtree that are gone from disk: one lstat for each path the walk did not see. */
  private async recordDeletions(run: ScanRun, under: string): Promise<void> {
    run.under = under;
    const presence = new DiskPresence(this.root, this.reads);
    const options = under === '' ? {} : { under };
    let candidates: FileRecord[] = [];
    const checkCandidates = async (): Promise<void> => {
      const present = await Promise.all(candidates.map((record) => presence.present(record.path)));
      // Gone, or is the whole volume gone (unmounted since the walk)? Never tombstones for that.
      if (present.includes(false)) await this.requireRoot();
      candidates.forEach((record, i) => {
        if (!present[i]) this.addTombstone(run, this.tombstoneFor(record));
      });
      candidates = [];
      if (batchDue(run.batch.length, run.batchBytes, run.commitsPending)) await this.startFlush(run);
    };
    // Paths only: the records of the few paths the walk did not see are read, not all of them.
    let count = 0;
    for (const path of this.index.localPaths(options)) {
      if ((++count & 1023) === 0) throwIfAborted(run.signal);
      if (run.seen.has(pathDigest(path))) continue;
      // Tombstones (never seen on disk) are passed over on their stat fields alone.
      const stat = this.index.getLocalStat(path);
      if (!stat || stat.deleted || run.ignore.ignores(path, stat.type === 'dir')) continue;
      const record = this.index.getLocal(path);
      if (record) candidates.push(record);
      if (candidates.length >= EXISTENCE_CHECKS_IN_FLIGHT) await checkCandidates();
    }
    await checkCandidates();
  }

  private tombstoneFor(record: FileRecord): NewFileRecord {
    const { sequence: _sequence, signature: _signature, linkTarget: _linkTarget, ...rest } = record;
    return {
      ...rest,
      size: 0,
      blocks: [],
      deleted: true,
      version: bumpVersion(record.version, this.device),
      modifiedBy: this.device,
    };
  }

  private addTombstone(run: ScanRun, record: NewFileRecord): void {
    run.batch.push(record);
    run.result.deleted++;
  }
}
