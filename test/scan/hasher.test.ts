// Tests for hashFile and HashPool, checked against the sha256sum binary on blocks cut out by split(1).

import { after, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import { randomBytes } from 'node:crypto';
import { fstatSync, lstatSync, read } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  dropFreeReadBuffers,
  FREE_BUFFERS_IDLE_MS,
  freeReadBuffers,
  hashFile,
  hashFileOnPool,
  hashSmallFileAhead,
  HASH_READ_BYTES,
  type HashResult,
  type ReadCallback,
} from '../../src/scan/hasher.js';
import { COLD_READS_IN_FLIGHT, HashPool } from '../../src/scan/hash-pool.js';
import { makeTempDir, runCleanups } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
after(() => runCleanups(cleanups));

/** Block hashes computed by other tools: split(1) cuts the blocks, sha256sum(1) hashes each. */
async function referenceBlockHashes(file: string, blockSize: number, scratch: string): Promise<string[]> {
  const prefix = join(scratch, `${blockSize}-part-`);
  execFileSync('split', ['-b', String(blockSize), '-a', '4', '-d', file, prefix]);
  const parts = (await readdir(scratch)).filter((name) => name.startsWith(`${blockSize}-part-`)).sort();
  if (parts.length === 0) return [];
  const output = execFileSync('sha256sum', parts.map((name) => join(scratch, name)), { encoding: 'utf8' });
  return output.trim().split('\n').map((line) => line.split(' ')[0]!);
}

/** The streaming hasher on the calling thread, and the one on libuv's thread pool (WebCrypto) that HashPool runs. */
const HASHERS = [
  { name: 'hashFile', hash: hashFile },
  { name: 'hashFileOnPool', hash: hashFileOnPool },
];

for (const { name, hash: hashFile } of HASHERS) describe(name, () => {
  test('block hashes equal sha256sum of each block, across block and read-buffer sizes', async () => {
    const dir = await makeTempDir(cleanups);
    const scratch = await makeTempDir(cleanups);
    // 2.5 read buffers: blocks smaller than, equal to and larger than one read, plus a short last block.
    const file = join(dir, 'data.bin');
    await writeFile(file, randomBytes(HASH_READ_BYTES * 2 + HASH_READ_BYTES / 2 + 12345));
    for (const blockSize of [128 * 1024, 512 * 1024, HASH_READ_BYTES, 2 * HASH_READ_BYTES, 4 * HASH_READ_BYTES]) {
      const result = await hashFile(file, blockSize);
      const expected = await referenceBlockHashes(file, blockSize, scratch);
      assert.deepEqual(result.blocks.map((b) => b.toString('hex')), expected, `block size ${blockSize}`);
      assert.equal(result.size, HASH_READ_BYTES * 2.5 + 12345);
      assert.equal(result.changedDuringHash, false);
    }
  });

  test('an empty file has no blocks', async () => {
    const dir = await makeTempDir(cleanups);
    await writeFile(join(dir, 'empty'), '');
    const result = await hashFile(join(dir, 'empty'), 128 * 1024);
    assert.deepEqual(result.blocks, []);
    assert.equal(result.size, 0);
  });

  test('a file whose content does not match its stat is reported as changed during hashing', async () => {
    // /proc files stat as 0 bytes yet read as text: the read size differs from the size seen before.
    const result = await hashFile('/proc/self/status', 128 * 1024);
    assert.equal(result.changedDuringHash, true);
  });

  test('parts of a file hash to the whole: blocks in order, sizes adding up, the file size in each', async () => {
    const dir = await makeTempDir(cleanups);
    const file = join(dir, 'f');
    const blockSize = 128 * 1024;
    await writeFile(file, randomBytes(5 * blockSize + 1000));
    const whole = await hashFile(file, blockSize);
    const parts = await Promise.all([
      hashFile(file, blockSize, undefined, { start: 0, end: 2 * blockSize }),
      hashFile(file, blockSize, undefined, { start: 2 * blockSize, end: 4 * blockSize }),
      hashFile(file, blockSize, undefined, { start: 4 * blockSize }),
    ]);
    assert.deepEqual(parts.map((part) => part.size), [2 * blockSize, 2 * blockSize, blockSize + 1000]);
    assert.ok(parts.every((part) => part.fileSize === whole.size && !part.changedDuringHash));
    assert.deepEqual(parts.flatMap((part) => part.blocks.map((b) => b.toString('hex'))), whole.blocks.map((b) => b.toString('hex')));
    // A part that starts past the end holds nothing; one cut short by a shrunk file is flagged.
    const beyond = await hashFile(file, blockSize, undefined, { start: 8 * blockSize });
    assert.equal(beyond.size, 0);
    assert.equal(beyond.changedDuringHash, false);
  });

  test('a missing file fails with IO; an aborted signal with ABORTED', async () => {
    const dir = await makeTempDir(cleanups);
    await assert.rejects(hashFile(join(dir, 'missing'), 128 * 1024), { code: 'IO' });
    await writeFile(join(dir, 'f'), 'x');
    await assert.rejects(hashFile(join(dir, 'f'), 128 * 1024, AbortSignal.abort()), { code: 'ABORTED' });
  });
});

