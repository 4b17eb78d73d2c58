// The puller: brings the disk to the global versions, directories first, then files and symlinks, then deletions (children first).

import type { Stats } from 'node:fs';
import { lstat, readlink, readdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isDiskFull, isFerryError } from '../errors.js';
import { compareVersions, type FileRecord } from '../index/records.js';
import type { FolderIndex, NeededPath, NewFileRecord } from '../index/types.js';
import { IgnoreRules, isLocalOnly, NAS_LITTER_NAMES, TEMP_FILE_PREFIX } from '../scan/ignore.js';
import { OWN_WRITES } from '../scan/own-writes.js';
import type { WarmFiles } from '../scan/warm-files.js';
import { BufferPool } from '../util/buffer-pool.js';
import type { Logger } from '../util/log.js';
import { throwIfAborted } from '../util/abort.js';
import { refusedName } from '../util/names.js';
import type { Archive } from './archive.js';
import type { ByteBudget } from './budget.js';
import type { DeleteGuard, DestructiveDeletion } from './delete-guard.js';
import { directWriteBuffers, fetchIntoTemp, type BlockPeer, type TransferStats } from './fetcher.js';
import type { RateLimiter } from './rate-limit.js';
import { fsyncDir } from '../util/fd.js';
import { BatchInstaller } from './installer.js';
import { chmodNoFollow } from '../scan/disk-path.js';
import { childPath, conflictPath, tempName, type DiskPaths, type ResolvedTarget } from './paths.js';

/** What the puller needs from its folder. */
export interface PullContext {
  readonly folderId: Buffer;
  readonly root: string;
  readonly index: FolderIndex;
  readonly archive: Archive;
  readonly paths: DiskPaths;
  /** The folder's "portable names" option: names Windows and SMB cannot hold are not written. */
  readonly portableNames?: boolean;
  /** Subtrees this device does not take (selective sync): neither fetched nor deleted here. */
  readonly excluded?: readonly string[];
  readonly deviceShortId: string;
  /** RO folder: local edits are kept (never overwritten) until reverted. */
  readonly readOnly: boolean;
  readonly logger: Logger;
  readonly budget: ByteBudget;
  readonly stats: TransferStats;
  /** The daemon's download limit (none: unlimited). */
  readonly download?: RateLimiter;
  readonly maxFilesInFlight: number;
  /** Notes each small file installed (written moments ago), for the block server. */
  readonly warmFiles?: WarmFiles;
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /** Asks for a scan of a path (not awaited: the scan needs the lock the puller may hold). */
  requestScan(under: string): void;
  /** Connected peers whose record of the path has exactly this version. */
  peersFor(record: FileRecord): BlockPeer[];
  /** Local records changed: tell peers. */
  committed(): void;
  /** Counts requests for a pull: a change means new records arrived. */
  pullRequests(): number;
  /** Holds back a mass delete until the owner decides (none: every deletion is applied). */
  readonly deleteGuard?: DeleteGuard;
  /** Told of each path synced, refused for good (a name this device will not write) or failed for now, with the reason. */
  outcome?(path: string, outcome: PullOutcome, reason?: string): void;
}

/** What became of one needed path: 'unselected' lies in a subtree this device does not take. */
export type PullOutcome = 'done' | 'failed' | 'refused' | 'ignored' | 'unselected';

export interface PassResult {
  done: number;
  /** Failed for now (no source, I/O error, changed on disk): worth another pass later. */
  failed: number;
  /** Left alone on purpose (unsafe path, ignored, RO local change, clash already kept apart). */
  skipped: number;
}

type Outcome = 'done' | 'failed' | 'skipped';

/** Directories or deletions applied under one hold of the folder lock and one index transaction. */
export const COMMIT_BATCH = 200;
/** Idle buffers kept for local block copies. */
const LOCAL_COPY_IDLE_BYTES = 8 * 1024 * 1024;

/** What a batch of directory or deletion steps leaves to record once the disk work is done. */
interface Commit {
  records: NewFileRecord[];
  /** Conflict copies to have scanned once the lock is released. */
  scans: string[];
}

