// File descriptors for the hot paths of serving, fetching and installing files: the callback API
// promisified, with a synchronous close (no disk access, microseconds, and no thread-pool round trip
// as FileHandle.close costs).

import { closeSync, constants, fchmod, fdatasync, fstat, fsync, ftruncate, open, read, write } from 'node:fs';
import { promisify } from 'node:util';
import type { BufferPool } from './buffer-pool.js';

/**
 * For reading a file of a synced folder: never through a symlink at the last component (the
 * parents are checked by DiskPaths), and never blocking on a FIFO.
 */
export const READ_NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

export const openFd = promisify(open);
export const readFd = promisify(read);
export const writeFd = promisify(write);
export const fsyncFd = promisify(fsync);
export const fdatasyncFd = promisify(fdatasync);
export const truncateFd = promisify(ftruncate);

/** Closes a descriptor; a failed close of a file only read (or already fsynced) needs no handling. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing to do
  }
}

/** fsync of a directory, so the renames in it are durable; best effort (some file systems refuse it). */
export async function fsyncDir(abs: string): Promise<void> {
  const fd = await openFd(abs, constants.O_RDONLY | constants.O_DIRECTORY).catch(() => undefined);
  if (fd === undefined) return;
  await fsyncFd(fd).catch(() => undefined);
  closeQuietly(fd);
}

export const fstatFd = promisify(fstat);
export const fchmodFd = promisify(fchmod);

/** A directory opened for listing: never through a symlink at the last component. */
export const DIR_NO_FOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** `length` bytes at `position` of `fd` in a buffer taken from `buffers`; undefined (the buffer given back) when the file ends before. */
export async function readExactly(fd: number, length: number, position: number, buffers: BufferPool): Promise<Buffer | undefined> {
  const buffer = buffers.take(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await readFd(fd, buffer, done, length - done, position + done);
    if (bytesRead === 0) {
      buffers.recycle(buffer);
      return undefined;
    }
    done += bytesRead;
  }
  return buffer;
}
