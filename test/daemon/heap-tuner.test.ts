import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { HeapTuner, MIN_OLD_GENERATION_ROOM, growingPercentFor } from '../../src/daemon/runtime.js';

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

  it('keeps the floor while full collections free little (buffers started them), and 2× once they free garbage', () => {
    const flags: string[] = [];
    let heap = 16 * MiB;
    const tuner = new HeapTuner({ setFlags: (f) => flags.push(f), heapBytes: () => heap });
    tuner.start();
    assert.deepEqual(flags, ['--heap-growing-percent=100'], '2× to begin with');

    heap = 17 * MiB; // a scavenge
    tuner.afterCollection(false);
    heap = 16.5 * MiB; // a full collection that freed 0.5 MiB: started by buffers
    tuner.afterCollection(true);
    assert.deepEqual(flags, ['--heap-growing-percent=100', '--heap-growing-percent=219'], 'the floor for the live size');

    heap = 44 * MiB; // records piling up, seen after scavenges
    tuner.afterCollection(false);
    heap = 20 * MiB; // a full collection that freed more than the survivors' quarter
    tuner.afterCollection(true);
    assert.equal(flags.at(-1), '--heap-growing-percent=100');

    heap = 21 * MiB;
    tuner.afterCollection(true); // freed nothing again
    assert.equal(flags.at(-1), '--heap-growing-percent=172');
    tuner.close();
  });

  it('hears of real full collections through its GC observer, and of none once closed', async () => {
    const flags: string[] = [];
    const heap = [16 * MiB, 16 * MiB];
    const tuner = new HeapTuner({ setFlags: (f) => flags.push(f), heapBytes: () => heap.shift() ?? 16 * MiB });
    tuner.start();
    assert.deepEqual(flags, ['--heap-growing-percent=100']);

    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const deadline = Date.now() + 5000;
    while (flags.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(flags, ['--heap-growing-percent=100', '--heap-growing-percent=225'], 'a full collection that freed nothing: the floor');

    tuner.close();
    gc();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(flags.length, 2, 'no more changes once closed');
  });
});