/** Whether the disk entry is what the local record says (absent when there is no live record). */
export function diskMatches(stats: Stats | undefined, local: FileRecord | undefined): boolean {
  if (!local || local.deleted) return stats === undefined;
  if (!stats) return false;
  switch (local.type) {
    case 'dir':
      return stats.isDirectory();
    case 'symlink':
      return stats.isSymbolicLink();
    case 'file':
      return stats.isFile() && stats.size === local.size && stats.mtimeMs === local.mtimeMs && stats.ino === local.inode;
  }
}

function sameContent(a: FileRecord, b: FileRecord): boolean {
  if (a.deleted || b.deleted || a.type !== b.type) return false;
  if (a.type === 'symlink') return a.linkTarget === b.linkTarget;
  if (a.type === 'dir') return true;
  return a.size === b.size && a.blocks.length === b.blocks.length && a.blocks.every((h, i) => Buffer.compare(h, b.blocks[i]!) === 0);
}

/** The global record as this device's local one, with what the disk really holds (inode, mtime and mode as read back). */
function asLocal(global: FileRecord, stats: Stats | undefined): NewFileRecord {
  const { sequence: _sequence, ...record } = global;
  if (!stats) return { ...record, inode: 0 };
  const mode = stats.mode & 0o7777;
  const local: NewFileRecord = { ...record, inode: stats.ino, mtimeMs: stats.mtimeMs, mode };
  // The signature covers mtime and mode: keep it only while they are exactly as signed.
  if (local.mtimeMs !== global.mtimeMs || mode !== global.mode) delete local.signature;
  return local;
}

export class Puller {
  private ignore = IgnoreRules.builtIn();
  /** Files moved by moveRenamedSource this pass: old path → where the content is now (absolute). */
  private readonly moved = new Map<string, string>();
  /** Temp files this process fetched into and has not installed: path and version each one is for. */
  private readonly temps = new Map<string, { path: string; version: FileRecord['version'] }>();
  /** The files (and symlinks) the current pass is fetching. */
  private running: ReadonlyMap<string, unknown> = new Map();
  /** Bytes written so far into the temp file of each file being fetched. */
  private readonly partial = new Map<string, number>();

  private readonly installer: BatchInstaller;
  /** For blocks copied from local files (a rename or an edit rebuilds from them). */
  private readonly buffers = new BufferPool(LOCAL_COPY_IDLE_BYTES);
  private readonly directBuffers = directWriteBuffers();

  constructor(private readonly ctx: PullContext) {
    this.installer = new BatchInstaller({
      index: ctx.index,
      paths: ctx.paths,
      exclusive: (work) => ctx.exclusive(work),
      diskMatches,
      changedOnDisk: (path) => this.changedOnDisk(path) as 'failed',
      clearTarget: (need, target) => this.clearTarget(need, target, true),
      asLocal,
      installed: (tempAbs, abs) => {
        this.temps.delete(tempAbs);
        // A moved file's blocks are read by other files from wherever it is now.
        for (const [path, at] of this.moved) if (at === tempAbs) this.moved.set(path, abs);
      },
      requestScan: (path) => ctx.requestScan(path),
      committed: () => ctx.committed(),
      warmFiles: ctx.warmFiles,
    });
  }

  /** How many files are being fetched now. */
  inProgress(): number {
    return this.running.size;
  }

  /** Bytes of the files being fetched already in their temp files. */
  partialBytes(): number {
    let total = 0;
    for (const bytes of this.partial.values()) total += bytes;
    return total;
  }

