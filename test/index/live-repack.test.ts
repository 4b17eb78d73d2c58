// Repack while the index is open (src/index/live-repack.ts, IndexStore.repackWhileOpen): a receiver's loose index is
// rewritten with full pages while writes and reads go on; what was written during the copy is in the new index; a
// reader iterating across the swap finishes; the new index is the one on disk at the next open.

import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { IndexStore } from '../../src/index/store.js';
import { createLogger } from '../../src/util/log.js';
import { PEER, pathOf, receive } from './helpers/receiver.js';
import { FOLDER_A, file, hash, recount, tempDir } from './helpers/store.js';
import { until } from '../sync/helpers.js';

const FILES = 20_000;
/** Write transactions (two records each) at most while the repack runs. */
const WRITES_DURING = 150;

async function bytesPerFile(dir: string, files: number): Promise<number> {
  return (await stat(join(dir, 'data.mdb'))).size / files;
}

/** A store whose background repack is due at once and runs after 100 ms without writes; `seen` resolves when it logs the repack. */
async function storeRepackingSoon(t: TestContext): Promise<{ store: IndexStore; seen: Promise<void> }> {
  const dir = join(await tempDir(t), 'index');
  let repacked!: () => void;
  const seen = new Promise<void>((resolve) => (repacked = resolve));
  const logger = createLogger({
    component: 'test',
    level: 'info',
    sink: { write: (line) => (line.includes('index repacked while open') ? repacked() : undefined) },
  });
  const store = new IndexStore({ path: dir, logger, repackIntervalMs: 0, repackBusyWindowMs: 100 });
  await store.open();
  t.after(() => store.close());
  return { store, seen };
}

