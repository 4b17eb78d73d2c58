// A path too long for the index is reported as refused (a failed item in status), not only logged, and the rest is indexed.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { IndexStore } from '../../src/index/store.js';
import { MAX_PATH_KEY_BYTES } from '../../src/index/keys.js';
import { HashPool } from '../../src/scan/hash-pool.js';
import { Scanner } from '../../src/scan/scanner.js';
import { makeTempDir, runCleanups } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
after(() => runCleanups(cleanups));

test('a path longer than the index holds is reported through onRefused; the other files are indexed', async () => {
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
  await writeFile(join(root, long, 'deep.txt'), 'too deep for the index');
  await writeFile(join(root, 'ok.txt'), 'fine');
  const refused: Array<[string, string]> = [];
  const scanner = new Scanner({ root, index, deviceShortId: 'DEVAAAA', pool, onRefused: (path, reason) => refused.push([path, reason]) });
  await scanner.scan();
  assert.ok(index.getLocal('ok.txt'));
  assert.ok(refused.some(([path, reason]) => path === `${long}/deep.txt` && /cannot be indexed/.test(reason)), JSON.stringify(refused.map(([p, r]) => [p.length, r])));
});