  /** One pass over everything needed. Throws only ABORTED (and errors reading the index). */
  async pass(signal: AbortSignal): Promise<PassResult> {
    const result: PassResult = { done: 0, failed: 0, skipped: 0 };
    this.ctx.paths.forget();
    this.ignore = (await IgnoreRules.load(this.ctx.root).catch(() => IgnoreRules.builtIn())).withExcluded(this.ctx.excluded);
    const count = (outcome: Outcome): void => void result[outcome]++;
    const isDir = (need: NeededPath): boolean => need.global.type === 'dir' && !need.global.deleted;
    await this.inBatches(this.ctx.index.needed(), isDir, (need, commit) => this.pullDir(need, commit), count, signal);
    const running = new Map<string, Promise<void>>();
    this.running = running;
    /** Paths this pass tried and left needed (failed or skipped): not tried again until the next pass. */
    const attempted = new Set<string>();
    for (let requestsSeen = this.ctx.pullRequests(), sweep = true; sweep; ) {
      for (const need of this.ctx.index.needed()) {
        throwIfAborted(signal);
        const { path } = need.global;
        if (need.global.type === 'dir' || need.global.deleted || running.has(path) || attempted.has(path)) continue;
        while (running.size >= this.ctx.maxFilesInFlight) await Promise.race(running.values());
        const task = this.guard(need, () => (need.global.type === 'symlink' ? this.pullSymlink(need) : this.pullFile(need, signal)))
          .then((outcome) => {
            count(outcome);
            if (outcome !== 'done') attempted.add(path);
          })
          .finally(() => running.delete(path));
        running.set(path, task);
      }
      // Records that arrived meanwhile (a peer still scanning, say) are pulled now, beside the large
      // files still in flight, instead of after them in the next pass.
      const requests = this.ctx.pullRequests();
      sweep = requests !== requestsSeen;
      requestsSeen = requests;
    }
    await Promise.all(running.values());
    throwIfAborted(signal);
    const held = await this.reviewDeletions();
    const isDeletion = (need: NeededPath): boolean => need.global.deleted && !held.has(need.global.path);
    await this.inBatches(this.ctx.index.needed({ reverse: true }), isDeletion, (need, commit) => this.pullDeletion(need, commit), count, signal);
    await this.sweepTemps();
    this.moved.clear();
    return result;
  }

  /**
   * The deletion phase's check: deletions of files still on disk here go to the guard, which may hold
   * them all back (a mass delete). Renamed-away files (already moved) and approved paths are not counted.
   */
  private async reviewDeletions(): Promise<ReadonlySet<string>> {
    const guard = this.ctx.deleteGuard;
    if (!guard) return new Set();
    const destructive: DestructiveDeletion[] = [];
    const pending = new Set<string>();
    for (const { global, local } of this.ctx.index.needed({ reverse: true })) {
      if (!global.deleted || !local || local.deleted || local.type === 'dir') continue;
      pending.add(global.path);
      if (guard.isApproved(global.path)) continue;
      const target = await this.ctx.paths.resolve(global.path).catch(() => undefined);
      if (target?.stats) destructive.push({ path: global.path, modifiedBy: global.modifiedBy });
    }
    guard.keepApprovals(pending);
    const held = guard.review(destructive, this.ctx.index.counts().localFiles);
    if (guard.newlyHeld) {
      const report = guard.report();
      this.ctx.logger.warn('mass delete held: apply or restore it in the page or with `ferry deletions`', {
        files: held.size,
        devices: report?.devices.join(','),
        reason: report?.reason,
      });
    }
    return held;
  }

  /**
   * Removes temp files of versions nobody needs any more (superseded while or after they were
   * fetched, or abandoned when the file changed on disk); temps of still-needed versions stay for reuse.
   */
  private async sweepTemps(): Promise<void> {
    for (const [tempAbs, { path, version }] of this.temps) {
      const global = this.ctx.index.getGlobal(path);
      const local = this.ctx.index.getLocal(path);
      const stillNeeded =
        global !== undefined &&
        !global.deleted &&
        compareVersions(global.version, version) === 'equal' &&
        !(local && compareVersions(local.version, version) === 'equal');
      if (stillNeeded) continue;
      this.temps.delete(tempAbs);
      await rm(tempAbs, { force: true }).catch(() => undefined);
    }
  }

