// Peer completion from the index: what each peer's announced records lack of the global state (issue 21).

import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { test } from 'node:test';
import { completionOf, computePeerCompletion, PeerCompletionCache } from '../../src/sync/peer-completion.js';
import { FOLDER_A, file, tempStore } from '../index/helpers/store.js';

test('completion by bytes, never 100 while a file is needed', () => {
  assert.equal(completionOf(1000, 0, 0), 100);
  assert.equal(completionOf(1000, 1, 250), 75);
  assert.equal(completionOf(1_000_000, 1, 1), 99.9);
  assert.equal(completionOf(0, 2, 0), 0);
});

test('a peer needs what it lacks or holds in an older version; deletions, directories and equal versions are not needed', async (t) => {
  const { store } = await tempStore(t);
  const index = store.folder(FOLDER_A);
  const stored = await index.putLocal([
    file('same.txt', { size: 100 }),
    file('older.txt', { size: 300, version: { DEV1: 2 } }),
    file('missing.txt', { size: 600 }),
    file('gone.txt', { size: 0, deleted: true, blocks: [] }),
    file('dir', { type: 'dir', size: 0, blocks: [] }),
  ]);
  const bySame = stored.filter((r) => r.path === 'same.txt' || r.path === 'gone.txt' || r.path === 'dir');
  await index.putRemote('PEER1', [...bySame, { ...stored.find((r) => r.path === 'older.txt')!, version: { DEV1: 1 } }]);
  await index.putRemote('PEER2', stored);
  const result = computePeerCompletion(index, ['PEER1', 'PEER2', 'PEER3']);
  assert.deepEqual(result.get('PEER1'), { completion: 10, needFiles: 2, needBytes: 900 });
  assert.deepEqual(result.get('PEER2'), { completion: 100, needFiles: 0, needBytes: 0 });
  assert.deepEqual(result.get('PEER3'), { completion: 0, needFiles: 3, needBytes: 1000 });

  // A large folder is worked out in the background, in chunks between which the event loop runs.
  const failures: unknown[] = [];
  const cache = new PeerCompletionCache(index, (err) => failures.push(err), 0);
  let values = cache.get(['PEER1'], 's1', 3);
  for (let i = 0; i < 100 && values.size === 0; i++) {
    await tick();
    values = cache.get(['PEER1'], 's1', 3);
  }
  assert.deepEqual(values.get('PEER1'), { completion: 10, needFiles: 2, needBytes: 900 });
  assert.deepEqual(failures, []);
  cache.close();
});

test('with no peer known, asking for completion reads no record (a folder shared by this device alone, polled while it changes)', async (t) => {
  const { store } = await tempStore(t);
  const index = store.folder(FOLDER_A);
  await index.putLocal(Array.from({ length: 50 }, (_, i) => file(`f${i}.txt`, { size: 10 })));
  let read = 0;
  const counting = new Proxy(index, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (key !== 'globalRecords' || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
      return function* (...args: unknown[]) {
        for (const record of (value as (...a: unknown[]) => Iterable<unknown>).apply(target, args)) {
          read++;
          yield record;
        }
      };
    },
  });
  // Both ways: at once (a small folder) and in the background (a large one).
  for (const syncLimit of [2000, 0]) {
    const cache = new PeerCompletionCache(counting, () => undefined, syncLimit);
    for (let i = 0; i < 5; i++) {
      assert.equal(cache.get([], `s${i}`, 50, 10_000 * i).size, 0);
      await tick();
    }
    cache.close();
  }
  assert.equal(read, 0, 'global records read');
  // With a peer, the same calls do read them (the count above would have seen it).
  const cache = new PeerCompletionCache(counting, () => undefined, 2000);
  cache.get(['PEER1'], 's', 50);
  assert.equal(read, 50);
  cache.close();
});
