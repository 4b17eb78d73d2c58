// Streaming directory walk: yields one entry at a time via fs.opendir and lstat, never holding a whole tree.

import { lstat, opendir, readlink } from 'node:fs/promises';
import { constants } from 'node:fs';
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
  /** lstat of a directory's entries, a batch at a time. @default fs.promises.lstat of each */
  lstatMany?: LstatMany;
}

/** The fields of an lstat the walk uses. */
export interface EntryStats {
  mode: number;
  size: number;
  mtimeMs: number;
  ino: number;
}

/** lstat of several paths at once (the scanner's runs in a hash worker); a failed one is an Error with the errno code. */
export type LstatMany = (absPaths: string[]) => Promise<Array<EntryStats | Error>>;

interface PendingDir {
  indexPath: string;
  diskPath: string;
}

function typeOf(mode: number): FileType | undefined {
  switch (mode & constants.S_IFMT) {
    case constants.S_IFREG:
      return 'file';
    case constants.S_IFDIR:
      return 'dir';
    case constants.S_IFLNK:
      return 'symlink';
    default:
      return undefined; // sockets, fifos, devices: not synced
  }
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
  const stats = await lstat(join(root, diskPath)).catch((err: Error) => err);
  return entryFrom(root, indexPath, diskPath, stats, ignore, onError);
}

async function entryFrom(
  root: string,
  indexPath: string,
  diskPath: string,
  stats: EntryStats | Error,
  ignore: IgnoreRules,
  onError: (relPath: string, err: Error) => void,
): Promise<WalkEntry | undefined> {
  if (stats instanceof Error) {
    onError(indexPath, stats);
    return undefined;
  }
  const type = typeOf(stats.mode);
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

/** Entries lstat'ed at once: enough to keep the thread pool busy, or one worker message; bounded in memory. */
const LSTAT_BATCH = 32;

function lstatEach(absPaths: string[]): Promise<Array<EntryStats | Error>> {
  return Promise.all(absPaths.map((abs) => lstat(abs).catch((err: Error) => err)));
}

async function* statAll(
  root: string,
  diskPaths: string[],
  ignore: IgnoreRules,
  onError: (relPath: string, err: Error) => void,
  stack: PendingDir[],
  lstatMany: LstatMany,
): AsyncGenerator<WalkEntry> {
  const stats = await lstatMany(diskPaths.map((diskPath) => join(root, diskPath)));
  const entries = await Promise.all(diskPaths.map((diskPath, i) => entryFrom(root, toIndexPath(diskPath), diskPath, stats[i]!, ignore, onError)));
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
  const lstatMany = options.lstatMany ?? lstatEach;
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
        if (names.length < LSTAT_BATCH) continue;
        yield* statAll(root, names, ignore, onError, stack, lstatMany);
        names = [];
      }
      if (names.length > 0) yield* statAll(root, names, ignore, onError, stack, lstatMany);
    } catch (err) {
      // An abort, or a directory that failed mid-read; the handle is closed by for-await either way.
      if (signal?.aborted) throw err;
      onError(dir.indexPath, err as Error);
    }
  }
}