  /**
   * Directories and deletions are cheap on disk: up to COMMIT_BATCH of them are applied under one
   * hold of the folder lock and recorded in one index transaction.
   */
  private async inBatches(
    needs: Iterable<NeededPath>,
    select: (need: NeededPath) => boolean,
    apply: (need: NeededPath, commit: Commit) => Promise<Outcome>,
    count: (outcome: Outcome) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let chunk: NeededPath[] = [];
    const flush = async (): Promise<void> => {
      const batch = chunk;
      chunk = [];
      if (batch.length === 0) return;
      const commit: Commit = { records: [], scans: [] };
      await this.ctx.exclusive(async () => {
        for (const need of batch) count(await this.guard(need, () => apply(need, commit)));
        await this.record(commit);
      });
      for (const path of commit.scans) this.ctx.requestScan(path);
    };
    for (const need of needs) {
      throwIfAborted(signal);
      if (!select(need)) continue;
      chunk.push(need);
      if (chunk.length >= COMMIT_BATCH) await flush();
    }
    await flush();
  }

  private async record(commit: Commit): Promise<void> {
    if (commit.records.length === 0) return;
    await this.ctx.index.putLocal(commit.records);
    commit.records = [];
    this.ctx.committed();
  }

  private async guard(need: NeededPath, work: () => Promise<Outcome>): Promise<Outcome> {
    const { path, type } = need.global;
    if (isLocalOnly(path)) return 'skipped'; // a peer's .ferryignore stored before it became local-only
    if (this.ignore.unselected(path)) {
      // Counted as the index counts what is needed: files and symlinks, not directories or deletions.
      if (type !== 'dir' && !need.global.deleted) this.ctx.outcome?.(path, 'unselected');
      return 'skipped';
    }
    if (this.ignore.ignores(path, type === 'dir')) {
      this.ctx.outcome?.(path, 'ignored');
      return 'skipped';
    }
    // Names this device does not write (a deletion of one is never refused for portability: removing is harmless).
    const refused = refusedName(path, { portable: this.ctx.portableNames === true && !need.global.deleted });
    if (refused !== undefined) {
      this.ctx.outcome?.(path, 'refused', refused);
      return 'skipped';
    }
    if (this.ctx.readOnly && need.local && compareVersions(need.local.version, need.global.version) === 'concurrent') {
      // An RO device's own edit: kept until the user reverts it, unless it already equals the global version.
      if (!sameContent(need.local, need.global)) return 'skipped';
    }
    try {
      const outcome = await work();
      if (outcome === 'done') this.ctx.outcome?.(path, 'done');
      return outcome;
    } catch (err) {
      if (isFerryError(err, 'ABORTED')) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      if (isFerryError(err, 'PATH_UNSAFE')) {
        this.ctx.logger.warn('refusing an unsafe path', { path, err });
        this.ctx.outcome?.(path, 'refused', reason);
        return 'skipped';
      }
      this.ctx.logger.warn('cannot sync, will retry', { path, err: err instanceof Error ? err : String(err) });
      // Said plainly: a full disk is not a peer's fault, and the folder reports it as such.
      const why = isDiskFull(err) && !isFerryError(err, 'DISK_FULL') ? `the folder's disk is full: ${reason}` : reason;
      this.ctx.outcome?.(path, 'failed', why);
      return 'failed';
    }
  }

  /** Our own version lost a conflict: it is kept under a conflict name, not archived. */
  private lostConflict(need: NeededPath): boolean {
    const { local, global } = need;
    return (
      local !== undefined &&
      !local.deleted &&
      local.modifiedBy === this.ctx.deviceShortId &&
      compareVersions(global.version, local.version) === 'concurrent'
    );
  }

  /** Records the global record as the local one, with what the disk holds (stats). */
  private async recordOne(global: FileRecord, stats: Stats | undefined): Promise<void> {
    await this.ctx.index.putLocal([asLocal(global, stats)]);
    this.ctx.committed();
  }

