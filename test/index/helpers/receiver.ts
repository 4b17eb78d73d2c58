// What a receiver writes into its index for a folder from one peer, in the order it does (for the repack tests).

import type { FileRecord } from '../../../src/index/records.js';
import type { IndexStore } from '../../../src/index/store.js';
import { FOLDER_A, file, hash } from './store.js';

export const PEER = 'PEERDEVICE';

/** The paths of bench/lib.ts writeSmallFiles: 100 per folder, 10 folders per parent. */
export function pathOf(i: number): string {
  return `g${Math.floor(i / 1000)}/d${Math.floor(i / 100) % 10}/f${i}.dat`;
}

/** A record as the sender announces it: its own sequence, version and one block. */
export function announced(i: number): FileRecord {
  return {
    ...file(pathOf(i), { size: 1024, blockSize: 131072, blocks: [hash(i)], version: { [PEER]: 1 }, modifiedBy: PEER, inode: 0, mtimeMs: 1_700_000_000_000 + i }),
    sequence: i + 1,
  };
}

/** A deterministic shuffle of 0..n-1 within windows of `window` (installs finish out of order, a few dozen at a time). */
function installOrder(n: number, window: number): number[] {
  const order: number[] = [];
  let seed = 12345;
  for (let start = 0; start < n; start += window) {
    const part = Array.from({ length: Math.min(window, n - start) }, (_, k) => start + k);
    for (let k = part.length - 1; k > 0; k--) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const j = seed % (k + 1);
      [part[k], part[j]] = [part[j]!, part[k]!];
    }
    order.push(...part);
  }
  return order;
}

/**
 * What a receiver writes for a folder of `files` files from one peer, in the order it does: each index batch of 1000
 * records taken as global and as the peer's (folder-sync.ts), then the files installed a few dozen per transaction in
 * the order they finish (installer.ts), each becoming the local record with a marker for the global one.
 */
export async function receive(store: IndexStore, files: number, afterEachWrite?: () => void): Promise<void> {
  const index = store.folder(FOLDER_A);
  for (let start = 0; start < files; start += 1000) {
    const batch = Array.from({ length: Math.min(1000, files - start) }, (_, k) => announced(start + k));
    await Promise.all([index.offerGlobal(batch), index.putRemote(PEER, batch)]);
    await index.setPeerSequence(PEER, start + batch.length);
    afterEachWrite?.();
  }
  const order = installOrder(files, 200);
  for (let start = 0; start < order.length; start += 40) {
    const installed = order.slice(start, start + 40).map((i) => {
      const { sequence: _sequence, ...record } = announced(i);
      return { ...record, inode: 1000 + i };
    });
    await index.putLocal(installed);
    afterEachWrite?.();
  }
}
