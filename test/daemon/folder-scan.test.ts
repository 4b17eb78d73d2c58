// SharedFolder rescans stay local: edits in two top-level directories rescan those paths, not the folder.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FOLDER_MARKER, SharedFolder } from '../../src/daemon/folder.js';
import { IndexStore } from '../../src/index/store.js';
import { FolderKeys } from '../../src/keys/index.js';
import { HashPool, type ScanResult } from '../../src/scan/index.js';
import { silentLogger } from '../../src/util/log.js';

interface Scan {
  subtrees: readonly string[];
  result: ScanResult;
}

test('an edit in each of two top-level directories rescans only what changed there, never the whole folder', { timeout: 120_000 }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ferry-folder-scan-'));
  const home = await mkdtemp(join(tmpdir(), 'ferry-folder-scan-home-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  t.after(() => rm(home, { recursive: true, force: true }));
  await mkdir(join(root, FOLDER_MARKER));
  // 6 top-level directories of 150 files; the edits go to `a` (one file) and `b/deep` (40 files, past the
  // watcher's old bound of 32 changed paths, which folded them into `b` and then, with `a`, into the root).
  const tops = ['a', 'b/deep', 'c', 'd', 'e', 'f'];
  for (const top of tops) {
    await mkdir(join(root, top), { recursive: true });
    for (let i = 0; i < 150; i++) await writeFile(join(root, top, `${i}.txt`), `${top} ${i}`);
  }
  const entries = tops.length * 150 + tops.length + 1;

  const store = new IndexStore({ path: join(home, 'index') });
  await store.open();
  t.after(() => store.close());
  const pool = new HashPool({ workers: 2 });
  await pool.open();
  t.after(() => pool.close());
  const keys = FolderKeys.generate();
  const index = store.folder(keys.folderIdHex);

  const scans: Scan[] = [];
  let waiter: { done: () => boolean; resolve: () => void } | null = null;
  const until = (done: () => boolean): Promise<void> =>
    done() ? Promise.resolve() : new Promise((resolve) => (waiter = { done, resolve }));
  const folder = new SharedFolder({
    config: { id: keys.folderIdHex, path: root, access: 'rw', key: 'unused', addedAtMs: Date.now(), paused: false },
    keys,
    index,
    pool,
    device: { id: 'SCALETESTDEV'.padEnd(52, 'A'), shortId: 'SCALETESTDEV' },
    logger: silentLogger,
    rescanIntervalMs: 3_600_000,
    unwatchedRescanIntervalMs: 3_600_000,
    archiveDays: 1,
    peerSource: () => undefined,
    onScanned: (subtrees, result) => {
      scans.push({ subtrees, result });
      if (waiter?.done()) {
        waiter.resolve();
        waiter = null;
      }
    },
  });
  t.after(() => folder.close());
  await folder.open();
  await until(() => scans.some((scan) => scan.subtrees.includes('')));
  assert.equal(index.getLocal('f/149.txt')?.size, 'f 149'.length);
  const first = scans.find((scan) => scan.subtrees.includes(''))!;
  assert.ok(first.result.scanned >= entries - 1, `first scan visited ${first.result.scanned}`);

  scans.length = 0;
  const edited = ['a/7.txt', ...Array.from({ length: 40 }, (_, i) => `b/deep/${i}.txt`)];
  for (const path of edited) await writeFile(join(root, path), `${path} edited`);
  await until(() => edited.every((path) => index.getLocal(path)?.size === `${path} edited`.length));

  const visited = scans.reduce((sum, scan) => sum + scan.result.scanned, 0);
  const unders = scans.flatMap((scan) => scan.subtrees);
  assert.ok(!unders.includes(''), `a rescan of the whole folder: ${unders.join(', ')}`);
  assert.ok(unders.every((under) => under.startsWith('a/') || under === 'a' || under.startsWith('b/') || under === 'b'), unders.join(', '));
  // Only the edited files (and at most their two directories) are visited, not the 900 others.
  assert.ok(visited <= 2 * 150 + 2, `visited ${visited} entries for ${edited.length} edits: ${unders.join(', ')}`);
});