  /**
   * Moves what is at the target out of the way: our losing version to its conflict name, anything
   * else to the archive. Returns the conflict copy's path, if one was made.
   */
  private async clearTarget(need: NeededPath, target: ResolvedTarget, renameFollows = false): Promise<string | undefined> {
    if (!target.stats) return undefined;
    if (target.stats.isDirectory()) {
      await this.ctx.paths.io.rmdir(target.abs); // a directory replaced by a file: only when empty (children go first)
      this.ctx.paths.noteRemoved(target.parentAbs, target.diskName); // no longer a verified parent
      return undefined;
    }
    if (this.lostConflict(need)) {
      const local = need.local!;
      let copy = conflictPath(need.global.path, local.mtimeMs, local.modifiedBy);
      for (let n = 1; await exists(join(target.parentAbs, basename(copy))); n++) {
        copy = conflictPath(need.global.path, local.mtimeMs, `${local.modifiedBy}-${n}`);
      }
      this.ctx.paths.renameWithin(target, target.diskName, basename(copy));
      this.ctx.logger.info('conflict: our version kept as a copy', { path: need.global.path, copy });
      return copy;
    }
    // The version replaced is the local record's (diskMatches held): archived with the device that made it.
    const kept = need.local && !need.local.deleted ? { device: need.local.modifiedBy } : {};
    // A rename over the target follows: the old version stays at its name until then (a hard link
    // keeps it in the archive), so a failed install leaves it there, never an empty name.
    if (renameFollows && (await this.ctx.archive.keepLinked(target.diskRel, kept)) !== null) return undefined;
    await this.ctx.archive.keep(target.diskRel, kept);
    return undefined;
  }

  /** Under the folder lock: the directory exists with the global mode. */
  private async pullDir(need: NeededPath, commit: Commit): Promise<Outcome> {
    const { global, local } = need;
    const target = await this.ctx.paths.resolve(global.path, { createParents: true });
    if (target.stats?.isDirectory()) {
      if ((target.stats.mode & 0o777) !== (global.mode & 0o777)) await chmodNoFollow(target.abs, global.mode & 0o777, this.ctx.paths.io);
    } else {
      if (!diskMatches(target.stats, local)) return this.changedOnDisk(global.path);
      const copy = await this.clearTarget(need, target);
      if (copy) commit.scans.push(copy);
      await this.ctx.paths.makeDir(target.abs, global.mode);
      await chmodNoFollow(target.abs, global.mode & 0o777, this.ctx.paths.io);
      this.ctx.paths.noteCreated(target.parentAbs, target.diskName);
    }
    commit.records.push(asLocal(global, await lstat(target.abs)));
    return 'done';
  }

  private async pullSymlink(need: NeededPath): Promise<Outcome> {
    const { global, local } = need;
    return this.ctx.exclusive(async () => {
      const target = await this.ctx.paths.resolve(global.path, { createParents: true });
      if (target.clash) return this.keepClashApart(need, target);
      if (target.stats?.isSymbolicLink() && (await readlink(target.abs)) === global.linkTarget) {
        await this.recordOne(global, await lstat(target.abs));
        return 'done';
      }
      if (!diskMatches(target.stats, local)) return this.changedOnDisk(global.path);
      const temp = join(target.parentAbs, tempName(global.path, global.version));
      await rm(temp, { force: true });
      await this.ctx.paths.io.symlink(global.linkTarget!, temp);
      const copy = await this.clearTarget(need, target, true);
      const placed = this.ctx.paths.renameWithin(target, basename(temp), target.diskName);
      await fsyncDir(target.parentAbs);
      this.ctx.paths.noteCreated(target.parentAbs, target.diskName);
      await this.recordOne(global, placed);
      if (copy) this.ctx.requestScan(copy);
      return 'done';
    });
  }

