// Installs fetched temp files in batches: their data made durable together, then one hold of the folder lock, one fsync per directory and one index transaction per batch.

import { closeSync, lstatSync, openSync, readlinkSync, type Stats } from 'node:fs';
import { FerryError, isDiskFull } from '../errors.js';
import type { FileRecord } from '../index/records.js';
import { OWN_WRITES } from '../scan/own-writes.js';
import type { WarmFiles } from '../scan/warm-files.js';
import { lstat } from 'node:fs/promises';
import { closeQuietly, fsyncDir, READ_NO_FOLLOW } from '../util/fd.js';
import { chmodNoFollow } from '../scan/disk-path.js';
import type { FolderIndex, NeededPath, NewFileRecord } from '../index/types.js';
import { parentOfDiskRel } from '../scan/disk-path.js';
import type { DiskPaths, ResolvedTarget } from './paths.js';

/** Most files installed under one hold of the folder lock and recorded in one index transaction. */
export const INSTALL_BATCH = 500;
/** Files of a batch being moved into place at once. */
const INSTALL_CONCURRENCY = 8;
/**
 * fdatasyncs of a batch's new small files in flight at once (on the thread pool, 8 threads): the
 * file system's journal commits them together, each commit covering every one waiting for it.
 */
const DURABLE_CONCURRENCY = 16;

export type InstallOutcome = 'done' | 'failed';

/** What the installer needs from the puller. */
export interface InstallContext {
  readonly index: FolderIndex;
  readonly paths: DiskPaths;
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /** Whether the disk entry is what the local record says. */
  diskMatches(stats: Stats | undefined, local: FileRecord | undefined): boolean;
  /** The path changed on disk since it was indexed: have it scanned; the file is not installed. */
  changedOnDisk(path: string): InstallOutcome;
  /** Makes way for the rename over the target (an older version is archived by a hard link where it can, staying at its name until replaced); returns a conflict copy's path to scan, if one was made. */
  clearTarget(need: NeededPath, target: ResolvedTarget): Promise<string | undefined>;
  /** The global record as the local one, with what the disk really holds. */
  asLocal(global: FileRecord, stats: Stats): NewFileRecord;
  /** The temp file is in place (or gone): stop tracking it. */
  installed(tempAbs: string, abs: string): void;
  requestScan(path: string): void;
  committed(): void;
  readonly warmFiles?: WarmFiles;
}

interface Pending {
  need: NeededPath;
  /** null: the content is on disk already; only the mode and mtime are applied (applyMetadata). */
  tempAbs: string | null;
  /** false: the temp file's data is not durable yet (a new small file): fdatasynced before its rename. */
  durable?: boolean;
  /** A symlink (installSymlink): tempAbs, when set, is a link made for the record, renamed over the target as it is. */
  symlink?: boolean;
  resolve(outcome: InstallOutcome): void;
  reject(err: unknown): void;
}

/**
 * Gives a complete temp file the record's mode and mtime (and, when new, the folder's owner) and
 * renames it over the target. Synchronous: these calls touch only inodes and a directory the daemon
 * has just written or looked up, so each takes microseconds, less than the thread-pool round trip
 * (two thread wake-ups) an async call costs; for a stream of small files that was most of the work.
 */
