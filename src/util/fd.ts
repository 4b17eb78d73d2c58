// File descriptors for the hot paths of serving and fetching blocks: the callback API promisified,
// with a synchronous close (no disk access, microseconds, and no thread-pool round trip as
// FileHandle.close costs).

import { closeSync, fsync, ftruncate, open, read, write } from 'node:fs';
import { promisify } from 'node:util';

export const openFd = promisify(open);
export const readFd = promisify(read);
export const writeFd = promisify(write);
export const fsyncFd = promisify(fsync);
export const truncateFd = promisify(ftruncate);

/** Closes a descriptor; a failed close of a file only read (or already fsynced) needs no handling. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing to do
  }
}