  private async pullFile(need: NeededPath, signal: AbortSignal): Promise<Outcome> {
    const { global, local } = need;
    let target = await this.ctx.paths.resolve(global.path, { createParents: true });
    if (target.clash) {
      const settled = await this.settleCaseRename(target.clash);
      if (!settled) return this.keepClashApart(need, target);
      target = await this.ctx.paths.resolve(global.path, { createParents: true });
    }
    // Same content already here (metadata change, or an identical concurrent edit): no transfer.
    if (local && sameContent(local, global) && diskMatches(target.stats, local)) {
      return this.ctx.exclusive(async () => {
        const now = await this.ctx.paths.resolve(global.path);
        if (!diskMatches(now.stats, local)) return this.changedOnDisk(global.path);
        await chmodNoFollow(now.abs, global.mode & 0o777, this.ctx.paths.io);
        await this.ctx.paths.io.lutimes(now.abs, new Date(), global.mtimeMs / 1000);
        await this.recordOne(global, await lstat(now.abs));
        return 'done';
      });
    }
    const tempAbs = childPath(target.parentAbs, tempName(global.path, global.version));
    this.temps.set(tempAbs, { path: global.path, version: global.version });
    const movedFrom = await this.moveRenamedSource(global, tempAbs);
    if (!movedFrom) {
      await this.fetch(global, tempAbs, signal);
      // Installed with whatever else finished meanwhile: one lock hold, one index commit per batch.
      return this.installer.install(need, tempAbs);
    }
    let outcome: Outcome = 'failed';
    try {
      outcome = await this.installer.install(need, tempAbs);
    } finally {
      if (outcome !== 'done') await this.moveBack(movedFrom, tempAbs);
    }
    return outcome;
  }

  private async fetch(global: FileRecord, tempAbs: string, signal: AbortSignal): Promise<void> {
    const path = global.path;
    try {
      await this.fetchBlocks(global, tempAbs, signal, (bytes) => this.partial.set(path, (this.partial.get(path) ?? 0) + bytes));
    } finally {
      this.partial.delete(path);
    }
  }

  private async fetchBlocks(global: FileRecord, tempAbs: string, signal: AbortSignal, progress: (bytes: number) => void): Promise<void> {
    await fetchIntoTemp({
      progress,
      folderId: this.ctx.folderId,
      root: this.ctx.root,
      index: this.ctx.index,
      record: global,
      tempAbs,
      peers: global.size > 0 ? this.ctx.peersFor(global) : [],
      budget: this.ctx.budget,
      buffers: this.buffers,
      direct: this.directBuffers,
      relocated: (path) => this.moved.get(path),
      stats: this.ctx.stats,
      download: this.ctx.download,
      signal,
      logger: this.ctx.logger,
      io: this.ctx.paths.io,
    });
  }

  /**
   * A renamed or moved file arrives as a new path plus a tombstone for the old one. When a local
   * file whose deletion is due holds exactly the new content (and the disk still matches its
   * record), it is moved to the new path's temp file instead of being copied block by block: a
   * 1 GiB rename costs one rename. The old path's deletion then finds nothing left to archive.
   */
  private async moveRenamedSource(global: FileRecord, tempAbs: string): Promise<{ path: string; abs: string } | undefined> {
    if (global.size === 0 || global.blocks.length === 0) return undefined;
    const source = this.ctx.index.findBlock(global.blocks[0]!)?.path;
    if (source === undefined || source === global.path || this.moved.has(source)) return undefined;
    const dueForDeletion = (): FileRecord | undefined => {
      const holder = this.ctx.index.getLocal(source);
      const tombstone = this.ctx.index.getGlobal(source);
      if (!holder || !tombstone?.deleted || !sameContent(holder, global)) return undefined;
      // Only a deletion that will really be applied (not an RO or conflicting local edit that stays).
      return compareVersions(holder.version, tombstone.version) === 'older' ? holder : undefined;
    };
    if (!dueForDeletion()) return undefined;
    return this.ctx.exclusive(async () => {
      const holder = dueForDeletion();
      if (!holder || this.moved.has(source)) return undefined;
      try {
        const from = await this.ctx.paths.resolve(source);
        if (!from.stats || !diskMatches(from.stats, holder)) return undefined;
        await rename(from.abs, tempAbs);
        // Other files pulled meanwhile copy the same blocks from here.
        this.moved.set(source, tempAbs);
        this.ctx.paths.noteRemoved(from.parentAbs, from.diskName);
        OWN_WRITES.note(from.abs, undefined);
        return { path: source, abs: from.abs };
      } catch (err) {
        // Another file system below the folder (EXDEV), an unsafe path: copy the blocks instead.
        this.ctx.logger.debug('cannot move a renamed file; copying it', { path: global.path, from: source, err: err instanceof Error ? err : String(err) });
        return undefined;
      }
    });
  }

