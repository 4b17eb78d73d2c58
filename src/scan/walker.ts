// Streaming directory walk: yields one entry at a time via fs.opendir and lstat, never holding a whole tree.

import { lstat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { NODE_FILE_READS, type FileReads } from '../util/file-io.js';
import { throwIfAborted } from '../util/abort.js';
import { IgnoreRules } from './ignore.js';
import { openFolderDir, resolveDiskPath, toIndexPath, type DirIdentity, type VerifiedDir } from './disk-path.js';
import { FerryError } from '../errors.js';
import { refusedName, refusedSegment } from '../util/names.js';
import { isRecordMtime, MAX_RECORD_MTIME_MS, MIN_RECORD_MTIME_MS, type FileType } from '../index/records.js';

export interface WalkEntry {
  /** Relative, NFC-normalised, '/'-separated; the key the index uses. */
  path: string;
  /** Relative path as spelled on disk, present only when it differs from `path` (e.g. NFD names). */
  diskPath?: string;
  type: FileType;
  /** Bytes for files; 0 for directories and symlinks. */
  size: number;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  mtimeMs: number;
  inode: number;
  /** Target of a symlink as stored in the link; never followed. */
  linkTarget?: string;
}

export interface WalkOptions {
  /** Rules deciding what is skipped (ignored directories are not entered). @default built-in rules only */
  ignore?: IgnoreRules;
  signal?: AbortSignal;
  /** Walk only this relative path (NFC): the entry itself and, for a directory, everything below it. */
  under?: string;
  /** Called for each entry that could not be read; the entry (and for a directory its contents) is skipped. */
  onError?: (relPath: string, err: Error) => void;
  /**
   * Called for each entry whose name this device does not index (util/names.ts: control characters,
   * bidirectional overrides, a case variant of `.ferry`); it (and for a directory its contents) is skipped.
   */
  onRefused?: (relPath: string, reason: string) => void;
  /** The reading file operations (node:fs unless a test injects faults). */
  reads?: FileReads;
  /** Times the synchronous lstat calls (see LstatPace). @default performance.now (tests pass their own) */
  clock?: () => number;
}

interface PendingDir {
  indexPath: string;
  diskPath: string;
  /** As lstat'ed through its parent: the directory opened later must be this one (never a symlink swapped in). */
  identity?: DirIdentity;
}

function typeOf(stats: Stats): FileType | undefined {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'dir';
  if (stats.isSymbolicLink()) return 'symlink';
  return undefined; // sockets, fifos, devices: not synced
}

/** Strips leading/trailing slashes so 'a/b/', '/a/b' and 'a/b' mean the same subtree. */
export function normaliseUnder(under: string | undefined): string {
  return (under ?? '').replace(/^\/+|\/+$/g, '');
}

function isAncestorIgnored(ignore: IgnoreRules, relPath: string): boolean {
  let slash = relPath.indexOf('/');
  while (slash >= 0) {
    if (ignore.ignores(relPath.slice(0, slash), true)) return true;
    slash = relPath.indexOf('/', slash + 1);
  }
  return false;
}

interface Found {
  entry: WalkEntry;
  identity: DirIdentity;
}

/** lstat of one entry of an open directory (through its descriptor), as a WalkEntry; undefined when skipped. */
async function entryFor(
  reads: FileReads,
  lstatOf: (path: string) => Stats | Promise<Stats>,
  dir: VerifiedDir,
  name: string,
  indexPath: string,
  diskPath: string,
  ignore: IgnoreRules,
  onError: (relPath: string, err: Error) => void,
  onRefused: (relPath: string, reason: string) => void,
): Promise<Found | undefined> {
  const refused = refusedSegment(indexPath.slice(indexPath.lastIndexOf('/') + 1), !indexPath.includes('/'));
  if (refused !== undefined) {
    if (!ignore.ignores(indexPath, false)) onRefused(indexPath, refused);
    return undefined;
  }
  let stats: Stats;
  try {
    stats = await lstatOf(dir.entry(name));
  } catch (err) {
    onError(indexPath, err as Error);
    return undefined;
  }
  const type = typeOf(stats);
  if (!type || ignore.ignores(indexPath, type === 'dir')) return undefined;
  // An mtime no record can carry (some file systems hold years past 9999): a directory's is brought
  // into range (nothing compares it); a file or symlink is reported, not indexed, until it gets a real one.
  let mtimeMs = stats.mtimeMs;
  if (!isRecordMtime(mtimeMs)) {
    if (type !== 'dir') {
      onRefused(indexPath, `its modification time (${mtimeMs} ms) is outside the years 0001 to 9999; give it a real one (touch) to sync it`);
      return undefined;
    }
    mtimeMs = Math.min(MAX_RECORD_MTIME_MS, Math.max(MIN_RECORD_MTIME_MS, Number.isFinite(mtimeMs) ? mtimeMs : 0));
  }
  const entry: WalkEntry = {
    path: indexPath,
    type,
    size: type === 'file' ? stats.size : 0,
    mode: stats.mode & 0o7777,
    mtimeMs,
    inode: stats.ino,
  };
  if (diskPath !== indexPath) entry.diskPath = diskPath;
  if (type === 'symlink') {
    try {
      entry.linkTarget = await reads.readlink(dir.entry(name));
    } catch (err) {
      onError(indexPath, err as Error);
      return undefined;
    }
  }
  return { entry, identity: { dev: stats.dev, ino: stats.ino } };
}

/**
 * Directory entries per read: each read is a thread-pool round trip (dear on a VM), and one more
 * finds the end, so 64 took three for a directory of 100 entries; 256 take two (about 30 KiB).
 */
const WALK_DIR_BUFFER = 256;

/** lstat calls in flight per directory: enough to keep the thread pool busy, bounded in memory. */
const LSTAT_CONCURRENCY = 32;

/**
 * A synchronous lstat that takes longer than this waited for the disk (a cached inode answers in a
 * few microseconds): the walk goes back to the thread pool.
 */
export const SYNC_LSTAT_SLOW_MS = 1;
/** Batches of names lstat'ed on the thread pool after a slow synchronous lstat, before the next try. */
export const ASYNC_BATCHES_AFTER_SLOW = 8;

/**
 * Where the walk's lstat calls run. On the thread pool each is a round trip (two thread wake-ups and
 * a promise: about as much CPU as the walk's own work per entry, and on a busy machine the main thread
 * is preempted by the woken thread): 100,000 of them for a first scan of 100,000 files. With the
 * inodes cached (a rescan; a tree just written or read), one on the event loop takes microseconds, so
 * they run there while each answers within SYNC_LSTAT_SLOW_MS; after a slower one (the disk was read,
 * which must not stall the loop for long) the next ASYNC_BATCHES_AFTER_SLOW batches use the thread pool.
 */
class LstatPace {
  /** Batches to go on the thread pool before synchronous calls are tried again. */
  private asyncBatches = 0;

  constructor(
    private readonly reads: FileReads,
    private readonly lstatSync: (path: string) => Stats,
    private readonly clock: () => number,
  ) {}

  /** The lstat for one batch of names: synchronous while the calls stay fast, else the thread pool's. */
  forBatch(): (path: string) => Stats | Promise<Stats> {
    if (this.asyncBatches > 0) {
      this.asyncBatches--;
      return (path) => this.reads.lstat(path);
    }
    let sync = true;
    return (path) => {
      if (!sync) return this.reads.lstat(path);
      const started = this.clock();
      try {
        return this.lstatSync(path);
      } finally {
        if (this.clock() - started > SYNC_LSTAT_SLOW_MS) {
          sync = false;
          this.asyncBatches = ASYNC_BATCHES_AFTER_SLOW;
        }
      }
    };
  }
}

/**
 * The entries of one batch of names of `dir`, or undefined (reported) when the directory is no
 * longer the one opened (a path-based read, off Linux, that a swap would have led elsewhere).
 */
async function statAll(
  reads: FileReads,
  pace: LstatPace | undefined,
  dir: VerifiedDir,
  pending: PendingDir,
  names: string[],
  ignore: IgnoreRules,
  onError: (relPath: string, err: Error) => void,
  onRefused: (relPath: string, reason: string) => void,
): Promise<Found[] | undefined> {
  const lstatOf = pace?.forBatch() ?? reads.lstat;
  const found = await Promise.all(
    names.map((name) => {
      const diskPath = pending.diskPath === '' ? name : `${pending.diskPath}/${name}`;
      return entryFor(reads, lstatOf, dir, name, toIndexPath(diskPath), diskPath, ignore, onError, onRefused);
    }),
  );
  if (!(await dir.stillHere())) {
    onError(pending.indexPath, new FerryError('PATH_UNSAFE', `refusing ${JSON.stringify(pending.indexPath)}: the directory was replaced while it was read`));
    return undefined;
  }
  return found.filter((one): one is Found => one !== undefined);
}

/**
 * Walks `root` (or one subtree of it) depth-first. Directories are yielded before their contents.
 * Memory is bounded by the directories waiting to be read, not by the number of files. Every
 * directory is read through a descriptor opened without following symlinks (scan/disk-path.ts):
 * a directory swapped for a symlink mid-walk leads nowhere outside the folder.
 */
export async function* walk(root: string, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const ignore = options.ignore ?? IgnoreRules.builtIn();
  const onError = options.onError ?? (() => undefined);
  const onRefused = options.onRefused ?? (() => undefined);
  const reads = options.reads ?? NODE_FILE_READS;
  const pace = reads.lstatSync ? new LstatPace(reads, reads.lstatSync, options.clock ?? (() => performance.now())) : undefined;
  const { signal } = options;
  const under = normaliseUnder(options.under);
  const stack: PendingDir[] = [];

  if (under === '') {
    stack.push({ indexPath: '', diskPath: '' });
  } else {
    if (isAncestorIgnored(ignore, under)) return;
    const refused = refusedName(under);
    if (refused !== undefined) {
      onRefused(under, refused);
      return;
    }
    const diskPath = await resolveDiskPath(root, under, async (abs) => (await lstat(abs).catch(() => undefined)) !== undefined);
    if (diskPath === undefined) return; // gone: nothing to report
    const slash = diskPath.lastIndexOf('/');
    const parentRel = slash < 0 ? '' : diskPath.slice(0, slash);
    let parent: VerifiedDir;
    try {
      parent = await openFolderDir(root, parentRel);
    } catch (err) {
      onError(toIndexPath(parentRel), err as Error);
      return;
    }
    let found: Found[] | undefined;
    try {
      found = await statAll(reads, pace, parent, { indexPath: toIndexPath(parentRel), diskPath: parentRel }, [diskPath.slice(slash + 1)], ignore, onError, onRefused);
    } finally {
      parent.close();
    }
    const first = found?.[0];
    if (!first) return;
    yield first.entry;
    if (first.entry.type === 'dir') stack.push({ indexPath: first.entry.path, diskPath, identity: first.identity });
  }

  while (stack.length > 0) {
    throwIfAborted(signal);
    const pending = stack.pop()!;
    let dir: VerifiedDir;
    try {
      dir = await openFolderDir(root, pending.diskPath, pending.identity);
    } catch (err) {
      onError(pending.indexPath, err as Error);
      continue;
    }
    try {
      const handle = await reads.opendir(dir.base, { bufferSize: WALK_DIR_BUFFER });
      let names: string[] = [];
      const flush = async function* (): AsyncGenerator<WalkEntry> {
        const found = await statAll(reads, pace, dir, pending, names, ignore, onError, onRefused);
        names = [];
        if (!found) throw new DirectoryReplaced();
        for (const { entry, identity } of found) {
          yield entry;
          if (entry.type === 'dir') stack.push({ indexPath: entry.path, diskPath: entry.diskPath ?? entry.path, identity });
        }
      };
      for await (const dirent of handle) {
        throwIfAborted(signal);
        names.push(dirent.name);
        if (names.length < LSTAT_CONCURRENCY) continue;
        yield* flush();
      }
      yield* flush();
    } catch (err) {
      // An abort, or a directory that failed mid-read; the handle is closed by for-await either way.
      if (signal?.aborted) throw err;
      if (!(err instanceof DirectoryReplaced)) onError(pending.indexPath, err as Error);
    } finally {
      dir.close();
    }
  }
}

/** Ends the reading of one directory (already reported). */
class DirectoryReplaced extends Error {}
