// Tests for blockSizeFor: powers of two within 128 KiB–16 MiB, at most MAX_BLOCKS_PER_FILE blocks per file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { blockSizeFor, MAX_BLOCK_SIZE, MAX_BLOCKS_PER_FILE, MIN_BLOCK_SIZE } from '../../src/scan/blocksize.js';

test('bounds', () => {
  assert.equal(blockSizeFor(0), 128 * 1024);
  assert.equal(blockSizeFor(1), MIN_BLOCK_SIZE);
  assert.equal(blockSizeFor(4096 * MIN_BLOCK_SIZE), MIN_BLOCK_SIZE);
  assert.equal(blockSizeFor(4096 * MIN_BLOCK_SIZE + 1), 2 * MIN_BLOCK_SIZE);
  assert.equal(blockSizeFor(1024 ** 3), 256 * 1024); // 4096 blocks; 128 KiB would give 8192
  assert.equal(blockSizeFor(1024 ** 4), 16 * 1024 * 1024);
  assert.equal(blockSizeFor(Number.MAX_SAFE_INTEGER), MAX_BLOCK_SIZE);
});

test('always a power of two in range, the smallest that keeps ≤ MAX_BLOCKS_PER_FILE blocks', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 45 }), (size) => {
      const block = blockSizeFor(size);
      assert.ok(block >= MIN_BLOCK_SIZE && block <= MAX_BLOCK_SIZE);
      assert.equal(block & (block - 1), 0);
      if (block < MAX_BLOCK_SIZE) assert.ok(Math.ceil(size / block) <= MAX_BLOCKS_PER_FILE);
      if (block > MIN_BLOCK_SIZE) assert.ok(Math.ceil(size / (block / 2)) > MAX_BLOCKS_PER_FILE);
    }),
  );
});
