// A path longer than an LMDB key holds (Linux allows 4095 bytes) is indexed like any other, not refused.

import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { IndexStore } from '../../src/index/store.js';
import { MAX_PATH_KEY_BYTES } from '../../src/index/keys.js';
import { HashPool } from '../../src/scan/hash-pool.js';
import { Scanner } from '../../src/scan/scanner.js';
import { makeTempDir, runCleanups } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
after(() => runCleanups(cleanups));

test('a path longer than an index key is scanned and indexed, found again by a rescan, and its removal seen', async () => {
  const pool = new HashPool({ workers: 1 });
  await pool.open();
  cleanups.push(() => pool.close());
  const store = new IndexStore({ path: await makeTempDir(cleanups, 'ferry-scan-index-') });
  await store.open();
  cleanups.push(() => store.close());
  const index = store.folder('cd'.repeat(20));
  const root = await makeTempDir(cleanups);
  const long = Array.from({ length: Math.ceil(MAX_PATH_KEY_BYTES / 200) + 1 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(198)}`).join('/');
  await mkdir(join(root, long), { recursive: true });
  await writeFile(join(root, long, 'deep.txt'), 'deeper than an index key');
  await writeFile(join(root, 'ok.txt'), 'fine');
  const refused: Array<[string, string]> = [];
  const scanner = new Scanner({ root, index, deviceShortId: 'DEVAAAA', pool, onRefused: (path, reason) => refused.push([path, reason]) });
  await scanner.scan();
  assert.ok(index.getLocal('ok.txt'));
  assert.deepEqual(refused, []);
  const deep = index.getLocal(`${long}/deep.txt`);
  assert.equal(deep?.size, 'deeper than an index key'.length);
  const sequence = index.localSequence();
  await scanner.scan();
  assert.equal(index.localSequence(), sequence, 'an unchanged long path is not indexed again');
  await rm(join(root, long, 'deep.txt'));
  await scanner.scan();
  assert.equal(index.getLocal(`${long}/deep.txt`)?.deleted, true);
});
