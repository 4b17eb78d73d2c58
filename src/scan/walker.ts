// Streaming directory walk: yields one entry at a time via fs.opendir and lstat, never holding a whole tree.

import { lstat, opendir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { throwIfAborted } from '../util/abort.js';
import { IgnoreRules } from './ignore.js';
import { resolveDiskPath, toIndexPath } from './disk-path.js';
import type { FileType } from '../index/records.js';

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
}

interface PendingDir {
  indexPath: string;
  diskPath: string;
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

async function exists(absPath: string): Promise<boolean> {
  try {
    await lstat(absPath);
    return true;
  } catch {
    return false;
  }
}

function isAncestorIgnored(ignore: IgnoreRules, relPath: string): boolean {
  let slash = relPath.indexOf('/');
  while (slash >= 0) {
    if (ignore.ignores(relPath.slice(0, slash), true)) return true;
    slash = relPath.indexOf('/', slash + 1);
  }
  return false;
}

async function entryFor(
  root: string,
  indexPath: string,
  diskPath: string,
  ignore: IgnoreRules,
  onError: (relPath: string, err: Error) => void,
): Promise<WalkEntry | undefined> {
  let stats: Stats;
  try {
    stats = await lstat(join(root, diskPath));
  } catch (err) {
    onError(indexPath, err as Error);
    return undefined;
  }
  const type = typeOf(stats);
  if (!type || ignore.ignores(indexPath, type === 'dir')) return undefined;
  const entry: WalkEntry = {
    path: indexPath,
    type,
    size: type === 'file' ? stats.size : 0,
    mode: stats.mode & 0o7777,
    mtimeMs: stats.mtimeMs,
    inode: stats.ino,
  };
  if (diskPath !== indexPath) entry.diskPath = diskPath;
  if (type === 'symlink') {
    try {
      entry.linkTarget = await readlink(join(root, diskPath));
    } catch (err) {
      onError(indexPath, err as Error);
      return undefined;
    }
  }
  return entry;
}

/** lstat calls in flight per directory: enough to keep the thread pool busy, bounded in memory. */
const LSTAT_CONCURRENCY = 32;

async function* statAll(
  root: string,
  diskPaths: string[],
  ignore: IgnoreRules,
  onError: (relPath: string, err: Error) => void,
  stack: PendingDir[],
): AsyncGenerator<WalkEntry> {
  const entries = await Promise.all(diskPaths.map((diskPath) => entryFor(root, toIndexPath(diskPath), diskPath, ignore, onError)));
  for (const [i, entry] of entries.entries()) {
    if (!entry) continue;
    yield entry;
    if (entry.type === 'dir') stack.push({ indexPath: entry.path, diskPath: diskPaths[i]! });
  }
}

/**
 * Walks `root` (or one subtree of it) depth-first. Directories are yielded before their contents.
 * Memory is bounded by the directories waiting to be read, not by the number of files.
 */
export async function* walk(root: string, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const ignore = options.ignore ?? IgnoreRules.builtIn();
  const onError = options.onError ?? (() => undefined);
  const { signal } = options;
  const under = normaliseUnder(options.under);
  const stack: PendingDir[] = [];

  if (under === '') {
    stack.push({ indexPath: '', diskPath: '' });
  } else {
    if (isAncestorIgnored(ignore, under)) return;
    const diskPath = await resolveDiskPath(root, under, exists);
    if (diskPath === undefined) return; // gone: nothing to report
    const entry = await entryFor(root, toIndexPath(diskPath), diskPath, ignore, onError);
    if (!entry) return;
    yield entry;
    if (entry.type === 'dir') stack.push({ indexPath: entry.path, diskPath });
  }

  while (stack.length > 0) {
    throwIfAborted(signal);
    const dir = stack.pop()!;
    let handle;
    try {
      handle = await opendir(join(root, dir.diskPath), { bufferSize: 64 });
    } catch (err) {
      onError(dir.indexPath, err as Error);
      continue;
    }
    try {
      let names: string[] = [];
      for await (const dirent of handle) {
        throwIfAborted(signal);
        names.push(dir.diskPath === '' ? dirent.name : `${dir.diskPath}/${dirent.name}`);
        if (names.length < LSTAT_CONCURRENCY) continue;
        yield* statAll(root, names, ignore, onError, stack);
        names = [];
      }
      yield* statAll(root, names, ignore, onError, stack);
    } catch (err) {
      // An abort, or a directory that failed mid-read; the handle is closed by for-await either way.
      if (signal?.aborted) throw err;
      onError(dir.indexPath, err as Error);
    }
  }
}
