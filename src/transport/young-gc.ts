// Young-generation collections paced by the buffer bytes a µTP transfer leaves behind.
//
// Why: V8 counts ArrayBuffer memory allocated since the last full collection against the old
// generation's room (16 MiB above the live heap, src/daemon/runtime.ts), and a scavenge only comes
// when the young generation fills with JavaScript objects, or after 32 MB of young ArrayBuffers.
// A µTP transfer makes few objects and many buffer bytes (dgram's copy of each datagram, TLS's copy
// of each write to a Duplex): the room ran out first, and every ~17 MB of such garbage cost a full
// collection with its background marking (4-8 per 128 MiB on loopback, a quarter of each side's
// CPU with the kernel zeroing the fresh pages the buffers were given). A scavenge every few MiB
// of them, with little alive in the young generation, frees them young for a fraction of that.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's `gc` extension (`--expose-gc`): `{ type: 'minor' }` runs one scavenge. */
export type Collect = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

/** Buffer bytes left behind between two scavenges: well under the old generation's 16 MiB of room, counting TLS's plaintext too. */
export const YOUNG_GC_BYTES = 4 * 1024 * 1024;

let shared: Collect | null | undefined;

/**
 * V8's collector, obtained once: `globalThis.gc` when the process was started with --expose-gc,
 * otherwise from a context created while the flag is set (the flag is reset afterwards, so no other
 * code sees `gc`). Null where V8 refuses (the transport then works as before, with full collections).
 */
export function youngCollector(): Collect | null {
  if (shared !== undefined) return shared;
  shared = null;
  try {
    const exposed = (globalThis as { gc?: unknown }).gc;
    if (typeof exposed === 'function') shared = exposed as Collect;
    else {
      setFlagsFromString('--expose-gc');
      try {
        const gc = runInNewContext('typeof gc === "function" ? gc : null') as unknown;
        if (typeof gc === 'function') shared = gc as Collect;
      } finally {
        setFlagsFromString('--no-expose-gc');
      }
    }
  } catch {
    shared = null;
  }
  return shared;
}

/** Counts buffer bytes left behind and runs a scavenge after every `everyBytes` of them. */
export class BufferChurn {
  private bytes = 0;
  /** Scavenges asked for (for tests and benchmarks). */
  collections = 0;

  constructor(
    private readonly collect: Collect | null = youngCollector(),
    private readonly everyBytes = YOUNG_GC_BYTES,
  ) {}

  add(bytes: number): void {
    if (!this.collect) return;
    this.bytes += bytes;
    if (this.bytes < this.everyBytes) return;
    this.bytes = 0;
    this.collections++;
    this.collect({ type: 'minor' });
  }
}
