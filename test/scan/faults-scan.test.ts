// Faults under the scanner's reads (a FaultPlan's FileReads under the walk and the deletion pass, and a
// hash pool that fails or races chosen files): readdir, lstat, readlink or open-for-read failing with EIO
// or EACCES, a listing that breaks part way, a file vanishing between readdir and lstat, a file shrinking
// while it is hashed. The scan skips and reports the path, never records it deleted, never stops; the
// next scan picks it up.

import assert from 'node:assert/strict';
import { mkdir, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ioError } from '../../src/errors.js';
import { HashPool } from '../../src/scan/hash-pool.js';
import { hashFile } from '../../src/scan/hasher.js';
import { Scanner } from '../../src/scan/scanner.js';
import { errnoError, FaultPlan } from '../helpers/fault-io.js';
import { NODE_FILE_READS, type FileReads } from '../../src/util/file-io.js';
import { makeTempDir, MemoryFolderIndex, runCleanups } from './helpers.js';

const DEVICE = 'DEVFAULTS';
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

interface Setup {
  root: string;
  index: MemoryFolderIndex;
  plan: FaultPlan;
  scanner: Scanner;
  unreadable: Array<{ path: string; reason: string }>;
}

/** A folder with `sub/` (five files), a symlink and a top-level file, scanned once without faults. */
async function setup(hashPool: Pick<HashPool, 'hash' | 'size'> = pool): Promise<Setup> {
  const root = await makeTempDir(cleanups, 'ferry-scan-faults-');
  await mkdir(join(root, 'sub'));
  for (let n = 0; n < 5; n++) await writeFile(join(root, 'sub', `${n}.txt`), `file ${n}\n`);
  await writeFile(join(root, 'top.txt'), 'top\n');
  await symlink('top.txt', join(root, 'link'));
  const index = new MemoryFolderIndex();
  const plan = new FaultPlan();
  const unreadable: Array<{ path: string; reason: string }> = [];
  const scanner = new Scanner({
    root,
    index,
    deviceShortId: DEVICE,
    pool: hashPool as HashPool,
    reads: plan.reads,
    onUnreadable: (path, reason) => unreadable.push({ path, reason }),
  });
  const first = await scanner.scan();
  assert.equal(first.errors, 0);
  assert.equal(index.getLocal('sub/4.txt')?.size, 'file 4\n'.length);
  return { root, index, plan, scanner, unreadable };
}

/** Paths the index holds as deleted. */
function tombstones(index: MemoryFolderIndex): string[] {
  return [...index.localRecords()].filter((record) => record.deleted).map((record) => record.path);
}

