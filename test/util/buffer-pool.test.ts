// Tests for the block buffer pool: reuse, exact sizes, and what it refuses to take back.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool } from '../../src/util/buffer-pool.js';

const KIB = 1024;

describe('BufferPool', () => {
  test('a recycled buffer is lent again for a request of the same size class', () => {
    const pool = new BufferPool(4 * 1024 * KIB);
    const first = pool.take(256 * KIB + 20);
    assert.equal(first.length, 256 * KIB + 20);
    first.fill(7);
    pool.recycle(first.subarray(5, 100)); // any view of it gives it back
    assert.equal(pool.idleByteCount, 320 * KIB);
    const second = pool.take(300 * KIB);
    assert.equal(second.length, 300 * KIB);
    assert.equal(second.buffer, first.buffer);
    assert.equal(pool.idleByteCount, 0);
    const third = pool.take(300 * KIB);
    assert.notEqual(third.buffer, first.buffer, 'a lent buffer is never lent twice');
  });

  test('a second recycle, foreign buffers and small buffers are ignored', () => {
    const pool = new BufferPool(4 * 1024 * KIB);
    const block = pool.take(128 * KIB);
    pool.recycle(block);
    pool.recycle(block);
    assert.equal(pool.idleByteCount, 128 * KIB);
    pool.recycle(Buffer.allocUnsafeSlow(128 * KIB));
    const small = pool.take(100);
    assert.equal(small.length, 100);
    pool.recycle(small);
    assert.equal(pool.idleByteCount, 128 * KIB);
    const a = pool.take(128 * KIB);
    const b = pool.take(128 * KIB);
    assert.notEqual(a.buffer, b.buffer);
  });

  test('idle memory stays within its bound', () => {
    const pool = new BufferPool(512 * KIB);
    const lent = Array.from({ length: 8 }, () => pool.take(256 * KIB));
    for (const buffer of lent) pool.recycle(buffer);
    assert.equal(pool.idleByteCount, 512 * KIB);
  });
});

describe('BufferPool under changing block sizes', () => {
  test('idle buffers follow what is asked for now: a pool full of 256 KiB buffers still reuses 1 MiB ones', () => {
    const pool = new BufferPool(8 * 1024 * KIB);
    // A run of 256 KiB blocks fills the idle bound.
    const small = Array.from({ length: 32 }, () => pool.take(256 * KIB));
    for (const buffer of small) pool.recycle(buffer);
    assert.equal(pool.idleByteCount, 8 * 1024 * KIB);
    // Then 1 MiB blocks, one at a time, as a sender serves them: after the first, each is a buffer given back.
    const memories = new Set<ArrayBufferLike>();
    for (let i = 0; i < 20; i++) {
      const block = pool.take(1024 * KIB);
      memories.add(block.buffer);
      pool.recycle(block);
      assert.ok(pool.idleByteCount <= 8 * 1024 * KIB, `idle ${pool.idleByteCount}`);
    }
    assert.equal(memories.size, 1, '1 MiB blocks reuse one buffer instead of a fresh one each');
  });

  test('a larger idle buffer serves a smaller request (best fit), and idle memory never passes its bound', () => {
    const pool = new BufferPool(2 * 1024 * KIB);
    const big = pool.take(1024 * KIB);
    const mid = pool.take(512 * KIB);
    pool.recycle(big);
    pool.recycle(mid);
    assert.equal(pool.take(300 * KIB).buffer, mid.buffer, 'the smallest idle buffer that fits');
    assert.equal(pool.take(200 * KIB).buffer, big.buffer);
    for (let i = 0; i < 50; i++) {
      const sizes = [128, 256, 640, 1024, 2048, 3000].map((k) => pool.take(k * KIB));
      for (const buffer of sizes) pool.recycle(buffer);
      assert.ok(pool.idleByteCount <= 2 * 1024 * KIB);
    }
  });
});
