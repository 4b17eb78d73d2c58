// Small files of one folder whose data this process read or wrote moments ago (hashed by the
// scanner, installed by the puller), so the block server may read them with synchronous calls.

import { pathDigest } from '../util/path-digest.js';

/** Files up to this size are noted (one block, served in one read). */
export const WARM_FILE_MAX_BYTES = 64 * 1024;
/** How long after it was read or written a file counts as warm. */
export const WARM_WINDOW_MS = 60_000;
/** Files remembered at most (oldest dropped first), as 53-bit digests of their paths: 1.5 MiB of arrays. */
export const WARM_FILES_MAX = 50_000;

/**
 * Why: on a VM every thread-pool round trip costs ~100 µs of CPU in thread wake-ups, several times
 * what a synchronous open or read of a file in the page cache takes. A file hashed or written in
 * the last minute is almost surely cached, so reading it synchronously costs microseconds; any
 * other file is read through the thread pool, so a cold disk (a NAS's sleeping drive) never blocks
 * the event loop. A digest collision or an evicted page only costs one synchronous disk read.
 */
export class WarmFiles {
  /**
   * Open addressing (linear probing, deletion by backward shift) over path digests stored plus one (0: an empty slot),
   * each with the place of its latest note in the ring. A Map<number, number> of WARM_FILES_MAX files held ~5 MiB of
   * heap (a table of 3.5 MiB and two heap numbers a file) and allocated a new table at each rehash, about every
   * WARM_FILES_MAX notes: garbage of 3.5 MiB at a time through a whole first scan. These arrays take 1.5 MiB, allocated
   * at the first note, never grow and make no garbage.
   */
  private keys: Float64Array | undefined;
  private places: Int32Array | undefined;
  /** Notes in the order they came (a ring of WARM_FILES_MAX): the digest plus one (0: replaced by a later note), and when. */
  private ringKeys: Float64Array | undefined;
  private ringTimes: Float64Array | undefined;
  private next = 0;
  private count = 0;

  constructor(
    private readonly windowMs = WARM_WINDOW_MS,
    private readonly maxFiles = WARM_FILES_MAX,
  ) {}

  /** The file at `path` (folder-relative) of `size` bytes was just read or written whole. */
  note(path: string, size: number): void {
    if (size > WARM_FILE_MAX_BYTES) return;
    if (!this.keys) {
      const slots = 2 ** Math.ceil(Math.log2(Math.max(8, Math.ceil(this.maxFiles * 1.25))));
      this.keys = new Float64Array(slots);
      this.places = new Int32Array(slots);
      this.ringKeys = new Float64Array(this.maxFiles);
      this.ringTimes = new Float64Array(this.maxFiles);
    }
    const ringKeys = this.ringKeys!;
    const place = this.next;
    this.next = (place + 1) % this.maxFiles;
    // The oldest note gives its place to this one (and its file is forgotten, unless noted again since).
    const oldest = ringKeys[place]!;
    if (oldest !== 0) this.remove(this.find(oldest));
    const key = pathDigest(path) + 1;
    const slot = this.find(key);
    if (slot >= 0) {
      ringKeys[this.places![slot]!] = 0;
      this.places![slot] = place;
    } else {
      this.insert(key, place);
    }
    ringKeys[place] = key;
    this.ringTimes![place] = Date.now();
  }

  isWarm(path: string): boolean {
    if (!this.keys) return false;
    const slot = this.find(pathDigest(path) + 1);
    if (slot < 0) return false;
    const place = this.places![slot]!;
    if (Date.now() - this.ringTimes![place]! <= this.windowMs) return true;
    this.ringKeys![place] = 0;
    this.remove(slot);
    return false;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes of the arrays (0 until the first note); they never grow. */
  get bytes(): number {
    return this.keys ? this.keys.byteLength + this.places!.byteLength + this.ringKeys!.byteLength + this.ringTimes!.byteLength : 0;
  }

  private home(key: number): number {
    return Math.imul((key % 0x1_0000_0000) ^ Math.floor(key / 0x1_0000_0000), 0x9e3779b1) >>> 0 & (this.keys!.length - 1);
  }

  /** The slot holding `key`, or -1. */
  private find(key: number): number {
    const keys = this.keys!;
    const mask = keys.length - 1;
    for (let i = this.home(key); ; i = (i + 1) & mask) {
      const stored = keys[i]!;
      if (stored === key) return i;
      if (stored === 0) return -1;
    }
  }

  private insert(key: number, place: number): void {
    const keys = this.keys!;
    const mask = keys.length - 1;
    let i = this.home(key);
    while (keys[i] !== 0) i = (i + 1) & mask;
    keys[i] = key;
    this.places![i] = place;
    this.count++;
  }

  /** Empties `slot` and moves back the entries after it that would no longer be found (no tombstones, no rehash). */
  private remove(slot: number): void {
    if (slot < 0) return;
    const keys = this.keys!;
    const places = this.places!;
    const mask = keys.length - 1;
    let hole = slot;
    for (let i = (slot + 1) & mask; keys[i] !== 0; i = (i + 1) & mask) {
      const home = this.home(keys[i]!);
      // Entry i may fill the hole when its home is not cyclically within (hole, i].
      const reachable = hole <= i ? home > hole && home <= i : home > hole || home <= i;
      if (reachable) continue;
      keys[hole] = keys[i]!;
      places[hole] = places[i]!;
      hole = i;
    }
    keys[hole] = 0;
    this.count--;
  }
}
