// Tests for Scanner, run against both the in-memory fake index and the real LMDB IndexStore.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { HashPool } from '../../src/scan/hash-pool.js';
import { hashFile } from '../../src/scan/hasher.js';
import { Scanner, type ScannerOptions } from '../../src/scan/scanner.js';
import { IndexStore } from '../../src/index/store.js';
import type { FolderIndex } from '../../src/index/types.js';
import type { FileRecord } from '../../src/index/records.js';
import { makeTempDir, MemoryFolderIndex, runCleanups } from './helpers.js';

const DEVICE = 'DEVAAAA';
const cleanups: Array<() => Promise<void>> = [];
let pool: HashPool;

before(async () => {
  pool = new HashPool({ workers: 2 });
  await pool.open();
});
after(async () => {
  await pool.close();
  await runCleanups(cleanups);
});

type IndexFactory = () => Promise<FolderIndex>;

const factories: Array<[string, IndexFactory]> = [
  ['in-memory fake index', async () => new MemoryFolderIndex()],
  [
    'LMDB IndexStore',
    async () => {
      const store = new IndexStore({ path: await makeTempDir(cleanups, 'ferry-scan-index-') });
      await store.open();
      cleanups.push(() => store.close());
      return store.folder('ab'.repeat(20));
    },
  ],
];

async function setup(makeIndex: IndexFactory, options: Partial<ScannerOptions> = {}) {
  const root = await makeTempDir(cleanups);
  const index = await makeIndex();
  const scanner = new Scanner({ root, index, deviceShortId: DEVICE, pool, ...options });
  return { root, index, scanner };
}

function live(index: FolderIndex): Map<string, FileRecord> {
  return new Map([...index.localRecords()].filter((r) => !r.deleted).map((r) => [r.path, r]));
}

