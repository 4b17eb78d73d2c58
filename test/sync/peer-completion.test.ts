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

/** `index` with its passes over the global records (globalRecords calls) and the records they read counted. */
function countingGlobalRecords<T extends object>(index: T): { index: T; counts: { passes: number; records: number } } {
  const counts = { passes: 0, records: 0 };
  const counted = new Proxy(index, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      if (key !== 'globalRecords') return value.bind(target);
      return function* (...args: unknown[]) {
        counts.passes++;
        for (const record of (value as (...a: unknown[]) => Iterable<unknown>).apply(target, args)) {
          counts.records++;
          yield record;
        }
      };
    },
  });
  return { index: counted, counts };
}

test('with no peer known, asking for completion reads no record (a folder shared by this device alone, polled while it changes)', async (t) => {
  const { store } = await tempStore(t);
  const index = store.folder(FOLDER_A);
  await index.putLocal(Array.from({ length: 50 }, (_, i) => file(`f${i}.txt`, { size: 10 })));
  const { index: counting, counts } = countingGlobalRecords(index);
  // Both ways: at once (a small folder) and in the background (a large one).
  for (const syncLimit of [2000, 0]) {
    const cache = new PeerCompletionCache(counting, () => undefined, syncLimit);
    for (let i = 0; i < 5; i++) {
      assert.equal(cache.get([], `s${i}`, 50, 10_000 * i).size, 0);
      await tick();
    }
    cache.close();
  }
  assert.equal(counts.records, 0, 'global records read');
  // With a peer, the same calls do read them (the count above would have seen it).
  const cache = new PeerCompletionCache(counting, () => undefined, 2000);
  cache.get(['PEER1'], 's', 50);
  assert.equal(counts.records, 50);
  cache.close();
});

test('a large folder whose index keeps moving is worked out again at most once per 1 ms per global file (100 s at 100,000 files)', async (t) => {
  const { store } = await tempStore(t);
  const index = store.folder(FOLDER_A);
  await index.putLocal(Array.from({ length: 20 }, (_, i) => file(`f${i}.txt`, { size: 10 })));
  const { index: counting, counts } = countingGlobalRecords(index);
  // Worked out at once (no background pass) for any size, so the count is exact.
  const cache = new PeerCompletionCache(counting, () => undefined, 1_000_000);
  const files = 100_000; // as status would say of a large folder (the pass itself reads the 20 records above)
  // A poll every 5 s for 10 minutes while the index moves (a new stamp each time): a pass at 0, 100, 200… s.
  for (let s = 0; s <= 600; s += 5) cache.get(['PEER1'], `stamp ${s}`, files, s * 1000);
  assert.equal(counts.passes, 7, 'passes in 600 s of polls');
  // The same stamp is not worked out again, however long after.
  cache.get(['PEER1'], 'stamp 600', files, 3_600_000);
  assert.equal(counts.passes, 7);
  // A small folder goes on as before: every 2 s at most.
  const small = new PeerCompletionCache(counting, () => undefined, 2000);
  for (let s = 0; s <= 10; s += 1) small.get(['PEER1'], `stamp ${s}`, 20, s * 1000);
  assert.equal(counts.passes - 7, 6, 'passes of a 20-file folder in 10 s of polls');
  cache.close();
  small.close();
});
