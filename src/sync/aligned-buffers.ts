// Page-aligned buffers for direct (O_DIRECT) writes.
//
// Why: a direct write skips the page cache, and with it the copy of every byte into freshly
// allocated cache pages, which on this kind of VM cost a large download's receiver more CPU than
// anything else (perf: `copy_folio_from_iter_atomic`, ~1.2 s per GiB, plus the kernel's write-back).
// It needs the memory, the file offset and the length aligned to the device's logical block. Node
// has no aligned allocation, but WebAssembly memory starts on a page boundary.

import { ByteBudget } from './budget.js';

/** Alignment of a direct write's memory, offset and length (4 KiB: any logical block size up to a page). */
export const DIRECT_IO_ALIGN = 4096;

const WASM_PAGE_BYTES = 64 * 1024;

/**
 * A fixed set of equal, page-aligned buffers. take() waits while all are lent out, so it also
 * bounds the direct writes in flight (each holds a thread-pool thread until the disk has the data).
 */
export class AlignedBuffers {
  private free: Buffer[] | undefined;
  /** Counts the buffers lent out: its queue is the waiting line of take(). */
  private readonly lent: ByteBudget;

  /** @param slotBytes each buffer's size, a multiple of DIRECT_IO_ALIGN */
  constructor(
    private readonly slots: number,
    readonly slotBytes: number,
  ) {
    if (slots < 1 || slotBytes < DIRECT_IO_ALIGN || slotBytes % DIRECT_IO_ALIGN !== 0) {
      throw new RangeError(`slots must be ≥ 1 and slotBytes a multiple of ${DIRECT_IO_ALIGN}`);
    }
    this.lent = new ByteBudget(slots);
  }

  /** A free buffer (slotBytes long, page-aligned, contents undefined); waits (first come, first served) while all are lent. */
  async take(signal?: AbortSignal): Promise<Buffer> {
    await this.lent.acquire(1, signal);
    // The memory is reserved on first use: a daemon that never writes a large file never maps it.
    this.free ??= this.allocate();
    return this.free.pop()!;
  }

  /** Gives back a buffer from take(), once no write uses it any more. */
  give(buffer: Buffer): void {
    this.free!.push(buffer);
    this.lent.release(1);
  }

  private allocate(): Buffer[] {
    const pages = Math.ceil((this.slots * this.slotBytes) / WASM_PAGE_BYTES);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    return Array.from({ length: this.slots }, (_, i) => Buffer.from(memory.buffer, i * this.slotBytes, this.slotBytes));
  }
}