for (const [name, makeIndex] of factories) {
  describe(`Scanner with ${name}`, () => {
    test('first scan indexes everything with hashes and a first version', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await mkdir(join(root, 'docs/sub'), { recursive: true });
      const big = randomBytes(300_000);
      await writeFile(join(root, 'docs/big.bin'), big);
      await writeFile(join(root, 'docs/sub/note.txt'), 'hello');
      await writeFile(join(root, 'empty'), '');
      await symlink('docs/sub', join(root, 'link'));
      await chmod(join(root, 'docs/sub/note.txt'), 0o600);

      const result = await scanner.scan();
      assert.deepEqual(result, { scanned: 6, changed: 6, deleted: 0, hashedBytes: 300_005, errors: 0, busy: 0 });
      const records = live(index);
      assert.deepEqual([...records.keys()].sort(), ['docs', 'docs/big.bin', 'docs/sub', 'docs/sub/note.txt', 'empty', 'link']);
      const bigRecord = records.get('docs/big.bin')!;
      const expected = await hashFile(join(root, 'docs/big.bin'), bigRecord.blockSize);
      assert.deepEqual(bigRecord.blocks.map((b) => Buffer.from(b).toString('hex')), expected.blocks.map((b) => b.toString('hex')));
      assert.equal(bigRecord.blocks.length, 3);
      assert.equal(bigRecord.size, 300_000);
      assert.deepEqual(bigRecord.version, { [DEVICE]: 1 });
      assert.equal(bigRecord.modifiedBy, DEVICE);
      assert.equal(bigRecord.deleted, false);
      assert.equal(records.get('docs/sub/note.txt')!.mode, 0o600);
      assert.equal(records.get('link')!.type, 'symlink');
      assert.equal(records.get('link')!.linkTarget, 'docs/sub');
      assert.deepEqual(records.get('empty')!.blocks, []);
      assert.equal(records.get('docs')!.type, 'dir');
    });

    test('a rescan without changes writes nothing', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await mkdir(join(root, 'a'));
      await writeFile(join(root, 'a/f'), 'data');
      await symlink('a', join(root, 'l'));
      await scanner.scan();
      const sequence = index.localSequence();
      const result = await scanner.scan();
      assert.deepEqual(result, { scanned: 3, changed: 0, deleted: 0, hashedBytes: 0, errors: 0, busy: 0 });
      assert.equal(index.localSequence(), sequence);
    });

    test('modify, create and delete: versions bumped, tombstones written once', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await mkdir(join(root, 'dir/inner'), { recursive: true });
      await writeFile(join(root, 'keep'), 'same');
      await writeFile(join(root, 'change'), 'old content');
      await writeFile(join(root, 'gone'), 'bye');
      await writeFile(join(root, 'dir/inner/x'), 'x');
      await scanner.scan();

      await writeFile(join(root, 'change'), 'new content, longer');
      await utimes(join(root, 'change'), new Date(), new Date(Date.now() + 5000));
      await writeFile(join(root, 'fresh'), 'new');
      await rm(join(root, 'gone'));
      await rm(join(root, 'dir'), { recursive: true });
      const result = await scanner.scan();
      assert.equal(result.changed, 2);
      assert.equal(result.deleted, 4);

      const changed = index.getLocal('change')!;
      assert.deepEqual(changed.version, { [DEVICE]: 2 });
      assert.equal(changed.size, 'new content, longer'.length);
      assert.deepEqual(index.getLocal('fresh')!.version, { [DEVICE]: 1 });
      assert.deepEqual(index.getLocal('keep')!.version, { [DEVICE]: 1 });
      for (const path of ['gone', 'dir', 'dir/inner', 'dir/inner/x']) {
        const tombstone = index.getLocal(path)!;
        assert.equal(tombstone.deleted, true, path);
        assert.deepEqual(tombstone.version, { [DEVICE]: 2 }, path);
        assert.deepEqual(tombstone.blocks, []);
        assert.equal(tombstone.size, 0);
        assert.equal(tombstone.modifiedBy, DEVICE);
      }

      const sequence = index.localSequence();
      assert.deepEqual(await scanner.scan(), { scanned: 3, changed: 0, deleted: 0, hashedBytes: 0, errors: 0, busy: 0 });
      assert.equal(index.localSequence(), sequence);

      // A deleted path that comes back continues its version vector.
      await writeFile(join(root, 'gone'), 'back');
      await scanner.scan();
      assert.deepEqual(index.getLocal('gone')!.version, { [DEVICE]: 3 });
      assert.equal(index.getLocal('gone')!.deleted, false);
    });

    test('ignored files are not indexed, and ignoring an indexed file leaves its record alone', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await mkdir(join(root, '@eaDir'));
      await writeFile(join(root, '@eaDir/thumb.jpg'), 'x');
      await mkdir(join(root, '.ferry'));
      await writeFile(join(root, '.ferry/state'), 'x');
      await writeFile(join(root, '.ferry-tmp-abc'), 'x');
      await writeFile(join(root, 'a.log'), 'log');
      await writeFile(join(root, 'b.txt'), 'text');
      await scanner.scan();
      assert.deepEqual([...live(index).keys()].sort(), ['a.log', 'b.txt']);
      const logRecord = index.getLocal('a.log')!;

      // The rules are read again on each scan (no fixed rules given).
      await writeFile(join(root, '.ferryignore'), '*.log\n');
      await rm(join(root, 'a.log'));
      await writeFile(join(root, 'c.log'), 'x');
      const result = await scanner.scan();
      assert.equal(result.deleted, 0);
      assert.deepEqual([...live(index).keys()].sort(), ['.ferryignore', 'a.log', 'b.txt']);
      assert.deepEqual(index.getLocal('a.log'), logRecord);
    });

    test('a subtree scan touches only that subtree', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await mkdir(join(root, 'a'));
      await mkdir(join(root, 'ab'));
      await writeFile(join(root, 'a/1'), '1');
      await writeFile(join(root, 'ab/2'), '2');
      await scanner.scan();
      await rm(join(root, 'ab/2'));
      await rm(join(root, 'a/1'));
      await writeFile(join(root, 'a/3'), '3');
      const result = await scanner.scan({ under: 'a' });
      assert.equal(result.changed, 1);
      assert.equal(result.deleted, 1);
      assert.equal(index.getLocal('a/1')!.deleted, true);
      assert.equal(index.getLocal('ab/2')!.deleted, false, 'outside the subtree');
      // A deleted file given as the subtree becomes a tombstone.
      assert.equal((await scanner.scan({ under: 'ab/2' })).deleted, 1);
      assert.equal(index.getLocal('ab/2')!.deleted, true);
    });

    test('several subtrees in one run: changes and deletions in each, one transaction, nothing elsewhere', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      for (const dir of ['a/x', 'b', 'c']) await mkdir(join(root, dir), { recursive: true });
      for (const file of ['a/x/1', 'a/x/2', 'a/y', 'b/1', 'b/2', 'c/1']) await writeFile(join(root, file), file);
      await scanner.scan();
      const sequence = [...index.localRecords()].reduce((max, r) => Math.max(max, r.sequence), 0);
      await writeFile(join(root, 'a/x/1'), 'changed');
      await rm(join(root, 'b/2'));
      await writeFile(join(root, 'a/y'), 'changed, outside the subtrees');
      await rm(join(root, 'c/1'));
      const calls = index instanceof MemoryFolderIndex ? index.putLocalCalls : 0;
      const result = await scanner.scan({ subtrees: ['a/x', 'b/2'] });
      if (index instanceof MemoryFolderIndex) assert.equal(index.putLocalCalls - calls, 1, 'one transaction');
      assert.deepEqual({ ...result, hashedBytes: 0 }, { scanned: 3, changed: 1, deleted: 1, hashedBytes: 0, errors: 0, busy: 0 });
      assert.equal(index.getLocal('a/x/1')!.size, 'changed'.length);
      assert.equal(index.getLocal('b/2')!.deleted, true);
      assert.equal(index.getLocal('a/y')!.size, 'a/y'.length, 'outside the subtrees');
      assert.equal(index.getLocal('c/1')!.deleted, false, 'outside the subtrees');
      const written = [...index.localRecords()].filter((r) => r.sequence > sequence);
      assert.deepEqual(written.map((r) => r.path).sort(), ['a/x/1', 'b/2']);
    });

    test('type changes, and entries reached through a directory replaced by a symlink', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await mkdir(join(root, 'elsewhere'));
      await writeFile(join(root, 'elsewhere/f'), 'elsewhere');
      await mkdir(join(root, 'a'));
      await writeFile(join(root, 'a/f'), 'inside');
      await writeFile(join(root, 'thing'), 'file first');
      await scanner.scan();

      await rm(join(root, 'a'), { recursive: true });
      await symlink('elsewhere', join(root, 'a'));
      await rm(join(root, 'thing'));
      await mkdir(join(root, 'thing'));
      await scanner.scan();
      assert.equal(index.getLocal('a')!.type, 'symlink');
      assert.deepEqual(index.getLocal('a')!.version, { [DEVICE]: 2 });
      assert.equal(index.getLocal('a/f')!.deleted, true, 'a/f now exists only through the symlink');
      assert.equal(index.getLocal('thing')!.type, 'dir');
      assert.deepEqual(index.getLocal('thing')!.version, { [DEVICE]: 2 });
    });

    test('NFD names are indexed as NFC and are not mistaken for deletions', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await mkdir(join(root, 'Cafe\u0301'));
      await writeFile(join(root, 'Cafe\u0301/Cre\u0300me.txt'), 'x');
      await scanner.scan();
      assert.deepEqual([...live(index).keys()].sort(), ['Caf\u00e9', 'Caf\u00e9/Cr\u00e8me.txt']);
      const result = await scanner.scan();
      assert.equal(result.changed + result.deleted, 0);
      assert.equal((await scanner.scan({ under: 'Caf\u00e9' })).deleted, 0);
    });

    test('a file moved in place with the same content and mtime keeps its version', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await writeFile(join(root, 'f'), 'content');
      await scanner.scan();
      const before = index.getLocal('f')!;
      await copyFile(join(root, 'f'), join(root, 'copy'));
      execFileSync('touch', ['-r', join(root, 'f'), join(root, 'copy')]); // nanosecond-exact mtime
      await rename(join(root, 'copy'), join(root, 'f'));
      const result = await scanner.scan();
      assert.equal(result.changed, 0);
      const after = index.getLocal('f')!;
      assert.notEqual(after.inode, before.inode, 'inode refreshed, so the next scan skips it');
      assert.deepEqual(after.version, before.version);
      assert.equal((await scanner.scan()).hashedBytes, 0);
    });

    test('concurrent scans are serialised; a covered request joins the waiting one', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await mkdir(join(root, 'a'));
      for (let i = 0; i < 20; i++) await writeFile(join(root, `a/${i}`), randomBytes(50_000));
      const full = scanner.scan();
      const joined = scanner.scan({ under: 'a' });
      assert.equal(joined, full);
      await writeFile(join(root, 'b'), 'b');
      const [first, second] = await Promise.all([full, scanner.scan({ under: 'b' })]);
      assert.equal(first.changed, 22);
      assert.equal(second.changed, 0, 'b was already recorded by the first scan, which ran to the end first');
      assert.equal(live(index).size, 22);
    });

    test('a missing folder fails the scan instead of deleting everything', async () => {
      const { root, index, scanner } = await setup(makeIndex);
      await writeFile(join(root, 'f'), 'x');
      await scanner.scan();
      await rm(root, { recursive: true });
      await assert.rejects(scanner.scan(), { code: 'FOLDER_NOT_FOUND' });
      assert.equal(index.getLocal('f')!.deleted, false);
    });

    test('progress is reported while hashing; an aborted scan rejects with ABORTED', async () => {
      const progress: number[] = [];
      const { root, scanner } = await setup(makeIndex, { onProgress: (p) => progress.push(p.hashedBytes) });
      await writeFile(join(root, 'one'), randomBytes(1000));
      await writeFile(join(root, 'two'), randomBytes(2000));
      await scanner.scan();
      assert.deepEqual([...progress].sort((a, b) => a - b).at(-1), 3000);
      await assert.rejects(scanner.scan({ signal: AbortSignal.abort() }), { code: 'ABORTED' });
    });
  });
}

