// Reused block-sized buffers.
//
// Why: malloc serves each fresh buffer of 128 KiB or more with its own mmap, so every block read,
// received or written through a fresh buffer page-faults its memory in (and unmaps it after GC)
// while the thread pool copies it to or from the kernel; measured here, eight concurrent 256 KiB
// file writes cost ten times the system CPU from fresh buffers as from reused ones.

/** Buffers are kept in capacity classes of this many bytes. */
const GRANULE = 64 * 1024;

export class BufferPool {
  /** Idle buffers by capacity. */
  private readonly idle = new Map<number, Buffer[]>();
  /** Memory of buffers lent out by take() and not yet given back: recycle() accepts only these, once. */
  private readonly lent = new WeakSet<ArrayBuffer>();
  private idleBytes = 0;

  /** @param maxIdleBytes idle buffers kept at most (beyond that, recycled ones are left to GC) */
  constructor(private readonly maxIdleBytes: number) {}

  /** A buffer of `size` bytes, uninitialised; below one granule a plain allocation (Node pools those itself). */
  take(size: number): Buffer {
    if (size < GRANULE) return Buffer.allocUnsafe(size);
    const capacity = Math.ceil(size / GRANULE) * GRANULE;
    let whole = this.idle.get(capacity)?.pop();
    if (whole) this.idleBytes -= capacity;
    else whole = Buffer.allocUnsafeSlow(capacity);
    this.lent.add(whole.buffer as ArrayBuffer); // allocUnsafeSlow never shares memory
    return whole.subarray(0, size);
  }

  /**
   * Gives back a buffer from take() (or any view into one) once nothing reads or writes it any
   * more. Anything else, and a second recycle of the same buffer, is ignored.
   */
  recycle(view: Uint8Array): void {
    const memory = view.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.lent.delete(memory)) return;
    const capacity = memory.byteLength;
    if (this.idleBytes + capacity > this.maxIdleBytes) return;
    let list = this.idle.get(capacity);
    if (!list) this.idle.set(capacity, (list = []));
    list.push(Buffer.from(memory));
    this.idleBytes += capacity;
  }

  /** Bytes held idle (for tests and status). */
  get idleByteCount(): number {
    return this.idleBytes;
  }
}
