// IndexStore: settings, folders and devices, folder removal, lifecycle.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { open } from 'lmdb';
import { isFerryError } from '../../src/errors.js';
import { IndexStore, MAP_SIZE_64BIT, mapLayout } from '../../src/index/store.js';
import type { DeviceRecord, FolderConfig } from '../../src/index/types.js';
import { FOLDER_A, FOLDER_B, file, hash, paths, tempDir, tempStore } from './helpers/store.js';

function folderConfig(id: string, dir: string): FolderConfig {
  return { id, path: dir, access: 'rw', key: 'AXXXX', addedAtMs: 1_700_000_000_000, paused: false };
}

describe('IndexStore', () => {
  test('settings: put, get, list, delete with undefined, survive reopening', async (t) => {
    const dir = await tempDir(t);
    const store = new IndexStore({ path: `${dir}/index` });
    await store.open();
    assert.equal(store.getSetting('web'), undefined);
    await store.putSetting('web', { host: '127.0.0.1', port: 8888 });
    await store.putSetting('lan', true);
    await store.putSetting('trackers', ['udp://t.example:6969']);
    assert.deepEqual(store.getSetting('web'), { host: '127.0.0.1', port: 8888 });
    await store.putSetting('lan', undefined);
    assert.deepEqual(store.allSettings(), { trackers: ['udp://t.example:6969'], web: { host: '127.0.0.1', port: 8888 } });
    await store.close();

    const again = new IndexStore({ path: `${dir}/index` });
    await again.open();
    assert.deepEqual(again.getSetting<string[]>('trackers'), ['udp://t.example:6969']);
    assert.equal(again.getSetting('lan'), undefined);
    await again.close();
  });

  test('folders and devices: put, get, list, overwrite', async (t) => {
    const { store } = await tempStore(t);
    await store.putFolder(folderConfig(FOLDER_B, '/b'));
    await store.putFolder(folderConfig(FOLDER_A, '/a'));
    await store.putFolder({ ...folderConfig(FOLDER_A, '/a'), paused: true });
    assert.deepEqual(store.listFolders().map((f) => f.id), [FOLDER_A, FOLDER_B]);
    assert.equal(store.getFolder(FOLDER_A)?.paused, true);
    assert.equal(store.getFolder('c'.repeat(40)), undefined);

    const device: DeviceRecord = { id: 'DEVICE1', name: 'nas', addresses: ['127.0.0.1:22100'], lastSeenMs: 5 };
    await store.putDevice(device);
    await store.putDevice({ ...device, id: 'DEVICE0', name: 'pi' });
    assert.deepEqual(store.getDevice('DEVICE1'), device);
    assert.deepEqual(store.listDevices().map((d) => d.name), ['pi', 'nas']);
  });

  test('folder() hands out one index per folder ID', async (t) => {
    const { store } = await tempStore(t);
    assert.equal(store.folder(FOLDER_A), store.folder(FOLDER_A));
    assert.notEqual(store.folder(FOLDER_A), store.folder(FOLDER_B));
    assert.equal(store.folder(FOLDER_A).folderId, FOLDER_A);
  });

  test('removeFolder clears everything of that folder and nothing of another', async (t) => {
    const { store } = await tempStore(t);
    for (const id of [FOLDER_A, FOLDER_B]) {
      await store.putFolder(folderConfig(id, `/${id}`));
      const index = store.folder(id);
      await index.putLocal([file('x', { blocks: [hash(7), hash(9)] }), file('d/y', { blocks: [hash(8)] })]);
      await index.putGlobal([{ ...file('remote', { version: { PEER: 1 } }), sequence: 3 }]);
      await index.setPeerSequence('PEER', 9);
    }
    await store.removeFolder(FOLDER_A);

    assert.equal(store.getFolder(FOLDER_A), undefined);
    const a = store.folder(FOLDER_A);
    assert.deepEqual(paths(a.localRecords()), []);
    assert.deepEqual(paths(a.globalRecords()), []);
    assert.deepEqual(paths(a.localSince(0)), []);
    assert.equal(a.findBlock(hash(7)), undefined);
    assert.equal(a.peerSequence('PEER'), 0);
    assert.equal(a.localSequence(), 0);
    assert.deepEqual(a.counts(), { localFiles: 0, localBytes: 0, globalFiles: 0, globalBytes: 0, needFiles: 0, needBytes: 0 });

    const b = store.folder(FOLDER_B);
    assert.ok(store.getFolder(FOLDER_B));
    assert.deepEqual(paths(b.localRecords()), ['d/y', 'x']);
    assert.deepEqual(paths(b.globalRecords()), ['d/y', 'remote', 'x']);
    assert.deepEqual(b.findBlock(hash(7)), { path: 'x', index: 0 });
    assert.equal(b.peerSequence('PEER'), 9);
    assert.equal(b.counts().localFiles, 2);
  });

  test('an interrupted folder removal is finished on the next open', async (t) => {
    const dir = await tempDir(t);
    const store = new IndexStore({ path: `${dir}/index` });
    await store.open();
    await store.folder(FOLDER_A).putLocal([file('x'), file('y')]);
    await store.folder(FOLDER_B).putLocal([file('z')]);
    await store.close();

    // What the first transaction of removeFolder leaves behind when the process dies right after it.
    const env = open({ path: `${dir}/index`, maxDbs: 32 });
    await env.openDB({ name: 'meta', useRecords: false } as { name: string }).put(['removing', FOLDER_A], true);
    await env.close();

    const again = new IndexStore({ path: `${dir}/index` });
    await again.open();
    assert.deepEqual(paths(again.folder(FOLDER_A).localRecords()), []);
    assert.deepEqual(paths(again.folder(FOLDER_B).localRecords()), ['z']);
    await again.close();
  });

  test('close waits for pending writes, is idempotent, and later calls fail with CLOSED', async (t) => {
    const dir = await tempDir(t);
    const store = new IndexStore({ path: `${dir}/index` });
    await store.open();
    const write = store.folder(FOLDER_A).putLocal([file('late')]);
    const closing = store.close();
    assert.equal(store.close(), closing);
    await closing;
    await write;
    assert.throws(() => store.getSetting('x'), (err) => isFerryError(err, 'CLOSED'));
    assert.throws(() => store.folder(FOLDER_A), (err) => isFerryError(err, 'CLOSED'));
    await assert.rejects(store.putSetting('x', 1), (err) => isFerryError(err, 'CLOSED'));

    const again = new IndexStore({ path: `${dir}/index` });
    await again.open();
    assert.deepEqual(paths(again.folder(FOLDER_A).localRecords()), ['late']);
    await again.close();
  });

  test('the index file is mapped once while it grows to megabytes (64-bit), in chunks on 32-bit', async (t) => {
    assert.deepEqual(mapLayout(64), { mapSize: MAP_SIZE_64BIT, remapChunks: false });
    assert.deepEqual(mapLayout(32), { remapChunks: true });
    const maps = await readFile('/proc/self/maps', 'utf8').catch(() => undefined);
    if (maps === undefined || mapLayout().remapChunks) {
      t.skip('needs /proc/self/maps on a 64-bit Linux system');
      return;
    }
    const { store, dir } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    // About 8 MB of records: lmdb-js's default map (128 KiB, doubled as the file grows) maps it again six times.
    for (let batch = 0; batch < 8; batch++) {
      const records = Array.from({ length: 2000 }, (_, i) =>
        file(`dir-${batch}/file-${i}-${'x'.repeat(200)}`, { blocks: [hash(batch * 2000 + i), hash(i)] }),
      );
      await index.putLocal(records);
    }
    const mdbPath = `${dir}/data.mdb`;
    const mappings = (await readFile('/proc/self/maps', 'utf8')).split('\n').filter((line) => line.endsWith(mdbPath));
    assert.equal(mappings.length, 1, mappings.join('\n'));
  });

  test('an index that outgrows its map size grows the map instead of failing with MDB_MAP_FULL', async (t) => {
    const { store } = await tempStore(t, { mapSizeBytes: 1024 * 1024 });
    const index = store.folder(FOLDER_A);
    for (let batch = 0; batch < 4; batch++) {
      await index.putLocal(Array.from({ length: 2000 }, (_, i) => file(`grow-${batch}/file-${i}-${'y'.repeat(200)}`, { blocks: [hash(batch * 2000 + i)] })));
    }
    assert.equal(index.counts().localFiles, 8000);
    assert.equal(index.getLocal(`grow-3/file-1999-${'y'.repeat(200)}`)?.size, 10);
  });
});
