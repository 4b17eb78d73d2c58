// Schema 3 stores a global record equal to the local one as a marker: it must read back exactly,
// and stay the old global record when the local one changes without becoming global.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { open } from 'lmdb';
import { FOLDER_A, file, hash, tempStore } from './helpers/store.js';

/** The raw stored value of a path's global record (closes nothing: reads through a second handle). */
function rawGlobal(dir: string, path: string): unknown {
  const env = open({ path: dir, maxDbs: 32, readOnly: true });
  try {
    const prefix = env.openDB({ name: 'meta', useRecords: false } as { name: string }).get(['folderPrefix', FOLDER_A]);
    return env.openDB({ name: 'global', useRecords: false } as { name: string }).get([prefix, path]);
  } finally {
    env.close();
  }
}

test('a global record equal to the local one is a marker and reads back exactly', async (t) => {
  const { store, dir } = await tempStore(t);
  const index = store.folder(FOLDER_A);
  await index.putLocal([file('a.txt')]);
  const stored = rawGlobal(dir, 'a.txt');
  assert.ok(Array.isArray(stored) && stored.length === 2, `a marker, not ${JSON.stringify(stored)}`);
  assert.deepEqual(index.getGlobal('a.txt'), index.getLocal('a.txt'));
  assert.deepEqual([...index.globalRecords()], [index.getLocal('a.txt')]);
});

test('a local change that does not become global leaves the global record as it was', async (t) => {
  const { store } = await tempStore(t);
  const index = store.folder(FOLDER_A);
  await index.putLocal([file('a.txt')]);
  const before = index.getGlobal('a.txt')!;
  // A read-only device's own edit: local only.
  await index.putLocal([file('a.txt', { size: 99, blocks: [hash(2)], version: { DEV1: 2 }, inode: 7 })], { updateGlobal: false });
  assert.deepEqual(index.getGlobal('a.txt'), before);
  assert.equal(index.getLocal('a.txt')!.size, 99);
  assert.deepEqual([...index.needed()], [], 'the local version is newer: nothing to pull');
});

test('a peer record equal to the local one but for a finer mtime is a marker with its mtime; a signed one is stored in full', async (t) => {
  const { store, dir } = await tempStore(t);
  const index = store.folder(FOLDER_A);
  const fromPeer = { ...file('b.txt', { version: { PEER: 1 }, modifiedBy: 'PEER', inode: 0, mtimeMs: 1_700_000_000_000.5182 }), sequence: 9 };
  await index.putGlobal([fromPeer]);
  // Installed here: the file system kept the mtime in microseconds.
  await index.putLocal([file('b.txt', { version: { PEER: 1 }, modifiedBy: 'PEER', mtimeMs: 1_700_000_000_000.518 })], { updateGlobal: false });
  assert.equal((rawGlobal(dir, 'b.txt') as unknown[]).length, 3);
  assert.deepEqual(index.getGlobal('b.txt'), fromPeer);

  const signed = { ...file('c.txt', { version: { PEER: 1 }, modifiedBy: 'PEER', inode: 0, signature: new Uint8Array(64).fill(3) }), sequence: 10 };
  await index.putLocal([file('c.txt', { version: { PEER: 1 }, modifiedBy: 'PEER' })], { updateGlobal: false });
  await index.putGlobal([signed]);
  assert.ok((rawGlobal(dir, 'c.txt') as unknown[]).length > 3, 'stored in full');
  assert.deepEqual(index.getGlobal('c.txt'), signed);
});
