// Small files of one folder whose data this process read or wrote moments ago (hashed by the
// scanner, installed by the puller), so the block server may read them with synchronous calls.

import { pathDigest } from '../util/path-digest.js';

/** Files up to this size are noted (one block, served in one read). */
export const WARM_FILE_MAX_BYTES = 64 * 1024;
/** How long after it was read or written a file counts as warm. */
export const WARM_WINDOW_MS = 60_000;
/** Files remembered at most (oldest dropped first), as 53-bit digests of their paths: about 2 MiB. */
export const WARM_FILES_MAX = 50_000;

/**
 * Why: on a VM every thread-pool round trip costs ~100 µs of CPU in thread wake-ups, several times
 * what a synchronous open or read of a file in the page cache takes. A file hashed or written in
 * the last minute is almost surely cached, so reading it synchronously costs microseconds; any
 * other file is read through the thread pool, so a cold disk (a NAS's sleeping drive) never blocks
 * the event loop. A digest collision or an evicted page only costs one synchronous disk read.
 */
export class WarmFiles {
  /** Path digest → when the file was noted; in insertion order, so the oldest go first. */
  private readonly notedAtMs = new Map<number, number>();

  constructor(private readonly windowMs = WARM_WINDOW_MS) {}

  /** The file at `path` (folder-relative) of `size` bytes was just read or written whole. */
  note(path: string, size: number): void {
    if (size > WARM_FILE_MAX_BYTES) return;
    const key = pathDigest(path);
    this.notedAtMs.delete(key);
    this.notedAtMs.set(key, Date.now());
    if (this.notedAtMs.size > WARM_FILES_MAX) this.notedAtMs.delete(this.notedAtMs.keys().next().value!);
  }

  isWarm(path: string): boolean {
    const key = pathDigest(path);
    const at = this.notedAtMs.get(key);
    if (at === undefined) return false;
    if (Date.now() - at <= this.windowMs) return true;
    this.notedAtMs.delete(key);
    return false;
  }

  get size(): number {
    return this.notedAtMs.size;
  }
}
