// Reused block-sized buffers.
//
// Why: malloc serves each fresh buffer of 128 KiB or more with its own mmap, so every block read,
// received or written through a fresh buffer page-faults its memory in (and unmaps it after GC)
// while the thread pool copies it to or from the kernel; measured here, eight concurrent 256 KiB
// file writes cost ten times the system CPU from fresh buffers as from reused ones.

/** Buffers are kept in capacity classes of this many bytes. */
const GRANULE = 64 * 1024;

export class BufferPool {
  /** Idle buffers, the longest idle first. */
  private readonly idle: Buffer[] = [];
  /** Memory of buffers lent out by take() and not yet given back: recycle() accepts only these, once. */
  private readonly lent = new WeakSet<ArrayBuffer>();
  private idleBytes = 0;

  /** @param maxIdleBytes idle buffers kept at most (beyond that, the longest idle are left to GC) */
  constructor(private readonly maxIdleBytes: number) {}

  /**
   * A buffer of `size` bytes, uninitialised; below one granule a plain allocation (Node pools those
   * itself). An idle buffer serves any request it is large enough for (the best fit of them).
   */
  take(size: number): Buffer {
    if (size < GRANULE) return Buffer.allocUnsafe(size);
    const capacity = Math.ceil(size / GRANULE) * GRANULE;
    let best = -1;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const length = this.idle[i]!.length;
      if (length >= capacity && (best < 0 || length < this.idle[best]!.length)) {
        best = i;
        if (length === capacity) break;
      }
    }
    let whole: Buffer;
    if (best >= 0) {
      whole = this.idle.splice(best, 1)[0]!;
      this.idleBytes -= whole.length;
    } else {
      whole = Buffer.allocUnsafeSlow(capacity);
    }
    this.lent.add(whole.buffer as ArrayBuffer); // allocUnsafeSlow never shares memory
    return whole.subarray(0, size);
  }

  /**
   * Gives back a buffer from take() (or any view into one) once nothing reads or writes it any
   * more. Anything else, and a second recycle of the same buffer, is ignored. When the idle bound
   * is reached the longest idle buffers make room: what is idle follows what is asked for now.
   * (Keeping the old ones instead left a pool full of 256 KiB buffers while every 1 MiB block was
   * a fresh allocation: 225 of 225 on a sender of `mixed`, freed only by the next collection.)
   */
  recycle(view: Uint8Array): void {
    const memory = view.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.lent.delete(memory)) return;
    const capacity = memory.byteLength;
    if (capacity > this.maxIdleBytes) return;
    while (this.idleBytes + capacity > this.maxIdleBytes) this.idleBytes -= this.idle.shift()!.length;
    this.idle.push(Buffer.from(memory));
    this.idleBytes += capacity;
  }

  /** Bytes held idle (for tests and status). */
  get idleByteCount(): number {
    return this.idleBytes;
  }
}
