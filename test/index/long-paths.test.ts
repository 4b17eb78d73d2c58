// Paths longer than an LMDB key holds (Linux allows 4095 bytes) are stored under digest keys: every
// read, range and deletion pass sees them like any other path, and short paths keep their exact keys.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { open as openLmdb } from 'lmdb';
import { MAX_PATH_KEY_BYTES, pathKey } from '../../src/index/keys.js';
import { IndexStore } from '../../src/index/store.js';
import { FOLDER_A, file, hash, paths, recount, tempStore } from './helpers/store.js';

/** `count` nested directories of 250-byte names: 16 make a 4,015-byte path. */
function nested(count: number, tag = 'd'): string {
  return Array.from({ length: count }, (_, i) => `${String(i).padStart(2, '0')}${tag.repeat(248)}`).join('/');
}

const MAX = MAX_PATH_KEY_BYTES;

describe('long paths in the index', () => {
  test('store, read, stat, ranges, need order, block map, remote entries and deletion of 4,000-byte paths', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    const deep = nested(16);
    assert.ok(Buffer.byteLength(deep) > 4000 && Buffer.byteLength(deep) < 4096);
    // Two long paths sharing their first 1,800 bytes, a directory chain around the key limit, and short ones.
    const twin = `${nested(15)}/${'x'.repeat(250)}`;
    const dirs = Array.from({ length: 15 }, (_, i) => nested(i + 1));
    const records = [
      ...dirs.map((dir) => file(dir, { type: 'dir', size: 0, blocks: [] })),
      // Two blocks each: single-block files have no block map entry (schema 4).
      file(`${deep}/f.txt`, { blocks: [hash(7), hash(17)] }),
      file(deep, { type: 'dir', size: 0, blocks: [] }),
      file(twin, { blocks: [hash(8), hash(18)] }),
      file('short.txt', { blocks: [hash(9)] }),
    ];
    await index.putLocal(records);

    for (const record of records) {
      assert.equal(index.getLocal(record.path)?.path, record.path);
      assert.equal(index.getGlobal(record.path)?.path, record.path);
      assert.equal(index.getLocalStat(record.path)?.path, record.path);
    }
    assert.equal(index.getLocal(`${deep}/g.txt`), undefined);
    assert.deepEqual(index.findBlock(hash(7)), { path: `${deep}/f.txt`, index: 0 });
    assert.deepEqual(index.findBlock(hash(8)), { path: twin, index: 0 });
    assert.deepEqual(index.findBlock(hash(18)), { path: twin, index: 1 });
    assert.deepEqual(recount(index), index.counts());

    const all = records.map((r) => r.path).sort();
    assert.deepEqual([...index.localPaths()].sort(), all);
    assert.deepEqual(paths(index.localRecords()).sort(), all);
    // Subtrees: under a short directory, under one at the key limit, under long ones.
    for (const dir of [dirs[0]!, dirs[6]!, dirs[7]!, dirs[14]!, deep]) {
      const expected = all.filter((p) => p === dir || p.startsWith(dir + '/'));
      assert.deepEqual([...index.localPaths({ under: dir })].sort(), expected, `under ${Buffer.byteLength(dir)} bytes`);
      assert.deepEqual(paths(index.globalRecords({ under: dir })).sort(), expected);
    }
    // The twin shares the deep file's key prefix but is not beneath `deep`.
    assert.ok(![...index.localPaths({ under: deep })].includes(twin));

    // A peer's records: remote entries and the need list, parents before children (reversed: children first).
    const peer = 'P'.repeat(52);
    const changed = records.map((r) => ({ ...r, version: { PEER: 1 }, modifiedBy: 'PEER', sequence: 1 }));
    await index.putRemote(peer, changed);
    assert.deepEqual(await index.offerGlobal(changed).then((taken) => taken.length), changed.length);
    assert.deepEqual(index.remoteVersion(peer, deep), { PEER: 1 });
    assert.deepEqual(index.devicesWith(twin, { PEER: 1 }), [peer.slice(0, 12)], 'short IDs');
    const order = [...index.needed()].map((n) => n.global.path);
    assert.deepEqual([...order].sort(), all);
    for (const path of order) {
      for (const other of order) if (other.startsWith(path + '/')) assert.ok(order.indexOf(other) > order.indexOf(path), 'parent first');
    }
    assert.deepEqual([...index.needed({ reverse: true })].map((n) => n.global.path), [...order].reverse());

    // Deletion: the long records can be replaced and their block entries go with them.
    await index.putLocal([file(`${deep}/f.txt`, { deleted: true, blocks: [], size: 0, version: { DEV1: 2 } })]);
    assert.equal(index.findBlock(hash(7)), undefined);
    assert.equal(index.getLocal(`${deep}/f.txt`)?.deleted, true);
    await index.clearRemote(peer);
    assert.equal(index.remoteVersion(peer, deep), undefined);
    assert.deepEqual(recount(index), index.counts());
  });

  test('short paths keep their exact keys; long ones become bounded digest keys', () => {
    assert.equal(pathKey('a/b'), 'a/b');
    const limit = 'é'.repeat(MAX / 2);
    assert.equal(pathKey(limit), limit);
    const long = nested(16);
    const key = pathKey(long);
    assert.notEqual(key, long);
    assert.ok(Buffer.byteLength(key) < MAX + 64);
    assert.notEqual(pathKey(long + 'x'), key);
    assert.equal(pathKey(long), key);
  });

  test('a digest key whose value carries another path is refused on read', async (t) => {
    const { store, dir } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    const long = nested(10);
    await index.putLocal([file(long)]);
    await store.close();
    const env = openLmdb({ path: dir, maxDbs: 32 });
    const local = env.openDB({ name: 'local', useRecords: false } as { name: string });
    const prefix = env.openDB({ name: 'meta', useRecords: false } as { name: string }).get(['folderPrefix', FOLDER_A]) as string;
    const key = [prefix, pathKey(long)];
    const stored = local.get(key) as unknown[];
    stored[14] = `${long}y`;
    await local.put(key, stored);
    await env.close();
    const again = new IndexStore({ path: dir });
    t.after(() => again.close());
    await again.open();
    assert.throws(() => again.folder(FOLDER_A).getLocal(long), /another path/);
  });
});
