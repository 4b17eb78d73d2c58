// Page-aligned buffers for direct (O_DIRECT) writes.
//
// Why: a direct write skips the page cache, and with it the copy of every byte into freshly
// allocated cache pages, which on this kind of VM cost a large download's receiver more CPU than
// anything else (perf: `copy_folio_from_iter_atomic`, ~1.2 s per GiB, plus the kernel's write-back).
// It needs the memory, the file offset and the length aligned to the device's logical block. Node
// has no aligned allocation, but WebAssembly memory starts on a page boundary.

import { FerryError } from '../errors.js';
import { throwIfAborted } from './abort.js';

/** Alignment of a direct write's memory, offset and length (4 KiB: any logical block size up to a page). */
export const DIRECT_IO_ALIGN = 4096;

const WASM_PAGE_BYTES = 64 * 1024;

/**
 * A fixed set of equal, page-aligned buffers. take() waits while all are lent out, so it also
 * bounds the direct writes in flight (each holds a thread-pool thread until the disk has the data).
 */
export class AlignedBuffers {
  private free: Buffer[] | undefined;
  private readonly waiting: Array<(buffer: Buffer) => void> = [];

  /** @param slotBytes each buffer's size, a multiple of DIRECT_IO_ALIGN */
  constructor(
    private readonly slots: number,
    readonly slotBytes: number,
  ) {
    if (slots < 1 || slotBytes < DIRECT_IO_ALIGN || slotBytes % DIRECT_IO_ALIGN !== 0) {
      throw new RangeError(`slots must be ≥ 1 and slotBytes a multiple of ${DIRECT_IO_ALIGN}`);
    }
  }

  /** A free buffer (slotBytes long, page-aligned, contents undefined); waits for one while all are lent. */
  async take(signal?: AbortSignal): Promise<Buffer> {
    // The memory is reserved on first use: a daemon that never writes a large file never maps it.
    this.free ??= this.allocate();
    const buffer = this.free.pop();
    if (buffer) return buffer;
    throwIfAborted(signal);
    return new Promise<Buffer>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.waiting.indexOf(grant);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(new FerryError('ABORTED', 'operation aborted', { cause: signal!.reason }));
      };
      const grant = (given: Buffer): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(given);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  /** Gives back a buffer from take(), once no write uses it any more. */
  give(buffer: Buffer): void {
    const next = this.waiting.shift();
    if (next) next(buffer);
    else this.free!.push(buffer);
  }

  private allocate(): Buffer[] {
    const pages = Math.ceil((this.slots * this.slotBytes) / WASM_PAGE_BYTES);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    return Array.from({ length: this.slots }, (_, i) => Buffer.from(memory.buffer, i * this.slotBytes, this.slotBytes));
  }
}
