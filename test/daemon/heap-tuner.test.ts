import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { WAIT_LIMIT_MS } from '../helpers/wait.js';
import { DAEMON_ENV, HeapTuner, MIN_OLD_GENERATION_ROOM, applyDaemonEnv, growingPercentFor } from '../../src/daemon/runtime.js';

const MiB = 1024 * 1024;

describe('heap tuner', () => {
  it('leaves at least the minimum room above a small heap, and doubles a large one', () => {
    assert.equal(growingPercentFor(16 * MiB), 225);
    assert.ok((16 * MiB * growingPercentFor(16 * MiB)) / 100 >= MIN_OLD_GENERATION_ROOM);
    assert.equal(growingPercentFor(MIN_OLD_GENERATION_ROOM), 100);
    assert.equal(growingPercentFor(200 * MiB), 100);
    assert.equal(growingPercentFor(2 * MiB), 300, 'a tiny heap is not allowed to grow without bound');
    assert.equal(growingPercentFor(0), 300);
  });

  it('sets the growing percent at start and after full collections, only when it changes', async () => {
    const flags: string[] = [];
    const live = [16 * MiB, 16 * MiB, 72 * MiB];
    const tuner = new HeapTuner({ setFlags: (f) => flags.push(f), liveBytes: () => live.shift() ?? 72 * MiB });
    tuner.start();
    assert.deepEqual(flags, ['--heap-growing-percent=225']);
    tuner.afterFullCollection();
    assert.deepEqual(flags, ['--heap-growing-percent=225'], 'same live size, same flag: not set again');

    // A real full collection reaches the tuner through its GC observer.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while (flags.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(flags, ['--heap-growing-percent=225', '--heap-growing-percent=100']);

    tuner.close();
    // Our own observer of the next full collection: once it has seen it, a tuner still observing would have too.
    // (The timer also keeps the event loop alive until the entry is delivered.)
    const seen = new Promise<void>((resolve, reject) => {
      const limit = setTimeout(() => reject(new Error('no full collection observed')), WAIT_LIMIT_MS);
      const observer = new PerformanceObserver((list) => {
        if (!list.getEntries().some((entry) => (entry as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR)) return;
        observer.disconnect();
        clearTimeout(limit);
        resolve();
      });
      observer.observe({ entryTypes: ['gc'] });
    });
    gc();
    await seen;
    assert.equal(flags.length, 2, 'no more changes once closed');
  });
});

describe('daemon environment', () => {
  it('sets what is unset (libuv pool of 8) and keeps what the user set', () => {
    const empty: NodeJS.ProcessEnv = { PATH: '/bin' };
    applyDaemonEnv(empty);
    assert.deepEqual(empty, { PATH: '/bin', UV_THREADPOOL_SIZE: '8' });
    assert.equal(DAEMON_ENV.UV_THREADPOOL_SIZE, '8');
    const chosen: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: '2' };
    applyDaemonEnv(chosen);
    assert.deepEqual(chosen, { UV_THREADPOOL_SIZE: '2' });
  });
});
