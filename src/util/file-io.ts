// The seams under the daemon's file operations inside a folder: FileIo, the writing ones (open for
// writing, write, fsync, rename, link, mkdir, unlink, rmdir, symlink, chmod, utimes), and FileReads,
// the scanner's reading ones (readdir, lstat, readlink). node:fs itself in production, a
// fault-injecting wrapper in tests.

import { fchmodSync, futimesSync, linkSync, lstat as lstatCallback, lstatSync, openSync, renameSync, writeSync, type Stats } from 'node:fs';
import { chmod, lutimes, mkdir, opendir, readlink, rmdir, symlink, unlink } from 'node:fs/promises';
import { fchmodFd, fdatasyncFd, fsyncFd, openFd, truncateFd, writeFd } from './fd.js';

/**
 * The writing file operations of the folder I/O (disk-path, fetcher, installer, puller, archive). An
 * explicit dependency: a DiskPaths, an Archive and a FolderSync take one as their `io` option
 * (NODE_FILE_IO when omitted). Reads go straight to node:fs.
 */
export interface FileIo {
  /** open(2) of a file the daemon writes (temp files, probes), promisified. */
  readonly open: (path: string, flags: number, mode?: number) => Promise<number>;
  readonly write: (fd: number, buffer: Buffer, offset: number, length: number, position: number) => Promise<{ bytesWritten: number; buffer: Buffer }>;
  /** open(2) and pwrite(2) on the calling thread: a small file's temp, created and written through the page cache in microseconds. */
  readonly openSync: (path: string, flags: number, mode?: number) => number;
  readonly writeSync: (fd: number, buffer: Buffer, offset: number, length: number, position: number) => number;
  readonly fsync: (fd: number) => Promise<void>;
  readonly fdatasync: (fd: number) => Promise<void>;
  readonly truncate: (fd: number, length: number) => Promise<void>;
  readonly renameSync: (from: string, to: string) => void;
  readonly linkSync: (existing: string, link: string) => void;
  readonly mkdir: (path: string, options: { mode: number }) => Promise<unknown>;
  readonly unlink: (path: string) => Promise<void>;
  /** A deleted directory's removal (only when empty). */
  readonly rmdir: (path: string) => Promise<void>;
  readonly symlink: (target: string, path: string) => Promise<void>;
  /** A record's mode on an entry opened with O_NOFOLLOW (fchmod), or by path when it cannot be opened. */
  readonly fchmod: (fd: number, mode: number) => Promise<void>;
  readonly fchmodSync: (fd: number, mode: number) => void;
  readonly chmod: (path: string, mode: number) => Promise<void>;
  /** A record's mtime (seconds) on an entry: through a descriptor (the installer) or by path, never following a symlink. */
  readonly futimesSync: (fd: number, atime: Date, mtime: number) => void;
  readonly lutimes: (path: string, atime: Date, mtime: number) => Promise<void>;
}

/** Production: node:fs's own functions, by reference (no wrapper, no per-call allocation). */
export const NODE_FILE_IO: FileIo = Object.freeze({
  open: openFd as FileIo['open'],
  write: writeFd as unknown as FileIo['write'],
  openSync: openSync as FileIo['openSync'],
  writeSync: writeSync as FileIo['writeSync'],
  fsync: fsyncFd,
  fdatasync: fdatasyncFd,
  truncate: truncateFd as FileIo['truncate'],
  renameSync,
  linkSync,
  mkdir,
  unlink,
  rmdir: rmdir as FileIo['rmdir'],
  symlink,
  fchmod: fchmodFd,
  fchmodSync,
  chmod,
  futimesSync,
  lutimes,
});

/**
 * The reading file operations of the scanner's walk and deletion pass (scan/walker.ts, scan/presence.ts):
 * an explicit dependency like FileIo (the Scanner's `reads` option, NODE_FILE_READS when omitted).
 */
export interface FileReads {
  /** The names in a directory, streamed (an error may come mid-listing). */
  readonly opendir: (path: string, options: { bufferSize: number }) => Promise<AsyncIterable<{ name: string }>>;
  readonly lstat: (path: string) => Promise<Stats>;
  /**
   * lstat on the calling thread, for entries whose inodes are likely cached (the walk uses it while
   * it answers in microseconds: scan/walker.ts). Absent: the walk uses `lstat` only.
   */
  readonly lstatSync?: (path: string) => Stats;
  readonly readlink: (path: string) => Promise<string>;
}

/**
 * lstat through the callback API: fs/promises allocates a stats array for every call (about 25 %
 * more CPU per call, and garbage), the callback API fills one shared array.
 */
function lstatEntry(path: string): Promise<Stats> {
  return new Promise((resolve, reject) => lstatCallback(path, (err, stats) => (err ? reject(err) : resolve(stats))));
}

/** Production: node:fs. */
export const NODE_FILE_READS: FileReads = Object.freeze({
  opendir,
  lstat: lstatEntry,
  lstatSync: (path: string) => lstatSync(path),
  readlink: (path: string) => readlink(path),
});
