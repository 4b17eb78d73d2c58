// The default bounds on block bytes in flight (issue 29 item 4: they are most of a daemon's peak memory while it
// syncs): a receiver asks one peer for at most 4 MiB at once, a sender answers one peer with at most 4 MiB at once.

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ByteBudget } from '../../src/sync/budget.js';
import type { FolderSync } from '../../src/sync/folder-sync.js';
import { connect, converged, makeDevice, newFolder, randomContent, runCleanups, until, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

const MiB = 1024 * 1024;

/** Holds each answer until `release()`; counts the bytes being answered at once (the serving side's reads). */
function holdAnswers(sync: FolderSync): { peak: () => number; waiting: () => number; release: () => void } {
  const answer = sync.answer.bind(sync);
  let answering = 0;
  let peak = 0;
  let open: (() => void) | null = null;
  let gate = new Promise<void>((resolve) => (open = resolve));
  sync.answer = async (...args: Parameters<FolderSync['answer']>) => {
    const size = args[1].size;
    answering += size;
    peak = Math.max(peak, answering);
    try {
      await gate;
      return await answer(...args);
    } finally {
      answering -= size;
    }
  };
  return {
    peak: () => peak,
    waiting: () => answering,
    release: () => {
      open?.();
      open = null;
      gate = Promise.resolve();
    },
  };
}

describe('default bytes in flight', () => {
  test('a receiver asks one peer for at most 4 MiB at once (its folder for at most 8 MiB)', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const content = randomContent(24 * MiB, 31);
    await writeFile(join(alice.root, 'big.bin'), content);
    await alice.scan();
    const held = holdAnswers(alice.sync);
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await connect(cleanups, alice, bob);
    const peer = (): ByteBudget => [...(bob.sync as unknown as { links: { values(): Iterable<{ budget: ByteBudget }> } }).links.values()][0]!.budget;
    // Files waiting for the peer hold the folder's bytes meanwhile: the folder's budget fills too.
    await until(() => bob.sync.budget.inUse >= 8 * MiB && peer().inUse >= 4 * MiB);
    assert.equal(peer().inUse, 4 * MiB, 'requests outstanding to the one peer');
    held.release();
    await converged([alice, bob]);
    assert.deepEqual(await readFile(join(bob.root, 'big.bin')), content);
    assert.equal(peer().peak, 4 * MiB);
    assert.equal(bob.sync.budget.peak, 8 * MiB);
  });

  test('a sender answers one peer with at most 4 MiB at once, however much it asks for', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const content = randomContent(24 * MiB, 32);
    await writeFile(join(alice.root, 'big.bin'), content);
    await alice.scan();
    const held = holdAnswers(alice.sync);
    const bob = await makeDevice(cleanups, { name: 'bob', keys, limits: { folderBytesInFlight: 16 * MiB, peerBytesInFlight: 16 * MiB } });
    await connect(cleanups, alice, bob);
    await until(() => held.waiting() >= 4 * MiB && bob.sync.budget.inUse >= 8 * MiB);
    assert.equal(held.waiting(), 4 * MiB, 'answers being read at once');
    held.release();
    await converged([alice, bob]);
    assert.deepEqual(await readFile(join(bob.root, 'big.bin')), content);
    assert.equal(held.peak(), 4 * MiB);
  });
});
