// Hostile peer against the archive (issue 25 item 3): a restore through a directory swapped for a
// symlink, and archive names that would name a directory (`sub/x/..~stamp`).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFerryError } from '../../src/errors.js';
import { DiskPaths } from '../../src/scan/disk-path.js';
import { Archive, ARCHIVE_DIR, originalPath } from '../../src/sync/archive.js';
import { silentLogger } from '../../src/util/log.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-sec-archive-'));
  dirs.push(dir);
  return dir;
}

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
const STAMP = '20260102-030405-006';

describe('archive paths (hostile peer)', () => {
  test('restore through a parent swapped for a symlink refuses and writes nothing outside', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    const archive = new Archive(root, silentLogger, () => NOW);
    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'sub/a.txt'), 'secret-free content');
    assert.equal(await archive.keep('sub/a.txt'), `sub/a.txt~${STAMP}`);
    // The peer deletes the directory and puts a symlink to a path outside the folder in its place.
    await rm(join(root, 'sub'), { recursive: true });
    await symlink(outside, join(root, 'sub'));

    await assert.rejects(archive.restore(`sub/a.txt~${STAMP}`), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.deepEqual(await readdir(outside), [], 'nothing written outside the folder');
    assert.equal(await readFile(join(root, ARCHIVE_DIR, `sub/a.txt~${STAMP}`), 'utf8'), 'secret-free content', 'still archived');

    // Archiving through the symlink is refused too (it would move a file from outside into the folder).
    await writeFile(join(outside, 'b.txt'), 'outside');
    await assert.rejects(archive.keep('sub/b.txt'), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.equal(await readFile(join(outside, 'b.txt'), 'utf8'), 'outside');
  });

  test('a symlinked archive directory is neither listed nor restored from', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await mkdir(join(root, '.ferry'));
    await writeFile(join(outside, `x.txt~${STAMP}`), 'outside');
    await symlink(outside, join(root, ARCHIVE_DIR));
    const archive = new Archive(root, silentLogger, () => NOW);
    const listed = [];
    for await (const file of archive.list()) listed.push(file);
    assert.deepEqual(listed, []);
    await assert.rejects(archive.restore(`x.txt~${STAMP}`), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.deepEqual(await readdir(root).then((names) => names.sort()), ['.ferry']);
  });

  test('`sub/x/..~stamp` never names the directory `sub`', async () => {
    const root = await tempDir();
    const archive = new Archive(root, silentLogger, () => NOW);
    await mkdir(join(root, 'sub/x'), { recursive: true });
    await writeFile(join(root, 'sub/keep.txt'), 'stays');
    // An archived entry whose name ends in `..~stamp` (the API takes any archive path).
    await mkdir(join(root, ARCHIVE_DIR, 'sub/x'), { recursive: true });
    await writeFile(join(root, ARCHIVE_DIR, `sub/x/..~${STAMP}`), 'crafted');

    assert.equal(originalPath(`sub/x/..~${STAMP}`), undefined);
    assert.equal(originalPath(`sub/x/.~${STAMP}`), undefined);
    assert.equal(originalPath(`sub/x/a~${STAMP}`), 'sub/x/a');
    await assert.rejects(archive.restore(`sub/x/..~${STAMP}`), (err: unknown) => isFerryError(err, 'USAGE'));
    assert.ok((await lstat(join(root, 'sub'))).isDirectory(), 'sub stays in the folder');
    assert.equal(await readFile(join(root, 'sub/keep.txt'), 'utf8'), 'stays');
    const listed = [];
    for await (const file of archive.list()) listed.push(file.path);
    assert.deepEqual(listed, [], 'not listed as a restorable file');
    // Nor does keep archive a directory under any name.
    await assert.rejects(archive.keep('sub/x/..'), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    await assert.rejects(archive.keep('sub'), (err: unknown) => isFerryError(err, 'IO'));
    assert.ok((await lstat(join(root, 'sub'))).isDirectory());
  });

  test('restore still works through real directories, archiving what is there', async () => {
    const root = await tempDir();
    let now = NOW;
    const archive = new Archive(root, silentLogger, () => now);
    await mkdir(join(root, 'd'));
    await writeFile(join(root, 'd/f.txt'), 'old');
    await archive.keep('d/f.txt');
    await rm(join(root, 'd'), { recursive: true });
    now += 1000;
    assert.equal(await archive.restore(`d/f.txt~${STAMP}`), 'd/f.txt');
    assert.equal(await readFile(join(root, 'd/f.txt'), 'utf8'), 'old', 'parents created again');
    await writeFile(join(root, 'd/f.txt'), 'new');
    await rename(join(root, 'd/f.txt'), join(root, 'd/g.txt'));
    assert.equal(await archive.keep('d/g.txt'), 'd/g.txt~20260102-030406-006');
  });

  test('a move into or out of the archive checks both parents again when it happens', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'sub/a.txt'), 'inside');
    const paths = new DiskPaths(root);
    const from = await paths.resolve('sub/a.txt');
    const to = await paths.resolve(`${ARCHIVE_DIR}/sub/a.txt~${STAMP}`, { createParents: true });
    // Swapped after both were resolved (and `sub` remembered as verified).
    await rename(join(root, 'sub'), join(root, 'sub-old'));
    await symlink(outside, join(root, 'sub'));
    await writeFile(join(outside, 'a.txt'), 'outside');
    assert.throws(() => paths.renameBetween(from, to), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.equal(await readFile(join(outside, 'a.txt'), 'utf8'), 'outside', 'the file outside stays where it is');
    assert.deepEqual(await readdir(join(root, ARCHIVE_DIR, 'sub')), []);
  });
});