describe('read buffers', () => {
  test('kept for the next hash, dropped once unused for FREE_BUFFERS_IDLE_MS', async () => {
    const dir = await makeTempDir(cleanups);
    const file = join(dir, 'f');
    await writeFile(file, randomBytes(3 * HASH_READ_BYTES));
    dropFreeReadBuffers(); // earlier tests' timer is a real one
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      await hashFileOnPool(file, 128 * 1024);
      assert.ok(freeReadBuffers() >= 2, 'the two read buffers wait for the next hash');
      mock.timers.tick(FREE_BUFFERS_IDLE_MS - 1);
      assert.ok(freeReadBuffers() >= 2);
      mock.timers.tick(1);
      assert.equal(freeReadBuffers(), 0, 'an idle hasher holds no read buffer');
    } finally {
      mock.timers.reset();
    }
  });
});

/** hashSmallFileAhead as a promise: the result, or undefined when the file is over `maxBytes`. */
function hashAhead(file: string, blockSize: number, maxBytes: number, readAt?: ReadCallback): Promise<HashResult | undefined> {
  return new Promise((resolve, reject) => hashSmallFileAhead(file, blockSize, maxBytes, (err, result) => (err ? reject(err) : resolve(result)), readAt));
}

/** node:fs read, counting the reads and the most under way at once. */
function countingRead(): { read: ReadCallback; calls: number; peak: number } {
  const counts = { calls: 0, peak: 0, read: undefined as unknown as ReadCallback };
  let inFlight = 0;
  counts.read = (fd, buffer, offset, length, position, callback) => {
    counts.calls++;
    counts.peak = Math.max(counts.peak, ++inFlight);
    read(fd, buffer, offset, length, position, (err, bytesRead) => {
      inFlight--;
      callback(err, bytesRead);
    });
  };
  return counts;
}

