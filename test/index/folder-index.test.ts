// FolderIndex: sequences, path-prefix ranges, block map, global selection, peer sequences, record round-trip.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors.js';
import type { FileRecord } from '../../src/index/records.js';
import { FOLDER_A, FOLDER_B, file, hash, paths, recount, tempStore } from './helpers/store.js';

describe('FolderIndex', () => {
  test('putLocal assigns increasing sequences and localSince follows the change log', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    assert.equal(index.localSequence(), 0);
    const first = await index.putLocal([file('a'), file('b'), file('c')]);
    assert.deepEqual(first.map((r) => r.sequence), [1, 2, 3]);
    assert.equal(index.localSequence(), 3);

    const [rewritten] = await index.putLocal([file('a', { version: { DEV1: 2 }, size: 11 })]);
    assert.equal(rewritten!.sequence, 4);
    assert.equal(index.getLocal('a')?.sequence, 4);
    assert.deepEqual(paths(index.localSince(0)), ['b', 'c', 'a']);
    assert.deepEqual(paths(index.localSince(2)), ['c', 'a']);
    assert.deepEqual(paths(index.localSince(4)), []);
    assert.deepEqual([...index.localSince(0)].map((r) => r.sequence), [2, 3, 4]);

    // Sequences are per folder.
    const [other] = await store.folder(FOLDER_B).putLocal([file('a')]);
    assert.equal(other!.sequence, 1);
  });

  test('the same path twice in one batch keeps the last record and one log entry', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putLocal([file('x', { blocks: [hash(1)] }), file('x', { blocks: [hash(2)], version: { DEV1: 2 } })]);
    assert.deepEqual([...index.localSince(0)].map((r) => [r.path, r.sequence]), [['x', 2]]);
    assert.equal(index.findBlock(hash(1), 'x'), undefined);
    assert.deepEqual(index.findBlock(hash(2), 'x'), { path: 'x', index: 0 });
    assert.equal(index.counts().localFiles, 1);
  });

  test('under: a directory and everything beneath it, in path order, never its siblings', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    const names = ['a', 'a/b', 'a/b c', 'a/b.txt', 'a/b/x', 'a/b/y/z', 'a/b0', 'a/bc', 'a/b\u00e9', 'a/b/\u{1f600}', 'b'];
    await index.putLocal(names.map((n) => file(n)));
    await index.putGlobal(names.map((n) => ({ ...file(n), sequence: 1 })));
    const expected = ['a/b', 'a/b/x', 'a/b/y/z', 'a/b/\u{1f600}'];
    assert.deepEqual(paths(index.localRecords({ under: 'a/b' })), expected);
    assert.deepEqual(paths(index.localRecords({ under: 'a/b/' })), expected);
    assert.deepEqual(paths(index.globalRecords({ under: 'a/b' })), expected);
    assert.deepEqual(paths(index.localRecords({ under: 'a/b/y' })), ['a/b/y/z']);
    assert.deepEqual(paths(index.localRecords({ under: 'nothing' })), []);
    assert.deepEqual(paths(index.localRecords({ under: 'a/b c' })), ['a/b c']);
    assert.deepEqual(paths(index.localRecords()), [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    assert.deepEqual(paths(index.localRecords({ under: '' })).length, names.length);
  });

  test('under matches a brute-force prefix filter for arbitrary names', async (t) => {
    const { store } = await tempStore(t);
    const segment = fc.constantFrom('a', 'b', 'a b', 'a.b', 'a-b', 'ab', 'a0', '\u00e9', '\u{1f600}', 'A', 'a\u0001');
    const pathArb = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(pathArb, { maxLength: 25 }), pathArb, async (names, dir) => {
        const index = store.folder(`${FOLDER_A.slice(0, 36)}${String(round++).padStart(4, '0')}`);
        await index.putLocal(names.map((n) => file(n)));
        const expected = names
          .filter((n) => n === dir || n.startsWith(dir + '/'))
          .sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        assert.deepEqual(paths(index.localRecords({ under: dir })), expected);
      }),
      { numRuns: 60 },
    );
  });

  test('ranges stay usable while writes commit between items', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putLocal(Array.from({ length: 300 }, (_, i) => file(`f${String(i).padStart(3, '0')}`)));
    let seen = 0;
    for (const record of index.localRecords()) {
      seen++;
      if (seen % 50 === 0) await index.putLocal([file(`${record.path}-new`)]);
    }
    assert.ok(seen >= 300);
    let logged = 0;
    for (const record of index.localSince(0)) {
      logged++;
      if (logged % 100 === 0) await index.putLocal([file(record.path, { version: { DEV1: 9 } })]);
    }
    assert.equal(index.counts().localFiles, 306);
    assert.deepEqual(index.counts(), recount(index));
  });

  test('block map: findBlock follows rewrites and deletions of a path', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putLocal([file('one', { blocks: [hash(1), hash(2), hash(1)] })]);
    assert.deepEqual(index.findBlock(hash(2)), { path: 'one', index: 1 });
    assert.deepEqual(index.findBlock(hash(1)), { path: 'one', index: 0 });
    assert.equal(index.findBlock(hash(3)), undefined);

    await index.putLocal([file('one', { blocks: [hash(3)], version: { DEV1: 2 } })]);
    assert.equal(index.findBlock(hash(1)), undefined);
    assert.equal(index.findBlock(hash(2)), undefined);
    // A single-block file is found through its own path only (it has no block map entry).
    assert.equal(index.findBlock(hash(3)), undefined);
    assert.deepEqual(index.findBlock(hash(3), 'one'), { path: 'one', index: 0 });
    assert.equal(index.findBlock(hash(4), 'one'), undefined);

    await index.putLocal([file('two', { blocks: [hash(9), hash(3)] })]);
    await index.putLocal([file('one', { deleted: true, blocks: [], size: 0, version: { DEV1: 3 } })]);
    assert.deepEqual(index.findBlock(hash(3)), { path: 'two', index: 1 });
    await index.putLocal([file('two', { deleted: true, blocks: [hash(3)], version: { DEV1: 2 } })]);
    assert.equal(index.findBlock(hash(3)), undefined, 'a tombstone adds no blocks, even if it lists some');
    assert.equal(store.folder(FOLDER_B).findBlock(hash(9)), undefined);
  });

  test('global selection: local wins when newer, stays when equal, older or a lost conflict', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putLocal([file('new')]);
    assert.equal(index.getGlobal('new')?.sequence, 1, 'no global yet: the local record becomes global');

    await index.putGlobal([{ ...file('p', { version: { PEER: 2 }, modifiedBy: 'PEER', size: 99 }), sequence: 17 }]);
    await index.putLocal([file('p', { version: { PEER: 1 } })]);
    assert.deepEqual(index.getGlobal('p')?.version, { PEER: 2 }, 'older local leaves the global alone');
    assert.equal(index.getGlobal('p')?.sequence, 17);

    await index.putLocal([file('p', { version: { PEER: 1, DEV1: 1 } })]);
    assert.deepEqual(index.getGlobal('p')?.version, { PEER: 2 }, 'concurrent local leaves the global alone');

    await index.putLocal([file('p', { version: { PEER: 2 }, size: 99 })]);
    assert.equal(index.getGlobal('p')?.sequence, 17, 'an equal local version leaves the global record as published');

    await index.putLocal([file('p', { version: { PEER: 2, DEV1: 1 } })]);
    assert.deepEqual(index.getGlobal('p')?.version, { PEER: 2, DEV1: 1 }, 'newer local becomes global');

    // putGlobal stores what the sync layer chose, even when older.
    await index.putGlobal([{ ...file('p', { version: { PEER: 1 } }), sequence: 2 }]);
    assert.deepEqual(index.getGlobal('p')?.version, { PEER: 1 });
    assert.deepEqual(index.getLocal('p')?.version, { PEER: 2, DEV1: 1 });
  });

  test('counts: files and symlinks, not directories or tombstones; needs follow newer globals', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    await index.putLocal([
      file('f', { size: 100 }),
      file('d', { type: 'dir', size: 0, blocks: [] }),
      file('l', { type: 'symlink', size: 0, blocks: [], linkTarget: 'f' }),
      file('gone', { deleted: true, size: 0, blocks: [] }),
    ]);
    assert.deepEqual(index.counts(), { localFiles: 2, localBytes: 100, globalFiles: 2, globalBytes: 100, needFiles: 0, needBytes: 0 });
    assert.equal(index.hasNeeded(), false);
    // A needed directory is not counted among needed files, but it is needed.
    await index.putGlobal([{ ...file('onlydir', { type: 'dir', size: 0, blocks: [], version: { PEER: 1 } }), sequence: 4 }]);
    assert.equal(index.counts().needFiles, 0);
    assert.equal(index.hasNeeded(), true);
    assert.equal(store.folder(FOLDER_B).hasNeeded(), false, 'per folder');
    await index.putLocal([file('onlydir', { type: 'dir', size: 0, blocks: [], version: { PEER: 1 } })]);
    assert.equal(index.hasNeeded(), false);
    await index.putGlobal([
      { ...file('f', { size: 150, version: { DEV1: 1, PEER: 1 } }), sequence: 5 },
      { ...file('remote', { size: 7, version: { PEER: 1 } }), sequence: 6 },
      { ...file('rdir', { type: 'dir', size: 0, blocks: [], version: { PEER: 1 } }), sequence: 7 },
    ]);
    assert.deepEqual(index.counts(), { localFiles: 2, localBytes: 100, globalFiles: 3, globalBytes: 157, needFiles: 2, needBytes: 157 });
    await index.putLocal([file('f', { size: 150, version: { DEV1: 1, PEER: 1 } })]);
    assert.deepEqual(index.counts(), { localFiles: 2, localBytes: 150, globalFiles: 3, globalBytes: 157, needFiles: 1, needBytes: 7 });
    assert.equal(index.hasNeeded(), true);
  });

  test('peer sequences per folder and device', async (t) => {
    const { store } = await tempStore(t);
    assert.equal(store.folder(FOLDER_A).peerSequence('P1'), 0);
    await store.folder(FOLDER_A).setPeerSequence('P1', 12);
    await store.folder(FOLDER_A).setPeerSequence('P2', 3);
    await store.folder(FOLDER_A).setPeerSequence('P1', 14);
    assert.equal(store.folder(FOLDER_A).peerSequence('P1'), 14);
    assert.equal(store.folder(FOLDER_A).peerSequence('P2'), 3);
    assert.equal(store.folder(FOLDER_B).peerSequence('P1'), 0);
  });

  test('records round-trip exactly, with Uint8Array hashes and signatures', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
    const recordArb = fc.record({
      path: fc.string({ minLength: 1, maxLength: 40 }).filter((p) => !p.includes('\u0000')),
      type: fc.constantFrom('file' as const, 'dir' as const, 'symlink' as const),
      size: fc.maxSafeNat(),
      mode: fc.integer({ min: 0, max: 0o7777 }),
      mtimeMs: fc.oneof(fc.maxSafeNat(), fc.double({ min: 0, max: 4e12, noNaN: true })),
      inode: fc.maxSafeNat(),
      version: fc.dictionary(fc.stringMatching(/^[A-Z2-7]{7}$/), fc.integer({ min: 1, max: 2 ** 40 })),
      modifiedBy: fc.stringMatching(/^[A-Z2-7]{7}$/),
      blockSize: fc.constantFrom(131072, 16777216),
      blocks: fc.array(bytes(32), { maxLength: 5 }),
      deleted: fc.boolean(),
      linkTarget: fc.option(fc.string(), { nil: undefined }),
      signature: fc.option(bytes(64), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(recordArb, async (generated) => {
        const record = { ...generated, version: { ...generated.version } } as Omit<FileRecord, 'sequence'>;
        if (record.linkTarget === undefined) delete record.linkTarget;
        if (record.signature === undefined) delete record.signature;
        const [stored] = await index.putLocal([{ ...record, blocks: record.blocks.map((b) => Buffer.from(b)) }]);
        const expected = { ...record, sequence: stored!.sequence };
        assert.deepStrictEqual(index.getLocal(record.path), expected);
        assert.deepStrictEqual(stored, expected);
        assert.ok(index.getLocal(record.path)!.blocks.every((b) => b.constructor === Uint8Array));
      }),
      { numRuns: 150 },
    );
  });

  test('paths the index cannot hold are refused before anything is written', async (t) => {
    const { store } = await tempStore(t);
    const index = store.folder(FOLDER_A);
    for (const bad of ['', 'a\u0000b']) {
      await assert.rejects(index.putLocal([file('ok'), file(bad)]), (err) => isFerryError(err, 'PATH_UNSAFE'));
    }
    assert.deepEqual(paths(index.localRecords()), []);
    assert.equal(index.localSequence(), 0);
    // Any length is held: beyond the key limit under a digest key (test/index/long-paths.test.ts).
    const held = ['x'.repeat(1800), 'x'.repeat(1801), 'é'.repeat(1000)];
    await index.putLocal(held.map((path) => file(path)));
    assert.equal(index.counts().localFiles, 3);
    assert.deepEqual(paths(index.localRecords()).sort(), [...held].sort());
  });
});