export function placeTemp(tempAbs: string, global: FileRecord, target: ResolvedTarget, paths: DiskPaths): Stats {
  // The parent is opened again, every component with O_NOFOLLOW, and the temp file is placed through
  // that descriptor: a directory swapped for a symlink since the target was resolved is refused.
  const parent = paths.dirs.open(parentOfDiskRel(target));
  try {
    const temp = parent.entry(tempAbs.slice(tempAbs.lastIndexOf('/') + 1));
    const final = parent.entry(target.diskName);
    // Through a descriptor opened with O_NOFOLLOW: a temp file swapped for a symlink (its name is
    // predictable) must not hand the record's mode to whatever the link points at.
    let fd: number;
    try {
      fd = openSync(temp, READ_NO_FOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new FerryError('PATH_UNSAFE', `refusing ${JSON.stringify(global.path)}: its temp file was replaced by a symlink`);
      throw err;
    }
    try {
      paths.io.fchmodSync(fd, global.mode & 0o777);
      paths.io.futimesSync(fd, new Date(), global.mtimeMs / 1000);
    } finally {
      closeSync(fd);
    }
    if (!target.stats) paths.adopt(temp);
    paths.io.renameSync(temp, final);
    return lstatSync(final);
  } finally {
    parent.close();
  }
}

/**
 * Files whose temp file is complete and fsynced wait here; a batch is installed as soon as the
 * previous one is done, so a lone file goes at once and a stream of small files shares the cost
 * of the lock, the directory fsyncs and the index commit.
 */
export class BatchInstaller {
  private queue: Pending[] = [];
  private running: Promise<void> | null = null;

  constructor(private readonly ctx: InstallContext) {}

  /**
   * Resolves once the file is in place and recorded (or was left alone: 'failed'); rejects on I/O errors.
   * `durable` false: the temp file's data is not on disk for sure yet; it is fdatasynced (with the
   * batch's other such files) before it is renamed into place.
   */
  install(need: NeededPath, tempAbs: string, durable = true): Promise<InstallOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ need, tempAbs, durable, resolve, reject });
      this.kick();
    });
  }

  /**
   * A symlink made beside the target (`tempAbs`, pointing where the record says) is renamed over it, batched like
   * files: one lock hold, one directory fsync and one index transaction for many links, not one each. `tempAbs`
   * null: the link is on disk already and only recorded (if it still is).
   */
  installSymlink(need: NeededPath, tempAbs: string | null): Promise<InstallOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ need, tempAbs, symlink: true, resolve, reject });
      this.kick();
    });
  }

  /**
   * The same content is on disk already (a touch, a chmod): the record's mode and mtime are applied in place,
   * batched like installs, so a hundred touched files cost one index transaction, not a hundred.
   */
  applyMetadata(need: NeededPath): Promise<InstallOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ need, tempAbs: null, resolve, reject });
      this.kick();
    });
  }

  /** Resolves when nothing waits to be installed. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private kick(): void {
    if (this.running) return;
    this.running = (async () => {
      while (this.queue.length > 0) {
        const batch = await this.makeDurable(this.queue.splice(0, INSTALL_BATCH));
        if (batch.length === 0) continue;
        await this.ctx.exclusive(() => this.installBatch(batch)).catch((err: unknown) => {
          for (const entry of batch) entry.reject(err);
        });
      }
    })().finally(() => {
      this.running = null;
      if (this.queue.length > 0) this.kick();
    });
  }

  /**
   * fdatasyncs the batch's temp files that are not durable yet, all at once (outside the folder lock),
   * so that a file is renamed into place only once its data is on disk: a crash leaves the old file or
   * the new one, never a new name over missing data. Returns the entries to install; one whose
   * fdatasync failed is rejected and its temp file removed.
   */
  private async makeDurable(batch: Pending[]): Promise<Pending[]> {
    const unsynced = batch.filter((entry) => entry.durable === false && entry.tempAbs !== null);
    if (unsynced.length === 0) return batch;
    const failed = new Set<Pending>();
    const syncOne = async (entry: Pending): Promise<void> => {
      const tempAbs = entry.tempAbs!;
      let fd = -1;
      try {
        fd = openSync(tempAbs, READ_NO_FOLLOW);
        await this.ctx.paths.io.fdatasync(fd);
        entry.durable = true;
      } catch (err) {
        failed.add(entry);
        // After a failed fdatasync the page cache may still show data the disk does not have (the kernel
        // may mark the pages clean): the temp file is not reused but fetched again.
        await this.ctx.paths.io.unlink(tempAbs).catch(() => undefined);
        const path = entry.need.global.path;
        const message = err instanceof Error ? err.message : String(err);
        entry.reject(
          isDiskFull(err)
            ? new FerryError('DISK_FULL', `the folder's disk is full (writing ${path}): ${message}`, { cause: err })
            : new FerryError('IO', `cannot make the temp file of ${path} durable: ${message}`, { cause: err }),
        );
      } finally {
        if (fd >= 0) closeQuietly(fd);
      }
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(DURABLE_CONCURRENCY, unsynced.length) }, async () => {
        while (next < unsynced.length) await syncOne(unsynced[next++]!);
      }),
    );
    return failed.size === 0 ? batch : batch.filter((entry) => !failed.has(entry));
  }

  private async installBatch(batch: Pending[]): Promise<void> {
    const records: NewFileRecord[] = [];
    const parents = new Set<string>();
    const done: Pending[] = [];
    const scans: string[] = [];
    const installOne = async (entry: Pending): Promise<void> => {
      const { global, local } = entry.need;
      try {
        const now = await this.ctx.paths.resolve(global.path, { createParents: true });
        if (entry.symlink && now.stats?.isSymbolicLink() && readlinkSync(now.abs) === global.linkTarget) {
          // The link is there already (made by another device's sync of the same tree, say): only recorded.
          if (entry.tempAbs !== null) await this.ctx.paths.io.unlink(entry.tempAbs).catch(() => undefined);
          records.push(this.ctx.asLocal(global, now.stats));
          done.push(entry);
          return;
        }
        if (entry.symlink && entry.tempAbs === null) {
          entry.resolve(this.ctx.changedOnDisk(global.path)); // it was there moments ago
          return;
        }
        if (!this.ctx.diskMatches(now.stats, local)) {
          entry.resolve(this.ctx.changedOnDisk(global.path));
          return;
        }
        if (entry.tempAbs === null) {
          await chmodNoFollow(now.abs, global.mode & 0o777, this.ctx.paths.io);
          await this.ctx.paths.io.lutimes(now.abs, new Date(), global.mtimeMs / 1000);
          const stats = await lstat(now.abs);
          OWN_WRITES.note(now.abs, stats);
          records.push(this.ctx.asLocal(global, stats));
          done.push(entry);
          return;
        }
        if (entry.symlink) {
          const copy = await this.ctx.clearTarget(entry.need, now);
          if (copy) scans.push(copy);
          const placed = this.ctx.paths.renameWithin(now, entry.tempAbs.slice(entry.tempAbs.lastIndexOf('/') + 1), now.diskName);
          this.ctx.paths.noteCreated(now.parentAbs, now.diskName);
          parents.add(now.parentAbs);
          OWN_WRITES.note(now.abs, placed);
          records.push(this.ctx.asLocal(global, placed));
          done.push(entry);
          return;
        }
        const copy = await this.ctx.clearTarget(entry.need, now);
        if (copy) scans.push(copy);
        const stats = placeTemp(entry.tempAbs, global, now, this.ctx.paths);
        this.ctx.installed(entry.tempAbs, now.abs);
        this.ctx.paths.noteCreated(now.parentAbs, now.diskName);
        parents.add(now.parentAbs);
        OWN_WRITES.note(now.abs, stats);
        this.ctx.warmFiles?.note(global.path, stats.size);
        records.push(this.ctx.asLocal(global, stats));
        done.push(entry);
      } catch (err) {
        entry.reject(err);
      }
    };
    // Different paths are independent: their file system calls overlap (each one is a thread-pool
    // round trip), while a path queued twice keeps its order (the later one waits for the next batch).
    const seen = new Set<string>();
    const now: Pending[] = [];
    for (const entry of batch) {
      if (seen.has(entry.need.global.path)) this.queue.push(entry);
      else {
        seen.add(entry.need.global.path);
        now.push(entry);
      }
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(INSTALL_CONCURRENCY, now.length) }, async () => {
        while (next < now.length) await installOne(now[next++]!);
      }),
    );
    try {
      await Promise.all([...parents].map((dir) => fsyncDir(dir)));
      if (records.length > 0) {
        await this.ctx.index.putLocal(records);
        this.ctx.committed();
      }
    } catch (err) {
      for (const entry of done) entry.reject(err);
      return;
    } finally {
      for (const path of scans) this.ctx.requestScan(path);
    }
    for (const entry of done) entry.resolve('done');
  }
}
