// FolderIndex additions for sync: putLocal without global, remote records, index identity, needed(), conflict winner.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IndexStore } from '../../src/index/store.js';
import { conflictWinner, supersedes, type FileRecord } from '../../src/index/records.js';
import { INDEX_ID_BYTES } from '../../src/index/types.js';
import { LIMITS } from '../../src/protocol/limits.js';
import { FOLDER_A, FOLDER_B, file, hash, paths, recount, tempDir, tempStore } from './helpers/store.js';

function remote(p: string, fields: Partial<FileRecord> = {}): FileRecord {
  return { ...file(p, { inode: 0, modifiedBy: 'PEER', version: { PEER: 1 } }), sequence: 1, ...fields };
}

describe('FolderIndex for sync', () => {
  test('putLocal with updateGlobal false keeps the edit local and not needed', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putGlobal([remote('a')]);
    await index.putLocal([file('a', { version: { PEER: 1, RO: 1 } }), file('b')], { updateGlobal: false });
    assert.deepEqual(index.getGlobal('a')?.version, { PEER: 1 });
    assert.equal(index.getGlobal('b'), undefined);
    assert.deepEqual([...index.needed()], []);
    assert.deepEqual(index.counts(), recount(index));
    assert.equal(index.counts().localFiles, 2);
    assert.equal(index.counts().globalFiles, 1);
  });

  test('remote records: per device, exact path, devicesWith by version, clearRemote', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putRemote('P1', [remote('a', { version: { PEER: 2 } }), remote('a/b'), remote('ab')]);
    await index.putRemote('P2', [remote('a', { version: { PEER: 2 } })]);
    await index.putRemote('P3', [remote('a', { version: { PEER: 1 } })]);
    await store.folder(FOLDER_B).putRemote('P4', [remote('a', { version: { PEER: 2 } })]);
    assert.deepEqual(index.devicesWith('a', { PEER: 2 }).sort(), ['P1', 'P2']);
    assert.deepEqual(index.devicesWith('a', { PEER: 1 }), ['P3']);
    assert.deepEqual(index.devicesWith('a/b', { PEER: 1 }), ['P1']);
    assert.deepEqual(index.devicesWith('nothing', { PEER: 1 }), []);
    assert.deepEqual(index.remoteVersion('P1', 'a'), { PEER: 2 });
    assert.equal(index.remoteVersion('P2', 'ab'), undefined);
    await index.clearRemote('P1');
    assert.deepEqual(index.devicesWith('a', { PEER: 2 }), ['P2']);
    assert.equal(index.remoteVersion('P1', 'a/b'), undefined);
    assert.deepEqual(store.folder(FOLDER_B).devicesWith('a', { PEER: 2 }), ['P4']);
  });

  test('clearRemote works in batches over many entries', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    const many = Array.from({ length: 12_050 }, (_, i) => remote(`f${i}`));
    await index.putRemote('P1', many);
    await index.putRemote('P2', many.slice(0, 10));
    await index.clearRemote('P1');
    assert.equal(index.remoteVersion('P1', 'f12049'), undefined);
    assert.equal(index.remoteVersion('P1', 'f0'), undefined);
    assert.deepEqual(index.devicesWith('f5', { PEER: 1 }), ['P2']);
  });

  test('index ID: made once, kept across reopen; peer index IDs and sequences', async (t) => {
    const dir = `${await tempDir(t)}/index`;
    const store = new IndexStore({ path: dir });
    await store.open();
    const id = store.folder(FOLDER_A).indexId();
    assert.equal(id.length, INDEX_ID_BYTES);
    assert.equal(INDEX_ID_BYTES, LIMITS.indexIdBytes);
    assert.deepEqual(store.folder(FOLDER_A).indexId(), id);
    assert.notDeepEqual(store.folder(FOLDER_B).indexId(), id);
    const index = store.folder(FOLDER_A);
    assert.equal(index.peerIndexId('P1'), undefined);
    await index.setPeerSequence('P1', 7, Buffer.alloc(8, 1));
    await index.setPeerSequence('P1', 9);
    assert.equal(index.peerSequence('P1'), 9);
    assert.deepEqual(index.peerIndexId('P1'), Buffer.alloc(8, 1));
    await index.putLocal([file('x')]);
    await store.close();

    const again = new IndexStore({ path: dir });
    await again.open();
    t.after(() => again.close());
    assert.deepEqual(again.folder(FOLDER_A).indexId(), id);
    assert.equal(again.folder(FOLDER_A).peerSequence('P1'), 9);
    await again.removeFolder(FOLDER_A);
    assert.notDeepEqual(again.folder(FOLDER_A).indexId(), id, 'a removed folder starts a new index');
  });

  test('needed: global differs and local not newer, in path order or reversed; counts agree', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putLocal([
      file('same'),
      file('older', { version: { DEV1: 1 } }),
      file('newer', { version: { DEV1: 1, PEER: 1 } }),
      file('lost', { version: { DEV1: 2 }, mtimeMs: 1 }),
    ]);
    await index.putGlobal([
      remote('older', { version: { DEV1: 1, PEER: 1 } }),
      remote('newer', { version: { PEER: 1 } }),
      remote('lost', { version: { DEV1: 1, PEER: 1 }, mtimeMs: 5 }),
      remote('fresh'),
      remote('d', { type: 'dir', size: 0, blocks: [] }),
      remote('d/x'),
      remote('gone-never-had', { deleted: true, blocks: [], size: 0 }),
    ]);
    assert.deepEqual(paths([...index.needed()].map((n) => n.global)), ['d', 'd/x', 'fresh', 'lost', 'older']);
    assert.deepEqual(paths([...index.needed({ reverse: true })].map((n) => n.global)), ['older', 'lost', 'fresh', 'd/x', 'd']);
    const lost = [...index.needed()].find((n) => n.global.path === 'lost');
    assert.deepEqual(lost?.local?.version, { DEV1: 2 });
    assert.deepEqual(index.counts(), recount(index));
    assert.equal(index.counts().needFiles, 4, 'a conflict the global side won counts as needed');
  });

  test('a concurrent local record becomes global only when it wins the conflict', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putGlobal([remote('p', { version: { PEER: 1 }, mtimeMs: 100 })]);
    await index.putLocal([file('p', { version: { DEV1: 1 }, mtimeMs: 50 })]);
    assert.deepEqual(index.getGlobal('p')?.version, { PEER: 1 });
    await index.putLocal([file('p', { version: { DEV1: 2 }, mtimeMs: 200 })]);
    assert.deepEqual(index.getGlobal('p')?.version, { DEV1: 2 });
  });
});