describe('faults under the scanner', () => {
  for (const kind of ['EIO', 'EACCES'] as const) {
    test(`${kind} listing a directory: its files are not made deletions, the directory is reported, the next scan picks up an edit`, async () => {
      const { root, index, plan, scanner, unreadable } = await setup();
      plan.inject({ op: 'opendir', kind, path: /\/sub$/ });
      await writeFile(join(root, 'sub/2.txt'), 'edited while unreadable\n');
      const result = await scanner.scan();
      assert.ok(plan.count('opendir') >= 1);
      assert.deepEqual(tombstones(index), [], 'nothing under an unreadable directory is deleted');
      assert.equal(result.deleted, 0);
      assert.equal(result.errors, 1);
      assert.deepEqual(unreadable.map((u) => u.path), ['sub']);
      assert.match(unreadable[0]!.reason, new RegExp(kind));

      plan.clear();
      const next = await scanner.scan();
      assert.equal(next.errors, 0);
      assert.equal(index.getLocal('sub/2.txt')?.size, 'edited while unreadable\n'.length);
      assert.deepEqual(tombstones(index), []);
    });
  }

  test('EIO part way through a listing: the names not listed are not made deletions, reported, picked up next time', async () => {
    const { root, index, plan, scanner, unreadable } = await setup();
    plan.inject({ op: 'opendir', kind: 'EIO', path: /\/sub$/, afterEntries: 2 });
    const result = await scanner.scan();
    assert.deepEqual(tombstones(index), []);
    assert.equal(result.deleted, 0);
    assert.deepEqual(unreadable.map((u) => u.path), ['sub']);
    plan.clear();
    await writeFile(join(root, 'sub/0.txt'), 'edited after\n');
    await scanner.scan();
    assert.equal(index.getLocal('sub/0.txt')?.size, 'edited after\n'.length);
  });

  for (const kind of ['EIO', 'EACCES'] as const) {
    test(`${kind} at lstat of a file (walk and deletion pass): not deleted, reported, the next scan records its edit`, async () => {
      const { root, index, plan, scanner, unreadable } = await setup();
      plan.inject({ op: 'lstat', kind, path: /\/sub\/3\.txt$/ });
      await writeFile(join(root, 'sub/3.txt'), 'edited while unreadable\n');
      const result = await scanner.scan();
      assert.ok(plan.count('lstat') >= 2, 'the deletion pass looked again');
      assert.deepEqual(tombstones(index), []);
      assert.equal(result.errors, 1);
      assert.deepEqual(unreadable.map((u) => u.path), ['sub/3.txt']);
      assert.equal(index.getLocal('sub/3.txt')?.size, 'file 3\n'.length, 'the old record stands meanwhile');

      plan.clear();
      await scanner.scan();
      assert.equal(index.getLocal('sub/3.txt')?.size, 'edited while unreadable\n'.length);
    });
  }

  test('EIO at lstat of a directory: nothing under it is deleted', async () => {
    const { index, plan, scanner, unreadable } = await setup();
    plan.inject({ op: 'lstat', kind: 'EIO', path: /\/sub$/ });
    const result = await scanner.scan();
    assert.deepEqual(tombstones(index), []);
    assert.equal(result.deleted, 0);
    assert.deepEqual(unreadable.map((u) => u.path), ['sub']);
  });

  test('EIO at readlink of a symlink: not deleted, reported, the next scan records its new target', async () => {
    const { root, index, plan, scanner, unreadable } = await setup();
    plan.inject({ op: 'readlink', kind: 'EIO', path: /\/link$/ });
    await writeFile(join(root, 'other.txt'), 'other\n');
    await rm(join(root, 'link'));
    await symlink('other.txt', join(root, 'link'));
    await scanner.scan();
    assert.deepEqual(tombstones(index), []);
    assert.deepEqual(unreadable.map((u) => u.path), ['link']);
    assert.equal(index.getLocal('link')?.linkTarget, 'top.txt');
    plan.clear();
    await scanner.scan();
    assert.equal(index.getLocal('link')?.linkTarget, 'other.txt');
  });

  test('a file vanishing between readdir and lstat, there again for the deletion pass: no deletion, no error', async () => {
    const { root, index, plan, scanner, unreadable } = await setup();
    plan.inject({ op: 'lstat', kind: 'ENOENT', path: /\/top\.txt$/, nth: 1 });
    await writeFile(join(root, 'top.txt'), 'rewritten\n');
    const result = await scanner.scan();
    assert.equal(plan.count('lstat'), 1);
    assert.deepEqual(tombstones(index), []);
    assert.equal(result.errors, 0);
    assert.deepEqual(unreadable, []);
    await scanner.scan();
    assert.equal(index.getLocal('top.txt')?.size, 'rewritten\n'.length);
  });

  for (const kind of ['EIO', 'EACCES'] as const) {
    test(`${kind} opening a changed file to hash it: not deleted, reported, the next scan records it`, async () => {
      let failing = false;
      const failingPool = {
        size: 1,
        async hash(absPath: string, blockSize: number, signal?: AbortSignal, expected?: number) {
          if (failing && absPath.endsWith('/sub/1.txt')) throw ioError(`opening ${absPath}`, errnoError(kind, 'open', absPath));
          return pool.hash(absPath, blockSize, signal, expected);
        },
      };
      const { root, index, scanner, unreadable } = await setup(failingPool);
      failing = true;
      await writeFile(join(root, 'sub/1.txt'), 'edited, unreadable\n');
      const result = await scanner.scan();
      assert.deepEqual(tombstones(index), []);
      assert.equal(result.errors, 1);
      assert.deepEqual(unreadable.map((u) => u.path), ['sub/1.txt']);
      assert.match(unreadable[0]!.reason, new RegExp(kind));
      failing = false;
      await scanner.scan();
      assert.equal(index.getLocal('sub/1.txt')?.size, 'edited, unreadable\n'.length);
    });
  }

  test('a file shrinking while it is hashed: never recorded with bytes it no longer has, not deleted', async () => {
    const big = 8 * 1024 * 1024;
    let shrink = true;
    const racingPool = {
      size: 1,
      async hash(absPath: string, blockSize: number) {
        const hashing = hashFile(absPath, blockSize);
        if (shrink && absPath.endsWith('/big.bin')) {
          shrink = false;
          await truncate(absPath, big / 2); // lands before, during or after the reads: the record must match the disk
        }
        return hashing;
      },
    };
    const { root, index, scanner } = await setup(racingPool);
    await writeFile(join(root, 'big.bin'), Buffer.alloc(big, 7));
    const result = await scanner.scan();
    assert.deepEqual(tombstones(index), []);
    const record = index.getLocal('big.bin');
    // Recorded as it now is (hashed again), or left for the next scan (busy): never as 8 MiB.
    assert.ok(record === undefined ? result.busy === 1 : record.size === big / 2, JSON.stringify({ size: record?.size, result }));
    await scanner.scan();
    assert.equal(index.getLocal('big.bin')?.size, big / 2);
    const expected = await hashFile(join(root, 'big.bin'), index.getLocal('big.bin')!.blockSize);
    assert.deepEqual(index.getLocal('big.bin')!.blocks, expected.blocks);
  });

  for (const [what, unplug] of [
    ['gone', async (root: string) => rename(root, `${root}-unplugged`)],
    ['an empty directory', async (root: string) => {
      await rename(root, `${root}-unplugged`);
      await mkdir(root);
    }],
  ] as const) {
    test(`the volume unmounted during the walk (the root ${what} now): the scan fails with "folder ${what === 'gone' ? 'path' : 'marker'} missing", no deletion recorded`, async () => {
      const root = await makeTempDir(cleanups, 'ferry-scan-volume-');
      cleanups.push(() => rm(`${root}-unplugged`, { recursive: true, force: true }));
      await mkdir(join(root, '.ferry'));
      for (const dir of ['a', 'b']) {
        await mkdir(join(root, dir));
        for (let n = 0; n < 3; n++) await writeFile(join(root, dir, `${n}.txt`), `${dir} ${n}\n`);
      }
      let armed = false;
      const reads: FileReads = {
        ...NODE_FILE_READS,
        async opendir(path, options) {
          // The first directory below the root is listed through its descriptor; the volume goes before the next.
          const listing = await NODE_FILE_READS.opendir(path, options);
          if (armed) {
            armed = false;
            await unplug(root);
          }
          return listing;
        },
      };
      const index = new MemoryFolderIndex();
      const scanner = new Scanner({ root, index, deviceShortId: DEVICE, pool, reads, requireMarker: true });
      await scanner.scan();
      assert.equal(index.getLocal('b/2.txt')?.size, 'b 2\n'.length);
      armed = true;
      await assert.rejects(scanner.scan(), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'FOLDER_NOT_FOUND');
        assert.match(err.message, what === 'gone' ? /folder path missing/ : /folder marker missing/);
        return true;
      });
      assert.deepEqual(tombstones(index), [], 'nothing recorded deleted');
    });
  }
});
