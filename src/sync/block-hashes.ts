// Checks a run of adjacent blocks read or received in one piece against their hashes.

import { createHash, webcrypto } from 'node:crypto';

/**
 * Runs whose blocks hold at least this many bytes on average are hashed on the thread pool (verifyBlocks): a 1 MiB run of received
 * blocks cost the receiver's main thread ~0.7 ms of SHA-256 each, the largest item of its profile on
 * `large` (0.8 s of 1.7 s for 512 MiB), during which it read no socket and sent no request. Smaller
 * ones (every small file) are hashed in place: a thread-pool round trip costs more than their hash.
 */
export const POOL_HASH_MIN_BYTES = 64 * 1024;

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

/**
 * As firstMismatchedBlock, with blocks of POOL_HASH_MIN_BYTES or more hashed on the thread pool, all
 * of the run at once (WebCrypto's digest runs there), so the main thread goes on reading sockets and
 * sending requests meanwhile. `data` must not change until it resolves.
 */
export async function verifyBlocks(data: Buffer, blockSize: number, count: number, hashOf: (j: number) => Uint8Array): Promise<number> {
  // By the bytes there are, not the record's block size: a small file's one block is short (4 KiB of a 128 KiB block).
  if (data.length < POOL_HASH_MIN_BYTES * count) return firstMismatchedBlock(data, blockSize, count, hashOf);
  const digests = await Promise.all(
    Array.from({ length: count }, (_, j) => webcrypto.subtle.digest('SHA-256', data.subarray(j * blockSize, Math.min(data.length, (j + 1) * blockSize)))),
  );
  return digests.findIndex((digest, j) => Buffer.compare(new Uint8Array(digest), hashOf(j)) !== 0);
}