describe('Scanner with a file that changes while it is hashed', () => {
  function flakyPool(changedTimes: number): { pool: HashPool; calls: () => number } {
    let calls = 0;
    const stub = {
      size: 1,
      async hash(absPath: string, blockSize: number) {
        const result = await hashFile(absPath, blockSize);
        return { ...result, changedDuringHash: ++calls <= changedTimes };
      },
    };
    return { pool: stub as unknown as HashPool, calls: () => calls };
  }

  test('is hashed again and recorded once it holds still', async () => {
    const root = await makeTempDir(cleanups);
    const index = new MemoryFolderIndex();
    const flaky = flakyPool(1);
    await writeFile(join(root, 'f'), 'moving');
    const result = await new Scanner({ root, index, deviceShortId: DEVICE, pool: flaky.pool }).scan();
    assert.equal(flaky.calls(), 2);
    assert.equal(result.changed, 1);
    assert.equal(result.busy, 0);
    assert.equal(index.getLocal('f')!.size, 6);
  });

  test('is left unrecorded and counted as busy when it never holds still', async () => {
    const root = await makeTempDir(cleanups);
    const index = new MemoryFolderIndex();
    await writeFile(join(root, 'f'), 'moving');
    const result = await new Scanner({ root, index, deviceShortId: DEVICE, pool: flakyPool(Infinity).pool }).scan();
    assert.equal(result.busy, 1);
    assert.equal(result.changed, 0);
    assert.equal(index.getLocal('f'), undefined);
  });
});
