// Transfer rate limits: the token bucket (with a fake clock) and the daemon-wide limiters consulted for every block.

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isFerryError } from '../../src/errors.js';
import { RateLimiter, type RateClock } from '../../src/sync/rate-limit.js';
import { connect, converged, makeDevice, newFolder, randomContent, runCleanups, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

/** A clock that moves only when told to. */
class FakeClock implements RateClock {
  private t = 0;
  sleeps = 0;
  private readonly timers = new Set<{ at: number; resolve: () => void }>();

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    this.sleeps++;
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(new Error('aborted'));
      const timer = { at: this.t + ms, resolve };
      this.timers.add(timer);
      signal.addEventListener('abort', () => {
        this.timers.delete(timer);
        reject(new Error('aborted'));
      }, { once: true });
    });
  }

  async advance(ms: number): Promise<void> {
    this.t += ms;
    for (const timer of [...this.timers]) {
      if (timer.at <= this.t) {
        this.timers.delete(timer);
        timer.resolve();
      }
    }
    await settle();
  }
}

/** Lets every pending promise callback run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Starts `count` takes of `bytes` each; returns how many were granted so far. */
function takeMany(limiter: RateLimiter, count: number, bytes: number, signal?: AbortSignal): { granted: () => number; all: Promise<unknown> } {
  let granted = 0;
  const all = Promise.allSettled(Array.from({ length: count }, () => limiter.take(bytes, signal).then(() => void granted++)));
  return { granted: () => granted, all };
}

describe('rate limiter', () => {
  test('grants the rate per interval after the initial burst', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(1000, clock);
    const takes = takeMany(limiter, 35, 100);
    await settle();
    assert.equal(takes.granted(), 10, 'the full bucket: one second worth');
    await clock.advance(500);
    assert.equal(takes.granted(), 15);
    await clock.advance(500);
    assert.equal(takes.granted(), 20);
    await clock.advance(1000);
    assert.equal(takes.granted(), 30);
    await clock.advance(1000);
    assert.equal(takes.granted(), 35);
    await takes.all;
    assert.equal(limiter.taken, 3500);
  });

  test('idle time never banks more than one second of burst', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(1000, clock);
    await clock.advance(60_000);
    const takes = takeMany(limiter, 20, 100);
    await settle();
    assert.equal(takes.granted(), 10);
    await clock.advance(1000);
    assert.equal(takes.granted(), 20);
    await takes.all;
  });

  test('a take larger than the burst waits for a full bucket and leaves a debt', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(1000, clock);
    await limiter.take(3000);
    const next = takeMany(limiter, 1, 1000);
    await clock.advance(2000);
    assert.equal(next.granted(), 0, 'still paying off the 2000-byte debt');
    await clock.advance(1000);
    assert.equal(next.granted(), 1);
  });

  test('abort while waiting rejects with ABORTED and takes nothing', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(1000, clock);
    await limiter.take(1000);
    const controller = new AbortController();
    const waiting = limiter.take(500, controller.signal);
    const queued = limiter.take(500, controller.signal);
    await settle();
    controller.abort();
    for (const p of [waiting, queued]) await assert.rejects(p, (err) => isFerryError(err) && err.code === 'ABORTED');
    assert.equal(limiter.taken, 1000);
    await assert.rejects(limiter.take(1, controller.signal), (err) => isFerryError(err) && err.code === 'ABORTED');
    // The aborted takes used no tokens: after half a second, 500 bytes pass.
    const later = takeMany(limiter, 1, 500);
    await clock.advance(500);
    assert.equal(later.granted(), 1);
  });

  test('0 is unlimited: nothing waits, bytes are still counted', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(0, clock);
    for (let i = 0; i < 100; i++) await limiter.take(1 << 30);
    assert.equal(clock.sleeps, 0);
    assert.equal(limiter.taken, 100 * (1 << 30));
  });

  test('a changed rate applies to takes already waiting', async () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter(100, clock);
    await limiter.take(100);
    const slow = takeMany(limiter, 1, 1000);
    await clock.advance(100);
    assert.equal(slow.granted(), 0, 'at 100 B/s it needs a second');
    limiter.setRate(10_000);
    await settle();
    assert.equal(slow.granted(), 0, 'the bucket does not refill on a change');
    await clock.advance(99);
    assert.equal(slow.granted(), 1, 'at 10000 B/s the missing 990 bytes take 99 ms');
    assert.equal(limiter.bytesPerSecond, 10_000);

    const blocked = takeMany(limiter, 1, 50_000);
    await settle();
    assert.equal(blocked.granted(), 0);
    limiter.setRate(0);
    await settle();
    assert.equal(blocked.granted(), 1, 'switching to unlimited releases waiting takes');
    assert.throws(() => limiter.setRate(-1));
  });
});

describe('transfer rate limits', () => {
  test('every fetched byte goes through the download limiter, every served byte through the upload limiter', async () => {
    const keys = newFolder();
    const upload = new RateLimiter(256 * 1024 * 1024);
    const download = new RateLimiter(256 * 1024 * 1024);
    const alice = await makeDevice(cleanups, { name: 'alice', keys, rates: { upload } });
    const bob = await makeDevice(cleanups, { name: 'bob', keys, rates: { download } });
    const big = randomContent(3 * 1024 * 1024 + 12345, 7);
    await writeFile(join(alice.root, 'big.bin'), big);
    await writeFile(join(alice.root, 'small.txt'), 'small');
    await alice.scan();
    await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    assert.deepEqual(await readFile(join(bob.root, 'big.bin')), big);
    const fetched = big.length + 'small'.length;
    assert.equal(bob.sync.stats.bytesRequested, fetched);
    assert.equal(download.taken, fetched);
    assert.equal(upload.taken, fetched);
  });
});