describe('index repack while open', () => {
  test(`a receiver's loose index of ${FILES} files is repacked while writes go on: at most 0.5 KB per file, nothing written meanwhile lost`, async (t) => {
    const dir = join(await tempDir(t), 'index');
    const store = new IndexStore({ path: dir, backgroundRepack: false });
    await store.open();
    let closed = false;
    t.after(() => (closed ? undefined : store.close()));
    await receive(store, FILES);
    const index = store.folder(FOLDER_A);
    const before = await bytesPerFile(dir, FILES);
    assert.ok(before > 400, `before: ${before.toFixed(0)} bytes per file (loose, as a receiver writes it)`);

    // A reader part-way through the folder when the repack begins; it finishes after the swap.
    const reader = index.localRecords()[Symbol.iterator]();
    for (let i = 0; i < 100; i++) assert.equal(reader.next().done, false);

    // Writes go on during the repack, as sync's would: new files, and existing ones changed (copied already or not yet),
    // up to WRITES_DURING transactions (a sync's pace, not a flood that would be most of the index by itself).
    const repack = store.repackWhileOpen();
    let finished = false;
    void repack.then(() => (finished = true));
    let writesDuring = 0;
    let n = 0;
    while (!finished && n < WRITES_DURING) {
      const k = n++;
      await index.putLocal([
        // Two blocks: block map entries (single-block files have none) are journalled and caught up too.
        file(`during/n${k}.txt`, { size: k, blocks: [hash(1_000_000 + k), hash(2_000_000 + k)] }),
        { ...file(pathOf((k * 997) % FILES), { size: 1024, blocks: [hash((k * 997) % FILES)], version: { [PEER]: 1, LOCAL: k + 1 }, modifiedBy: 'LOCAL' }), inode: 5 },
      ]);
      if (!finished) writesDuring++;
    }
    const result = await repack;
    assert.ok(result, 'the repack ran to its end');
    assert.ok(writesDuring >= 3, `writes committed while the repack ran: ${writesDuring}`);
    assert.ok(result.caughtUp > 0, 'keys written during the copy were taken again');
    const after = await bytesPerFile(dir, FILES + n);
    assert.ok(after <= 512, `after: ${after.toFixed(0)} bytes per file (before ${before.toFixed(0)}); ${result.entries} entries, ${result.caughtUp} caught up, writes held ${result.heldMs} ms`);
    assert.ok(after < before * 0.85, `the repack fills the pages: ${after.toFixed(0)} bytes per file (before ${before.toFixed(0)})`);

    t.diagnostic(`${before.toFixed(0)} -> ${after.toFixed(0)} bytes per file; ${writesDuring} write transactions during the repack; ${result.caughtUp} keys caught up; writes held ${result.heldMs} ms`);
    assert.equal(store.retiredEnvironments, 1, 'the old environment is open while the reader begun on it iterates');
    let rest = 100;
    while (!reader.next().done) rest++;
    assert.ok(rest >= FILES, `the reader begun before the swap finished: ${rest} records`);
    assert.equal(store.retiredEnvironments, 0, 'and closed once it ended');

    const check = async (s: IndexStore, extra = 0): Promise<void> => {
      const x = s.folder(FOLDER_A);
      assert.deepEqual(x.counts(), recount(x));
      assert.equal(x.counts().localFiles, FILES + n + extra);
      for (let k = 0; k < n; k++) assert.equal(x.getLocal(`during/n${k}.txt`)?.size, k, `during/n${k}.txt`);
      const changed = (n - 1) * 997 % FILES;
      assert.equal(x.getLocal(pathOf(changed))?.modifiedBy, 'LOCAL');
      assert.deepEqual(x.findBlock(hash(1_000_000 + n - 1)), { path: `during/n${n - 1}.txt`, index: 0 });
      for (const i of [1, 4_999, 12_345, FILES - 1]) {
        assert.deepEqual(x.getGlobal(pathOf(i))?.version !== undefined, true);
        assert.ok(x.remoteVersion(PEER, pathOf(i)));
      }
      assert.equal(x.peerSequence(PEER), FILES);
    };
    await check(store);
    // Writes after the swap go to the new index.
    await index.putLocal([file('after.txt')]);
    assert.equal(index.getLocal('after.txt')?.size, 10);
    await store.close();
    closed = true;
    assert.deepEqual(await readdir(join(dir, '..')), ['index'], 'nothing left beside the index');

    const again = new IndexStore({ path: dir, backgroundRepack: false });
    await again.open();
    t.after(() => again.close());
    await check(again, 1);
    assert.equal(again.folder(FOLDER_A).getLocal('after.txt')?.size, 10);
  });

  test('a loose index is repacked in the background by itself, by the measure used at open', async (t) => {
    // Put off while the receiver writes (a busy index), then run once a 100 ms window passes without writes.
    const { store, seen } = await storeRepackingSoon(t);
    await receive(store, FILES);
    await seen;
    assert.equal(store.retiredEnvironments, 0, 'the old environment closed at once: nothing was reading it');
    const index = store.folder(FOLDER_A);
    assert.deepEqual(index.counts(), recount(index));
    assert.equal(index.counts().localFiles, FILES);
    assert.equal(index.hasNeeded(), false);
  });

  test('no background repack starts while a scan runs, however slowly it writes; it starts when the scan ends', async (t) => {
    // Due at once and quiet after 100 ms without writes: what a first scan crawling at 11-40 files/s looked like.
    const { store, seen } = await storeRepackingSoon(t);
    const index = store.folder(FOLDER_A);
    const endScan = index.scanning!();
    const second = index.scanning!();
    await receive(store, FILES);
    await until(() => store.recentWrites === 0);
    // A slow scan's next write: the index is quiet and loose, and the scan is still running.
    await index.putLocal([file('slow/one.txt')]);
    await Promise.resolve();
    assert.equal(store.repackRunning, false, 'no repack while a scan runs');
    endScan();
    endScan(); // twice: counted once
    assert.equal(store.repackRunning, false, 'nor while another scan runs');
    second();
    assert.equal(store.repackRunning, true, 'the repack starts when the last scan ends');
    await seen;
    assert.deepEqual(index.counts(), recount(index));
  });

  test('a busy index is not repacked in the background: no copy and no journal while a receiver writes 20,000 records', async (t) => {
    const dir = join(await tempDir(t), 'index');
    // Due at once (no interval), and never quiet within the test: more than 1,000 records in each hour.
    const store = new IndexStore({ path: dir, repackIntervalMs: 0, repackBusyRecords: 1_000, repackBusyWindowMs: 60 * 60_000 });
    await store.open();
    t.after(() => store.close());
    let writes = 0;
    let runningAfter = 0;
    let journalMax = 0;
    await receive(store, FILES, () => {
      writes++;
      if (store.repackRunning) runningAfter++;
      journalMax = Math.max(journalMax, store.repackJournalKeys);
    });
    assert.ok(writes > 500, `${writes} write transactions`);
    assert.ok(store.recentWrites >= FILES, `records counted as recent: ${store.recentWrites}`);
    assert.equal(runningAfter, 0, `a background repack ran during ${runningAfter} of ${writes} write transactions`);
    assert.equal(journalMax, 0, 'no journal of keys written during a copy');
  });
});
