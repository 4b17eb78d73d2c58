// Repack (src/index/repack.ts): after a large initial sync the receiver's index is rewritten with full pages at the
// next open, to at most 0.5 KB per file; an interrupted repack never loses either index.

import assert from 'node:assert/strict';
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { open } from 'lmdb';
import { CHURN_KEY, repackPaths, settleRepack } from '../../src/index/repack.js';
import { IndexStore } from '../../src/index/store.js';
import { silentLogger } from '../../src/util/log.js';
import { PEER, pathOf, receive } from './helpers/receiver.js';
import { FOLDER_A, file, hash, recount, tempDir } from './helpers/store.js';

const FILES = 20_000;

async function indexBytes(dir: string): Promise<number> {
  return (await stat(join(dir, 'data.mdb'))).size;
}

describe('index repack', () => {
  test(`a receiver's index of ${FILES} files is repacked at the next open to at most 0.5 KB per file, every record intact`, async (t) => {
    const dir = join(await tempDir(t), 'index');
    const store = new IndexStore({ path: dir });
    await store.open();
    await receive(store, FILES);
    const counts = store.folder(FOLDER_A).counts();
    assert.equal(counts.localFiles, FILES);
    assert.equal(counts.needFiles, 0);
    await store.close();
    const before = await indexBytes(dir);
    // As written, the path-keyed databases' pages are about half full (this is what the repack is for); since schema 4
    // (no block map entries for single-block files, the change log appended) that is already about 0.45 KB per file.
    assert.ok(before / FILES > 400, `before the repack: ${(before / FILES).toFixed(0)} bytes per file`);

    const again = new IndexStore({ path: dir, logger: silentLogger });
    await again.open();
    t.after(() => again.close());
    const after = await indexBytes(dir);
    assert.ok(after / FILES <= 512, `after the repack: ${(after / FILES).toFixed(0)} bytes per file (before ${(before / FILES).toFixed(0)})`);
    assert.ok(after < before * 0.85, `the repack fills the pages: ${(after / FILES).toFixed(0)} bytes per file (before ${(before / FILES).toFixed(0)})`);

    const index = again.folder(FOLDER_A);
    assert.deepEqual(index.counts(), recount(index));
    assert.equal(index.counts().localFiles, FILES);
    assert.equal(index.hasNeeded(), false);
    for (const i of [0, 1, 4_999, 12_345, FILES - 1]) {
      const local = index.getLocal(pathOf(i));
      assert.equal(local?.inode, 1000 + i);
      assert.deepEqual(local?.blocks, [hash(i)]);
      assert.deepEqual(index.getGlobal(pathOf(i))?.version, { [PEER]: 1 });
      assert.deepEqual(index.remoteVersion(PEER, pathOf(i)), { [PEER]: 1 });
      assert.deepEqual(index.findBlock(hash(i), pathOf(i)), { path: pathOf(i), index: 0 });
    }
    assert.equal(index.peerSequence(PEER), FILES);
    assert.equal([...index.localSince(FILES - 3)].length, 3);
    // Nothing left beside the index, and the count starts again.
    assert.deepEqual((await readdir(join(dir, '..'))).sort(), ['index']);
    await index.putLocal([file('new.txt')]);
    assert.equal(index.getLocal('new.txt')?.size, 10);
  });

  test('an index written less than it holds is not repacked', async (t) => {
    const dir = join(await tempDir(t), 'index');
    const store = new IndexStore({ path: dir });
    await store.open();
    await store.folder(FOLDER_A).putLocal(Array.from({ length: 2_000 }, (_, i) => file(pathOf(i))));
    await store.close();
    const env = open({ path: dir, maxDbs: 32 });
    const meta = env.openDB({ name: 'meta' });
    assert.equal(meta.get(CHURN_KEY), undefined, 'a small index never gets the count');
    await env.close();
    const mtime = (await stat(join(dir, 'data.mdb'))).mtimeMs;
    const again = new IndexStore({ path: dir });
    await again.open();
    await again.close();
    assert.equal((await stat(join(dir, 'data.mdb'))).mtimeMs, mtime, 'the same file: not rewritten');
  });

  test('an interrupted repack: an unfinished copy is deleted; a finished one replaces the index, also when the stop came between the renames', async (t) => {
    const base = await tempDir(t);
    const dir = join(base, 'index');
    const paths = repackPaths(dir);
    const store = new IndexStore({ path: dir });
    await store.open();
    await store.folder(FOLDER_A).putLocal([file('kept.txt')]);
    await store.close();

    // An unfinished copy (the stop came while writing it): deleted, the index as it was.
    await mkdir(paths.tmp);
    await writeFile(join(paths.tmp, 'data.mdb'), 'half');
    assert.equal(await settleRepack(dir, silentLogger), false);
    assert.deepEqual(await readdir(base), ['index']);

    // A finished copy (here: another index with another file) replaces the index; the old one goes once the new opened.
    const other = new IndexStore({ path: paths.done });
    await other.open();
    await other.folder(FOLDER_A).putLocal([file('repacked.txt')]);
    await other.close();
    const reopened = new IndexStore({ path: dir });
    await reopened.open();
    assert.equal(reopened.folder(FOLDER_A).getLocal('repacked.txt')?.path, 'repacked.txt');
    assert.equal(reopened.folder(FOLDER_A).getLocal('kept.txt'), undefined);
    await reopened.close();
    assert.deepEqual(await readdir(base), ['index']);

    // The stop came after the index moved to .old and before the copy took its name.
    await rename(dir, paths.old);
    const copy = new IndexStore({ path: paths.done });
    await copy.open();
    await copy.folder(FOLDER_A).putLocal([file('third.txt')]);
    await copy.close();
    const last = new IndexStore({ path: dir });
    await last.open();
    assert.equal(last.folder(FOLDER_A).getLocal('third.txt')?.path, 'third.txt');
    await last.close();
    assert.deepEqual(await readdir(base), ['index']);
  });
});
