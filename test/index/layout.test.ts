// Snapshot of the stored layout (database names, exact key and value bytes) for one small folder.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { open } from 'lmdb';
import { IndexStore } from '../../src/index/store.js';
import type { LayoutSnapshot } from './fixtures/layout-v1.js';
import { LAYOUT_V2 } from './fixtures/layout-v2.js';
import { LAYOUT_V3 } from './fixtures/layout-v3.js';
import { LAYOUT_V4 } from './fixtures/layout-v4.js';
import { FOLDER_A, file, hash, tempDir } from './helpers/store.js';

/** Every database of the environment at `dir`, as hex keys and values, read without any decoding. */
async function dumpLayout(dir: string): Promise<LayoutSnapshot> {
  const env = open({ path: dir, maxDbs: 32 });
  try {
    const names = env.getKeys({}).asArray.map(String);
    const databases: LayoutSnapshot['databases'] = {};
    for (const name of names) {
      const raw = env.openDB({ name, keyEncoding: 'binary', encoding: 'binary' });
      databases[name] = raw.getRange({}).asArray.map(({ key, value }) => [
        Buffer.from(key as Uint8Array).toString('hex'),
        Buffer.from(value as Uint8Array).toString('hex'),
      ]);
    }
    return { names, databases };
  } finally {
    await env.close();
  }
}

async function writeSmallFolder(dir: string): Promise<void> {
  const store = new IndexStore({ path: dir });
  await store.open();
  await store.putSetting('deviceName', 'nas');
  await store.putDevice({ id: 'DEV2', name: 'pi', addresses: [], lastSeenMs: 1 });
  await store.putFolder({ id: FOLDER_A, path: '/srv/a', access: 'rw', key: 'AKEY', addedAtMs: 2, paused: false });
  const index = store.folder(FOLDER_A);
  await index.putLocal([
    file('docs', { type: 'dir', size: 0, blocks: [], mode: 0o755 }),
    file('docs/a.txt', { size: 5, blocks: [hash(1)], signature: new Uint8Array([9, 9]) }),
  ]);
  const fromPeer = { ...file('docs/b.txt', { version: { PEER: 1 }, modifiedBy: 'PEER', inode: 0 }), sequence: 4 };
  await index.putGlobal([fromPeer]);
  await index.putRemote('PEER', [fromPeer]);
  await index.setPeerSequence('PEER', 4, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
  await store.close();
}

/** Writes a snapshot's exact bytes into a new environment at `dir` (an index as an older Ferry left it). */
async function restoreLayout(dir: string, snapshot: LayoutSnapshot, edit?: (name: string, entries: Array<[string, string]>) => Array<[string, string]>): Promise<void> {
  const env = open({ path: dir, maxDbs: 32 });
  try {
    for (const name of snapshot.names) {
      const raw = env.openDB({ name, keyEncoding: 'binary', encoding: 'binary' });
      const entries = edit ? edit(name, snapshot.databases[name]!) : snapshot.databases[name]!;
      await env.transaction(() => {
        for (const [key, value] of entries) raw.putSync(Buffer.from(key, 'hex'), Buffer.from(value, 'hex'));
      });
    }
  } finally {
    await env.close();
  }
}

test('the stored layout matches the schema-4 snapshot', async (t) => {
  const dir = `${await tempDir(t)}/index`;
  await writeSmallFolder(dir);
  const layout = await dumpLayout(dir);
  if (process.env.FERRY_PRINT_LAYOUT) process.stdout.write(JSON.stringify(layout, null, 2) + '\n');

  assert.deepEqual(layout.names, ['blocks', 'counters', 'devices', 'folders', 'global', 'local', 'meta', 'need', 'peers', 'remote', 'sequence', 'settings']);
  // The local record of docs/a.txt: [folder prefix, path] in ordered-binary, elements joined by 0x00.
  const key = Buffer.concat([Buffer.from('#1'), Buffer.from([0]), Buffer.from('docs/a.txt')]).toString('hex');
  assert.ok(layout.databases.local!.some(([k]) => k === key));
  assert.deepEqual(layout, LAYOUT_V4);
});

test('a schema-2 index migrates to exactly the schema-4 layout, and reads back the same records', async (t) => {
  const fresh = `${await tempDir(t)}/fresh`;
  await writeSmallFolder(fresh);
  const store = new IndexStore({ path: fresh });
  await store.open();
  const index = store.folder(FOLDER_A);
  const expected = { local: [...index.localRecords()], global: [...index.globalRecords()], remote: index.remoteVersion('PEER', 'docs/b.txt') };
  await store.close();

  const dir = `${await tempDir(t)}/index`;
  await restoreLayout(dir, LAYOUT_V2);
  const migrated = new IndexStore({ path: dir });
  await migrated.open();
  const after = migrated.folder(FOLDER_A);
  assert.deepEqual({ local: [...after.localRecords()], global: [...after.globalRecords()], remote: after.remoteVersion('PEER', 'docs/b.txt') }, expected);
  assert.deepEqual(after.findBlock(hash(1), 'docs/a.txt'), { path: 'docs/a.txt', index: 0 });
  assert.equal(after.peerSequence('PEER'), 4);
  await migrated.close();
  assert.deepEqual(await dumpLayout(dir), LAYOUT_V4);
});

test('a schema-3 index migrates to exactly the schema-4 layout: the single-block file leaves the block map', async (t) => {
  const dir = `${await tempDir(t)}/index`;
  await restoreLayout(dir, LAYOUT_V3);
  assert.equal(LAYOUT_V3.databases.blocks!.length, 1);
  const migrated = new IndexStore({ path: dir });
  await migrated.open();
  assert.deepEqual(migrated.folder(FOLDER_A).findBlock(hash(1), 'docs/a.txt'), { path: 'docs/a.txt', index: 0 });
  await migrated.close();
  assert.deepEqual(await dumpLayout(dir), LAYOUT_V4);
});

test('schema 1 migrates through 2 to 3: the need database is filled, then moved', async (t) => {
  const dir = `${await tempDir(t)}/index`;
  // Schema 1 stored what schema 2 does, without the need database.
  await restoreLayout(dir, LAYOUT_V2, (name, entries) => {
    if (name === 'need') return [];
    if (name !== 'meta') return entries;
    const version = Buffer.from('schemaVersion').toString('hex');
    return entries.map(([k, v]) => (k.endsWith(version) ? [k, '01'] : [k, v]));
  });
  const store = new IndexStore({ path: dir });
  await store.open();
  t.after(() => store.close());
  assert.deepEqual([...store.folder(FOLDER_A).needed()].map((n) => n.global.path), ['docs/b.txt']);
});