describe('hashSmallFileAhead (a cold disk: one read on the thread pool per file)', () => {
  test('equal to hashFile, across block boundaries, with one read per file; over maxBytes it declines; a missing file fails with IO', async () => {
    const dir = await makeTempDir(cleanups);
    const counts = countingRead();
    const sizes = [0, 1, 1000, 128 * 1024, 128 * 1024 + 1, 256 * 1024];
    for (const size of sizes) {
      const file = join(dir, `f${size}`);
      await writeFile(file, randomBytes(size));
      const ahead = await hashAhead(file, 128 * 1024, 256 * 1024, counts.read);
      const direct = await hashFile(file, 128 * 1024);
      assert.ok(ahead, `${size} bytes hashed`);
      assert.equal(ahead.changedDuringHash, false);
      assert.equal(ahead.size, size);
      assert.equal(ahead.inode, direct.inode);
      assert.equal(ahead.mtimeMs, direct.mtimeMs);
      assert.deepEqual(ahead.blocks.map((b) => b.toString('hex')), direct.blocks.map((b) => b.toString('hex')), `${size} bytes`);
    }
    assert.equal(counts.calls, sizes.length, 'one read per file');
    const large = join(dir, 'large');
    await writeFile(large, randomBytes(256 * 1024 + 1));
    assert.equal(await hashAhead(large, 128 * 1024, 256 * 1024, counts.read), undefined);
    assert.equal(counts.calls, sizes.length, 'a file over maxBytes is not read');
    await assert.rejects(hashAhead(join(dir, 'missing'), 128 * 1024, 256 * 1024), { code: 'IO' });
  });

  test('a file longer than its stat said (growing) reads as changed', async () => {
    const dir = await makeTempDir(cleanups);
    const file = join(dir, 'growing');
    await writeFile(file, randomBytes(1000));
    // The read sees 1001 bytes where fstat said 1000, as if written to in between.
    const growing: ReadCallback = (fd, buffer, offset, length, position, callback) =>
      read(fd, buffer, offset, length, position, (err, bytesRead) => callback(err, err ? bytesRead : bytesRead + 1));
    const result = await hashAhead(file, 128 * 1024, 256 * 1024, growing);
    assert.equal(result?.changedDuringHash, true);
  });
});

