import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { WAIT_LIMIT_MS } from '../helpers/wait.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../helpers/daemon.js';
import { DAEMON_ENV, HeapTuner, MIN_OLD_GENERATION_ROOM, MemoryTrace, applyDaemonEnv, growingPercentFor, memorySample, type MemorySample } from '../../src/daemon/runtime.js';

const MiB = 1024 * 1024;

describe('heap tuner', () => {
  it('leaves at least the minimum room above a small heap, and half of a large one', () => {
    assert.equal(MIN_OLD_GENERATION_ROOM, 16 * MiB);
    assert.equal(growingPercentFor(7 * MiB), 229);
    assert.ok((7 * MiB * growingPercentFor(7 * MiB)) / 100 >= MIN_OLD_GENERATION_ROOM);
    assert.equal(growingPercentFor(MIN_OLD_GENERATION_ROOM), 100);
    assert.equal(growingPercentFor(24 * MiB), 67, 'a daemon\'s heap at any folder size: the same room above it');
    assert.equal(growingPercentFor(2 * MIN_OLD_GENERATION_ROOM), 50);
    assert.equal(growingPercentFor(200 * MiB), 50);
    assert.equal(growingPercentFor(2 * MiB), 300, 'a tiny heap is not allowed to grow without bound');
    assert.equal(growingPercentFor(0), 300);
  });

  it('sets the growing percent at start and after full collections, only when it changes', async () => {
    const flags: string[] = [];
    const live = [7 * MiB, 7 * MiB, 72 * MiB];
    const tuner = new HeapTuner({ setFlags: (f) => flags.push(f), liveBytes: () => live.shift() ?? 72 * MiB });
    tuner.start();
    assert.deepEqual(flags, ['--heap-growing-percent=229']);
    tuner.afterFullCollection();
    assert.deepEqual(flags, ['--heap-growing-percent=229'], 'same live size, same flag: not set again');

    // A real full collection reaches the tuner through its GC observer.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while (flags.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(flags, ['--heap-growing-percent=229', '--heap-growing-percent=50']);

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
    assert.deepEqual(empty, { PATH: '/bin', UV_THREADPOOL_SIZE: '8', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '1052672', MALLOC_TRIM_THRESHOLD_: '4194304' });
    assert.equal(DAEMON_ENV.UV_THREADPOOL_SIZE, '8');
    const chosen: NodeJS.ProcessEnv = { UV_THREADPOOL_SIZE: '2', MALLOC_ARENA_MAX: '4', MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_TRIM_THRESHOLD_: '131072' };
    applyDaemonEnv(chosen);
    assert.deepEqual(chosen, { UV_THREADPOOL_SIZE: '2', MALLOC_ARENA_MAX: '4', MALLOC_MMAP_THRESHOLD_: '65536', MALLOC_TRIM_THRESHOLD_: '131072' });
  });
});

describe('memory trace (FERRY_MEMORY_TRACE)', () => {
  it('splits anonymous memory into V8 heap, ArrayBuffers and the rest', () => {
    const status = 'VmRSS:\t  90000 kB\nRssAnon:\t   61440 kB\nRssFile:\t   20480 kB\n';
    const sample = memorySample(() => status);
    assert.equal(sample.rssAnon, 60);
    assert.equal(sample.rssFile, 20);
    assert.ok(sample.heapTotal > 0 && sample.heapUsed <= sample.heapTotal);
    assert.ok(sample.spaces.old_space && sample.spaces.new_space, 'V8 spaces listed');
    assert.ok(Math.abs(sample.native - (60 - sample.heapTotal - sample.external)) < 0.02, 'the rest: anonymous minus heap and external');
  });

  it('appends each new peak to DIR/memory-PID.jsonl', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-memtrace-'));
    const trace = new MemoryTrace(dir, 5);
    try {
      trace.start();
      const file = join(dir, `memory-${process.pid}.jsonl`);
      await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).includes('\n'), 'the first sample');
      const first = JSON.parse((await readFile(file, 'utf8')).split('\n')[0]!) as MemorySample;
      assert.ok(first.rssAnon > 0 && first.heapTotal > 0);
    } finally {
      trace.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