describe('conflictWinner', () => {
  const r = (fields: Partial<FileRecord>): FileRecord => remote('x', fields);
  test('live beats deleted, then newer mtime, then larger modifiedBy, then larger version', () => {
    const live = r({ mtimeMs: 1 });
    const dead = r({ mtimeMs: 9, deleted: true, blocks: [], size: 0 });
    assert.equal(conflictWinner(live, dead), live);
    assert.equal(conflictWinner(dead, live), live);
    const old = r({ mtimeMs: 1, modifiedBy: 'ZZZ' });
    const young = r({ mtimeMs: 2, modifiedBy: 'AAA' });
    assert.equal(conflictWinner(old, young), young);
    const a = r({ modifiedBy: 'AAA' });
    const b = r({ modifiedBy: 'BBB' });
    assert.equal(conflictWinner(a, b), b);
    assert.equal(conflictWinner(b, a), b);
    const v1 = r({ version: { A: 1, B: 2 } });
    const v2 = r({ version: { A: 2, B: 1 } });
    assert.equal(conflictWinner(v1, v2), conflictWinner(v2, v1));
  });

  test('supersedes: newer always, concurrent by the winner rule, never older or equal', () => {
    const base = r({ version: { A: 1 } });
    assert.equal(supersedes(r({ version: { A: 2 } }), base), true);
    assert.equal(supersedes(r({ version: { A: 1 } }), base), false);
    assert.equal(supersedes(base, r({ version: { A: 2 } })), false);
    assert.equal(supersedes(r({ version: { B: 1 }, mtimeMs: 2e12 }), base), true);
    assert.equal(supersedes(r({ version: { B: 1 }, mtimeMs: 1 }), base), false);
    assert.equal(supersedes(base, undefined), true);
    void hash;
  });
});

describe('offerGlobal', () => {
  test('takes newer and winning concurrent records, leaves the rest', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putLocal([file('a', { version: { DEV1: 1 }, mtimeMs: 10 }), file('b', { version: { DEV1: 1 }, mtimeMs: 10 })]);
    const taken = await index.offerGlobal([
      remote('a', { version: { DEV1: 1, PEER: 1 } }),
      remote('b', { version: { PEER: 1 }, mtimeMs: 5 }),
      remote('c', { version: { PEER: 1 } }),
      remote('a', { version: { DEV1: 1 } }),
    ]);
    assert.deepEqual(paths(taken), ['a', 'c']);
    assert.deepEqual(index.getGlobal('a')?.version, { DEV1: 1, PEER: 1 });
    assert.deepEqual(index.getGlobal('b')?.version, { DEV1: 1 }, 'an older concurrent record loses to the local one');
    assert.deepEqual(index.counts(), recount(index));
  });
});
