// Checks a run of adjacent blocks read or received in one piece against their hashes.

import { createHash } from 'node:crypto';

/**
 * The index (within the run) of the first of `count` blocks of `data`, cut every `blockSize`
 * bytes (the last one may be short), whose SHA-256 is not `hashOf(j)`; -1 when every one matches.
 */
export function firstMismatchedBlock(data: Buffer, blockSize: number, count: number, hashOf: (j: number) => Uint8Array): number {
  for (let j = 0; j < count; j++) {
    const digest = createHash('sha256').update(data.subarray(j * blockSize, (j + 1) * blockSize)).digest();
    if (Buffer.compare(digest, hashOf(j)) !== 0) return j;
  }
  return -1;
}
