// The first scan's writes and the page cache (issue 26 item 5): single-block files add no block map entries (one
// random insert per file into a hash-keyed B-tree), and the change log is appended (full pages, not split in half).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { open } from 'lmdb';
import { hashKey } from '../../src/index/keys.js';
import { RenameSources } from '../../src/sync/rename-sources.js';
import { FOLDER_A, file, hash, tempStore } from './helpers/store.js';

interface DbStats {
  entryCount: number;
  treeLeafPageCount: number;
  pageSize: number;
}

/** LMDB's own figures for one named database of a closed index. */
function stats(dir: string, name: string): DbStats {
  const env = open({ path: dir, readOnly: true });
  try {
    return env.openDB({ name, keyEncoding: 'binary', encoding: 'binary' } as { name: string }).getStats() as DbStats;
  } finally {
    void env.close();
  }
}

const FILES = 20_000;
const BATCH = 500;

describe('index pages written by a first scan', () => {
  test(`${FILES} single-block files write no block map entries; files of two blocks or more write one per block`, async (t) => {
    const { store, dir } = await tempStore(t, { repack: false, backgroundRepack: false });
    const index = store.folder(FOLDER_A);
    for (let start = 0; start < FILES; start += BATCH) {
      const batch = Array.from({ length: BATCH }, (_, k) => file(`d${Math.floor((start + k) / 100)}/f${start + k}`, { blocks: [hash(start + k)], inode: start + k }));
      await index.putLocal(batch);
    }
    await index.putLocal([file('big', { size: 300_000, blocks: [hash(1_000_001), hash(1_000_002), hash(1_000_003)] })]);
    assert.deepEqual(index.findBlock(hash(1_000_002)), { path: 'big', index: 1 });
    assert.deepEqual(index.findBlock(hash(77), 'd0/f77'), { path: 'd0/f77', index: 0 });
    await store.close();
    assert.equal(stats(dir, 'blocks').entryCount, 3, 'the three blocks of the one multi-block file only');
  });

  test(`the change log fills its pages: ${FILES} sequence entries written in order, rewrites appended`, async (t) => {
    // A guard more than a fix: LMDB (as lmdb-js builds it) fills pages written in key order with or without
    // MDB_APPEND (measured: 213 against 215 leaf pages for 20,000 entries), so the change log needs no append flag.
    const { store, dir } = await tempStore(t, { repack: false, backgroundRepack: false });
    const a = store.folder(FOLDER_A);
    for (let start = 0; start < FILES; start += BATCH) {
      await a.putLocal(Array.from({ length: BATCH }, (_, k) => file(`dir${Math.floor((start + k) / 100)}/file-${start + k}.txt`)));
    }
    // Rewrites: each path's old log entry goes, its new one is the last.
    await a.putLocal([file('dir0/file-0.txt', { version: { DEV1: 2 } }), file('dir0/file-1.txt', { version: { DEV1: 2 } })]);
    const since = [...a.localSince(FILES - 1)].map((r) => [r.path, r.sequence]);
    assert.deepEqual(since, [
      ['dir199/file-19999.txt', FILES],
      ['dir0/file-0.txt', FILES + 1],
      ['dir0/file-1.txt', FILES + 2],
    ]);
    assert.equal([...a.localSince(0)].length, FILES);
    await store.close();
    const sequence = stats(dir, 'sequence');
    const entriesPerPage = sequence.entryCount / sequence.treeLeafPageCount;
    // ~44 bytes an entry (12 of key, ~22 of path, 10 of node header and pointer): ~92 fit a 4 KiB page.
    const fit = sequence.pageSize / 44;
    t.diagnostic(`sequence: ${sequence.entryCount} entries on ${sequence.treeLeafPageCount} leaf pages (${entriesPerPage.toFixed(1)} a page)`);
    assert.ok(entriesPerPage > fit * 0.85, `${entriesPerPage.toFixed(1)} entries a page (full: about ${fit.toFixed(0)})`);
  });
});

describe('schema 4 migration', () => {
  test('a schema-3 index loses the block map entries of its single-block files, in batches; others stay', async (t) => {
    const files = 12_000; // more than one migration batch (10,000 entries)
    const { store, dir } = await tempStore(t, { repack: false, backgroundRepack: false });
    const index = store.folder(FOLDER_A);
    for (let start = 0; start < files; start += 2_000) {
      await index.putLocal(Array.from({ length: 2_000 }, (_, k) => file(`d${start + k}`, { blocks: [hash(start + k)] })));
    }
    await index.putLocal([file('big', { size: 300_000, blocks: [hash(1_000_001), hash(1_000_002), hash(1_000_003)] })]);
    await store.close();

    // As schema 3 wrote it: one entry per single-block file too.
    const env = open({ path: dir, maxDbs: 32 });
    const meta = env.openDB({ name: 'meta', useRecords: false } as { name: string });
    const blocks = env.openDB({ name: 'blocks', useRecords: false } as { name: string });
    const prefix = meta.get(['folderPrefix', FOLDER_A]) as string;
    await env.transaction(() => {
      for (let i = 0; i < files; i++) blocks.putSync([prefix, hashKey(hash(i)), `d${i}`], 0);
      meta.putSync('schemaVersion', 3);
    });
    await env.close();
    assert.equal(stats(dir, 'blocks').entryCount, files + 3);

    const { IndexStore } = await import('../../src/index/store.js');
    const migrated = new IndexStore({ path: dir, repack: false, backgroundRepack: false });
    await migrated.open();
    const after = migrated.folder(FOLDER_A);
    assert.deepEqual(after.findBlock(hash(1_000_003)), { path: 'big', index: 2 });
    assert.equal(after.findBlock(hash(11_999)), undefined);
    assert.deepEqual(after.findBlock(hash(11_999), 'd11999'), { path: 'd11999', index: 0 });
    await migrated.close();
    assert.equal(stats(dir, 'blocks').entryCount, 3);
  });
});

describe('rename sources', () => {
  test('a single-block local file due for deletion is found by its block hash; others are not noted; bounded', () => {
    const sources = new RenameSources(2);
    const tombstone = (p: string) => ({ ...file(p, { deleted: true, blocks: [], size: 0, version: { DEV1: 2 } }), sequence: 9 });
    const local = (p: string, blocks: Uint8Array[]) => ({ ...file(p, { blocks }), sequence: 1 });
    sources.note({ global: tombstone('old'), local: local('old', [hash(5)]) });
    sources.note({ global: tombstone('multi'), local: local('multi', [hash(6), hash(7)]) });
    sources.note({ global: { ...file('live', { blocks: [hash(8)] }), sequence: 3 }, local: local('live', [hash(9)]) });
    sources.note({ global: tombstone('gone') });
    assert.equal(sources.find(hash(5)), 'old');
    assert.equal(sources.find(hash(6)), undefined);
    assert.equal(sources.find(hash(9)), undefined, 'a file not due for deletion');
    sources.note({ global: tombstone('second'), local: local('second', [hash(10)]) });
    sources.note({ global: tombstone('third'), local: local('third', [hash(11)]) });
    assert.equal(sources.size, 2, 'bounded');
    assert.equal(sources.find(hash(11)), undefined);
    sources.clear();
    assert.equal(sources.find(hash(5)), undefined);
    assert.ok(hashKey(hash(5)).length < 20);
  });
});