describe('HashPool', () => {
  test('hashes several files concurrently, equal to the direct hasher', async () => {
    const dir = await makeTempDir(cleanups);
    const pool = new HashPool({ workers: 2, maxQueued: 2 });
    await pool.open();
    cleanups.push(() => pool.close());
    const files: string[] = [];
    for (let i = 0; i < 8; i++) {
      const file = join(dir, `f${i}`);
      await writeFile(file, randomBytes(100_000 * (i + 1)));
      files.push(file);
    }
    // More jobs than workers plus queue: the extra callers wait for room instead of failing.
    const pooled = await Promise.all(files.map((file) => pool.hash(file, 128 * 1024)));
    for (const [i, file] of files.entries()) {
      const direct = await hashFile(file, 128 * 1024);
      assert.deepEqual(pooled[i]!.blocks.map((b) => b.toString('hex')), direct.blocks.map((b) => b.toString('hex')));
      assert.equal(pooled[i]!.size, direct.size);
      assert.equal(pooled[i]!.mtimeMs, direct.mtimeMs);
      assert.equal(pooled[i]!.inode, direct.inode);
    }
  });

  test('small files run several at a time: each gets its own result, a missing one fails alone', async () => {
    const dir = await makeTempDir(cleanups);
    const pool = new HashPool({ workers: 2 });
    await pool.open();
    cleanups.push(() => pool.close());
    const files: string[] = [];
    for (let i = 0; i < 70; i++) {
      const file = join(dir, `s${i}`);
      if (i !== 33) await writeFile(file, randomBytes(1 + i * 97));
      files.push(file);
    }
    // All queued at once with their sizes, so they travel many to a message.
    const outcomes = await Promise.allSettled(files.map((file, i) => pool.hash(file, 128 * 1024, undefined, 1 + i * 97)));
    for (const [i, file] of files.entries()) {
      const outcome = outcomes[i]!;
      if (i === 33) {
        assert.equal(outcome.status, 'rejected');
        assert.equal((outcome as PromiseRejectedResult).reason.code, 'IO');
        continue;
      }
      assert.equal(outcome.status, 'fulfilled', `file ${i}`);
      const pooled = (outcome as PromiseFulfilledResult<HashResult>).value;
      const direct = await hashFile(file, 128 * 1024);
      assert.equal(pooled.size, 1 + i * 97);
      assert.deepEqual(pooled.blocks.map((b) => b.toString('hex')), direct.blocks.map((b) => b.toString('hex')));
      assert.equal(pooled.inode, direct.inode);
    }
  });

  test('a large file is hashed in parts by all the slots, equal to hashing it whole', async () => {
    const dir = await makeTempDir(cleanups);
    const file = join(dir, 'large');
    const bytes = 64 * 1024 * 1024 + 12345;
    await writeFile(file, randomBytes(bytes));
    const pool = new HashPool({ workers: 2 });
    await pool.open();
    cleanups.push(() => pool.close());
    const pooled = await pool.hash(file, 128 * 1024, undefined, bytes);
    const direct = await hashFile(file, 128 * 1024);
    assert.equal(pooled.size, bytes);
    assert.equal(pooled.changedDuringHash, false);
    assert.equal(pooled.blocks.length, Math.ceil(bytes / (128 * 1024)));
    assert.deepEqual(pooled.blocks.map((b) => b.toString('hex')), direct.blocks.map((b) => b.toString('hex')));
    assert.equal(pool.peakRunning, 2, 'both slots took a part');
    // Told the wrong size (the file shrank since its lstat), the parts still add up to the truth.
    const stale = await pool.hash(file, 128 * 1024, undefined, bytes * 2);
    assert.equal(stale.size, bytes);
    assert.deepEqual(stale.blocks.map((b) => b.toString('hex')), direct.blocks.map((b) => b.toString('hex')));
  });

  test('errors and aborts come back typed; the pool keeps working', async () => {
    const dir = await makeTempDir(cleanups);
    const pool = new HashPool({ workers: 1 });
    await pool.open();
    cleanups.push(() => pool.close());
    await writeFile(join(dir, 'ok'), 'hello');
    await assert.rejects(pool.hash(join(dir, 'missing'), 128 * 1024), { code: 'IO' });
    await assert.rejects(pool.hash(join(dir, 'ok'), 128 * 1024, AbortSignal.abort()), { code: 'ABORTED' });
    const controller = new AbortController();
    const running = pool.hash(join(dir, 'ok'), 128 * 1024);
    const queued = pool.hash(join(dir, 'ok'), 128 * 1024, controller.signal);
    controller.abort();
    await assert.rejects(queued, { code: 'ABORTED' });
    assert.equal((await running).size, 5);
    const again = await pool.hash(join(dir, 'ok'), 128 * 1024);
    assert.equal(again.blocks[0]!.toString('hex'), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  });

  test('many jobs under one signal add one abort listener to it, removed when they settle; abort still ends them all', async () => {
    const dir = await makeTempDir(cleanups);
    const pool = new HashPool({ workers: 2, maxQueued: 200 });
    await pool.open();
    cleanups.push(() => pool.close());
    const files: string[] = [];
    for (let i = 0; i < 100; i++) {
      files.push(join(dir, `f${i}`));
      await writeFile(files[i]!, `file ${i}`);
    }
    const controller = new AbortController();
    // A scan of a folder queues many small files under the folder's signal (11 listeners warned).
    const done = Promise.all(files.map((file) => pool.hash(file, 128 * 1024, controller.signal, 8)));
    assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
    assert.equal((await done).length, 100);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);

    const aborting = new AbortController();
    const jobs = files.map((file) => pool.hash(file, 128 * 1024, aborting.signal, 8));
    assert.equal(getEventListeners(aborting.signal, 'abort').length, 1);
    aborting.abort();
    const outcomes = await Promise.allSettled(jobs);
    assert.ok(outcomes.some((o) => o.status === 'rejected' && (o.reason as { code?: string }).code === 'ABORTED'));
    assert.equal(getEventListeners(aborting.signal, 'abort').length, 0);
    assert.equal((await pool.hash(files[0]!, 128 * 1024)).size, 'file 0'.length);
  });

  test('at most one large file per slot is under way at once; small files are hashed on this thread or, when slow, a bounded number read on the pool', async () => {
    const dir = await makeTempDir(cleanups);
    const pool = new HashPool({ workers: 1, maxQueued: 100 });
    await pool.open();
    cleanups.push(() => pool.close());
    const large: string[] = [];
    for (let i = 0; i < 4; i++) {
      large.push(join(dir, `large${i}`));
      await writeFile(large[i]!, randomBytes(HASH_READ_BYTES + 1000));
    }
    await Promise.all(large.map((file) => pool.hash(file, 128 * 1024, undefined, HASH_READ_BYTES + 1000)));
    assert.equal(pool.peakRunning, 1, 'large files one at a time per slot (two read buffers each)');
    const small: string[] = [];
    for (let i = 0; i < 40; i++) {
      small.push(join(dir, `small${i}`));
      await writeFile(small[i]!, randomBytes(4096));
    }
    const results = await Promise.all(small.map((file) => pool.hash(file, 128 * 1024, undefined, 4096)));
    assert.ok(results.every((result) => result.size === 4096 && result.blocks.length === 1));
    // Hashed on this thread; slow ones (a cold disk, or a busy machine) send the next ones' reads to the thread pool, a bounded number at once.
    assert.ok(pool.peakRunning <= COLD_READS_IN_FLIGHT, `small files on the thread pool stay bounded (peak ${pool.peakRunning})`);
    assert.equal(pool.running, 0);
  });

  test('small files on a warm disk are hashed on this thread: no read goes to the thread pool', async () => {
    const dir = await makeTempDir(cleanups);
    const counts = countingRead();
    // Every synchronous hash takes no time on this clock: the page cache answers.
    const pool = new HashPool({ workers: 2, maxQueued: 200, clock: () => 0, read: counts.read });
    await pool.open();
    cleanups.push(() => pool.close());
    const files: string[] = [];
    for (let i = 0; i < 100; i++) {
      files.push(join(dir, `w${i}`));
      await writeFile(files[i]!, randomBytes(1024));
    }
    const results = await Promise.all(files.map((file) => pool.hash(file, 128 * 1024, undefined, 1024)));
    assert.ok(results.every((result) => result.size === 1024 && !result.changedDuringHash));
    assert.equal(counts.calls, 0, 'no read on the thread pool');
    assert.equal(pool.peakSmallReads, 0);
  });

  test('small files on a cold disk (slow synchronous hashes): one read each on the thread pool, at most COLD_READS_IN_FLIGHT at once, equal to the direct hasher', async () => {
    const dir = await makeTempDir(cleanups);
    const counts = countingRead();
    // Every synchronous hash takes 2 ms on this clock, as a read from the disk would.
    let now = 0;
    const pool = new HashPool({ workers: 2, maxQueued: 200, clock: () => (now += 2), read: counts.read });
    await pool.open();
    cleanups.push(() => pool.close());
    const files: string[] = [];
    for (let i = 0; i < 150; i++) {
      files.push(join(dir, `c${i}`));
      if (i !== 77) await writeFile(files[i]!, randomBytes(1 + i * 31));
    }
    const outcomes = await Promise.allSettled(files.map((file, i) => pool.hash(file, 128 * 1024, undefined, 1 + i * 31)));
    for (const [i, file] of files.entries()) {
      const outcome = outcomes[i]!;
      if (i === 77) {
        assert.equal(outcome.status, 'rejected', 'a missing file fails alone');
        assert.equal((outcome as PromiseRejectedResult).reason.code, 'IO');
        continue;
      }
      assert.equal(outcome.status, 'fulfilled', `file ${i}`);
      const pooled = (outcome as PromiseFulfilledResult<HashResult>).value;
      const direct = await hashFile(file, 128 * 1024);
      assert.equal(pooled.size, 1 + i * 31);
      assert.deepEqual(pooled.blocks.map((b) => b.toString('hex')), direct.blocks.map((b) => b.toString('hex')));
    }
    // The first few are hashed here (and found slow); most of the rest are read on the pool, several at once, never more than the bound.
    assert.ok(counts.calls >= 100, `most files read on the thread pool (${counts.calls})`);
    assert.equal(counts.peak, COLD_READS_IN_FLIGHT, 'reads under way at once: the bound, reached');
    assert.equal(pool.peakSmallReads, COLD_READS_IN_FLIGHT);
    assert.equal(pool.running, 0);
  });

  test('reads that wait for the disk a little (0.1 ms each, the whole hash well under 1 ms) are enough to tell a cold disk', async () => {
    const dir = await makeTempDir(cleanups);
    const counts = countingRead();
    // Every call of this clock is 0.1 ms later: each read call seems to take 0.1 ms, twice COLD_READ_MS.
    let now = 0;
    const pool = new HashPool({ workers: 2, maxQueued: 200, clock: () => (now += 0.1), read: counts.read });
    await pool.open();
    cleanups.push(() => pool.close());
    const files: string[] = [];
    for (let i = 0; i < 40; i++) {
      files.push(join(dir, `m${i}`));
      await writeFile(files[i]!, randomBytes(1024));
    }
    await Promise.all(files.map((file) => pool.hash(file, 128 * 1024, undefined, 1024)));
    assert.ok(counts.calls >= 30, `the rest read on the thread pool after the first few (${counts.calls})`);
  });

  test('on a cold disk the queued small files are read in inode order, not in the order they were queued', async () => {
    const dir = await makeTempDir(cleanups);
    const inodes: number[] = [];
    const inOrder: ReadCallback = (fd, buffer, offset, length, position, callback) => {
      inodes.push(fstatSync(fd).ino);
      read(fd, buffer, offset, length, position, callback);
    };
    let now = 0;
    const pool = new HashPool({ workers: 2, maxQueued: 200, clock: () => (now += 2), read: inOrder });
    await pool.open();
    cleanups.push(() => pool.close());
    const files: Array<{ path: string; inode: number }> = [];
    for (let i = 0; i < 60; i++) {
      const path = join(dir, `o${i}`);
      await writeFile(path, randomBytes(100));
      files.push({ path, inode: lstatSync(path).ino });
    }
    // Queued in a shuffled order (as a directory lists them), each with the inode its lstat gave.
    const shuffled = files.map((file, i) => ({ file, key: (i * 37) % 61 })).sort((a, b) => a.key - b.key).map(({ file }) => file);
    await Promise.all(shuffled.map(({ path, inode }) => pool.hash(path, 128 * 1024, undefined, 100, undefined, inode)));
    assert.ok(inodes.length >= 50, `most read on the thread pool (${inodes.length})`);
    assert.deepEqual(inodes, [...inodes].sort((a, b) => a - b), 'reads issued in ascending inode order');
  });

  test('close is idempotent and rejects later work with CLOSED', async () => {
    const pool = new HashPool({ workers: 1 });
    await assert.rejects(pool.hash('/nonexistent', 128 * 1024), { code: 'CLOSED' });
    await pool.open();
    await Promise.all([pool.close(), pool.close()]);
    await assert.rejects(pool.hash('/nonexistent', 128 * 1024), { code: 'CLOSED' });
  });
});

