// Received blocks checked against their hashes: the same answer on the thread pool as in place, and the main thread free meanwhile.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { firstMismatchedBlock, POOL_HASH_MIN_BYTES, verifyBlocks } from '../../src/sync/block-hashes.js';

const sha = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();

function run(blockSize: number, count: number, lastShortBy = 0): { data: Buffer; hashes: Buffer[] } {
  const data = randomBytes(blockSize * count - lastShortBy);
  const hashes = Array.from({ length: count }, (_, j) => sha(data.subarray(j * blockSize, (j + 1) * blockSize)));
  return { data, hashes };
}

/** Awaits `pending` while counting the event loop's turns meanwhile (0: it was answered without the loop turning). */
async function countingTurns<T>(pending: Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let done = false;
  const spin = (): void => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  const value = await pending;
  done = true;
  return { value, turns };
}

test('verifyBlocks names the first wrong block of a run as firstMismatchedBlock does (pool-sized blocks, a short last block)', async () => {
  const blockSize = 256 * 1024;
  const { data, hashes } = run(blockSize, 4, 1000);
  assert.equal(await verifyBlocks(data, blockSize, 4, (j) => hashes[j]!), -1);
  for (const bad of [0, 2, 3]) {
    const copy = Buffer.from(data);
    copy[bad * blockSize + 17]! ^= 1;
    assert.equal(await verifyBlocks(copy, blockSize, 4, (j) => hashes[j]!), bad);
    assert.equal(firstMismatchedBlock(copy, blockSize, 4, (j) => hashes[j]!), bad);
  }
  // Two wrong: the first is named.
  const two = Buffer.from(data);
  two[blockSize + 1]! ^= 1;
  two[3 * blockSize + 1]! ^= 1;
  assert.equal(await verifyBlocks(two, blockSize, 4, (j) => hashes[j]!), 1);
  // Small blocks (a small file's one block) are checked in place with the same answer.
  const small = run(4096, 3);
  assert.ok(4096 < POOL_HASH_MIN_BYTES);
  assert.equal(await verifyBlocks(small.data, 4096, 3, (j) => small.hashes[j]!), -1);
  small.data[4096 * 2]! ^= 1;
  assert.equal(await verifyBlocks(small.data, 4096, 3, (j) => small.hashes[j]!), 2);
});

test('while a run of large blocks is hashed, the main thread goes on (its event loop turns)', async () => {
  const blockSize = 1024 * 1024;
  const { data, hashes } = run(blockSize, 16);
  const { value: verdict, turns } = await countingTurns(verifyBlocks(data, blockSize, 16, (j) => hashes[j]!));
  assert.equal(verdict, -1);
  // Hashed in place, the 16 MiB would have held the thread from the first call to the answer: no turn in between.
  assert.ok(turns > 0, `event loop turns while hashing: ${turns}`);
});

test("a small file's one short block (4 KiB of a 128 KiB block) is checked in place: no thread-pool round trip per small file", async () => {
  const data = randomBytes(4096);
  const hash = sha(data);
  const { value: verdict, turns } = await countingTurns(verifyBlocks(data, 128 * 1024, 1, () => hash));
  assert.equal(verdict, -1);
  assert.equal(turns, 0, 'answered before the event loop turned');
  const wrong = Buffer.from(data);
  wrong[0]! ^= 1;
  assert.equal(await verifyBlocks(wrong, 128 * 1024, 1, () => hash), 0);
});