  /** The moved file could not be installed: it goes back where it was (its deletion then archives it as usual). */
  private async moveBack(from: { path: string; abs: string }, tempAbs: string): Promise<void> {
    this.moved.delete(from.path);
    await this.ctx.exclusive(async () => {
      if (await exists(from.abs)) return; // something new is there: the temp stays and is reused or swept
      await rename(tempAbs, from.abs).catch(() => undefined);
      OWN_WRITES.note(from.abs, await lstat(from.abs).catch(() => undefined));
    });
  }

  /**
   * A case-only rename arriving as "new A.txt" + "tombstone a.txt": apply the tombstone first, so the
   * two never coexist (on a case-insensitive disk they would be one file). False for a real clash.
   */
  private async settleCaseRename(clashDiskRel: string): Promise<boolean> {
    const clashPath = clashDiskRel.normalize('NFC');
    const global = this.ctx.index.getGlobal(clashPath);
    const local = this.ctx.index.getLocal(clashPath);
    if (!global?.deleted || !local || local.deleted) return false;
    return this.ctx.exclusive(async () => {
      const commit: Commit = { records: [], scans: [] };
      const outcome = await this.pullDeletion({ global, local }, commit);
      await this.record(commit);
      return outcome === 'done';
    });
  }

  /**
   * Two names this volume cannot hold side by side (it is case-insensitive; a case-sensitive one has
   * no clashes): the incoming one is kept out and reported here, never written under another name
   * (a copy would be a new file that syncs back to every device).
   */
  private keepClashApart(need: NeededPath, target: ResolvedTarget): Outcome {
    const reason = `differs only in case from ${target.clash}, which this case-insensitive volume cannot hold beside it`;
    this.ctx.outcome?.(need.global.path, 'refused', reason);
    return 'skipped';
  }

  /** Under the folder lock: the file goes to the archive, an empty directory goes, the tombstone is recorded. */
  private async pullDeletion(need: NeededPath, commit: Commit): Promise<Outcome> {
    const { global, local } = need;
    if (local && !local.deleted) {
      let target: ResolvedTarget | undefined;
      try {
        target = await this.ctx.paths.resolve(global.path);
      } catch (err) {
        if (!isFerryError(err, 'IO') || (err.cause as { code?: string })?.code !== 'ENOENT') throw err;
      }
      if (target?.stats) {
        if (!diskMatches(target.stats, local)) return this.changedOnDisk(global.path);
        if (target.stats.isDirectory()) {
          if (!(await this.removeDir(target.abs))) {
            this.ctx.logger.info('deleted directory still holds local files; kept', { path: global.path });
            return this.changedOnDisk(global.path);
          }
        } else {
          await this.ctx.archive.keep(target.diskRel, local && !local.deleted ? { device: local.modifiedBy } : {});
        }
        this.ctx.paths.noteRemoved(target.parentAbs, target.diskName);
        OWN_WRITES.note(target.abs, undefined);
      }
    }
    commit.records.push(asLocal(global, undefined));
    return 'done';
  }

  /** rmdir, after clearing NAS litter and stale temp files; false when real files remain. */
  private async removeDir(abs: string): Promise<boolean> {
    try {
      await this.ctx.paths.io.rmdir(abs);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const names = await readdir(abs);
    if (!names.every((name) => NAS_LITTER_NAMES.has(name) || name.startsWith(TEMP_FILE_PREFIX))) return false;
    for (const name of names) await rm(join(abs, name), { recursive: true, force: true });
    await this.ctx.paths.io.rmdir(abs);
    return true;
  }

  /** The user changed the path since it was indexed: leave it, have it scanned (it becomes a newer version). */
  private changedOnDisk(path: string): Outcome {
    this.ctx.logger.info('changed on disk since indexed; scanning before syncing it', { path });
    this.ctx.requestScan(path);
    return 'failed';
  }
}

async function exists(abs: string): Promise<boolean> {
  try {
    await lstat(abs);
    return true;
  } catch {
    return false;
  }
}