describe('hash progress (streaming large files)', () => {
  test('the pool tells every block hash as it becomes known, before the result, whole-file and in parts', async () => {
    const dir = await makeTempDir(cleanups);
    const file = join(dir, 'big.bin');
    const blockSize = 256 * 1024;
    // 70 MiB: hashed in parts (≥ 64 MiB) by two workers, each reporting its own range.
    await writeFile(file, randomBytes(70 * 1024 * 1024 + 1000));
    for (const workers of [1, 2]) {
      const pool = new HashPool({ workers });
      await pool.open();
      try {
        const told = new Map<number, string>();
        let reports = 0;
        let settled = false;
        const result = await pool.hash(file, blockSize, undefined, 70 * 1024 * 1024 + 1000, (first, blocks) => {
          assert.equal(settled, false, 'progress comes before the result');
          reports++;
          blocks.forEach((hash, i) => {
            assert.equal(told.has(first + i), false, `block ${first + i} told once`);
            told.set(first + i, hash.toString('hex'));
          });
        });
        settled = true;
        assert.equal(result.changedDuringHash, false);
        assert.deepEqual([...told.keys()].sort((a, b) => a - b), result.blocks.map((_, i) => i), `workers ${workers}: every block told`);
        for (const [i, hex] of told) assert.equal(hex, result.blocks[i]!.toString('hex'));
        assert.ok(reports >= 8, `told in several reports as hashing goes (${reports})`);
      } finally {
        await pool.close();
      }
    }
  });
});
