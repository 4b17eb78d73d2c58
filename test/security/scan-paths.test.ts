// Hostile peer against the reading side (issue 25 item 10): a directory swapped for a symlink while
// the walker or the watcher is inside the folder must not lead either of them outside it.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFerryError } from '../../src/errors.js';
import { chmodNoFollow, DiskPaths } from '../../src/scan/disk-path.js';
import { placeTemp } from '../../src/sync/installer.js';
import { fetchIntoTemp, type FetchJob } from '../../src/sync/fetcher.js';
import { silentLogger } from '../../src/util/log.js';
import type { FileRecord } from '../../src/index/records.js';
import { walk } from '../../src/scan/walker.js';
import { FolderWatcher } from '../../src/scan/watcher.js';

const dirs: string[] = [];
const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers) await close();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-sec-scan-'));
  dirs.push(dir);
  return dir;
}

describe('walker and watcher never leave the folder (hostile peer)', () => {
  test('a directory swapped for a symlink after it was listed is not entered', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await writeFile(join(outside, 'secret.txt'), 'outside');
    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'sub/inside.txt'), 'inside');
    const seen: string[] = [];
    const errors: Error[] = [];
    for await (const entry of walk(root, { onError: (_path, err) => errors.push(err) })) {
      seen.push(entry.path);
      if (entry.path === 'sub') {
        // The walk has seen a directory and will read it next: the peer swaps it now.
        await rm(join(root, 'sub'), { recursive: true });
        await symlink(outside, join(root, 'sub'));
      }
    }
    assert.deepEqual(seen, ['sub'], 'nothing from outside the folder');
    assert.ok(errors.some((err) => isFerryError(err, 'PATH_UNSAFE')), 'the refusal is reported');
  });

  test('a parent swapped for a symlink while a child waits to be read: the child is refused', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await mkdir(join(outside, 'b'));
    await writeFile(join(outside, 'b/secret.txt'), 'outside');
    await mkdir(join(root, 'a/b'), { recursive: true });
    const seen: string[] = [];
    const errors: Error[] = [];
    for await (const entry of walk(root, { onError: (_path, err) => errors.push(err) })) {
      seen.push(entry.path);
      if (entry.path === 'a/b') {
        await rename(join(root, 'a'), join(root, 'a-moved')); // the directory stays in the folder
        await symlink(outside, join(root, 'a'));
      }
    }
    assert.ok(!seen.includes('a/b/secret.txt'), `nothing from outside: ${seen.join(', ')}`);
    assert.ok(errors.some((err) => isFerryError(err, 'PATH_UNSAFE')));
  });

  test('a subtree walk under a symlinked parent indexes nothing', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await mkdir(join(outside, 'b/c'), { recursive: true });
    await writeFile(join(outside, 'b/c/secret.txt'), 'outside');
    await symlink(outside, join(root, 'a'));
    const seen: string[] = [];
    const errors: Error[] = [];
    for await (const entry of walk(root, { under: 'a/b/c', onError: (_path, err) => errors.push(err) })) seen.push(entry.path);
    assert.deepEqual(seen, []);
    assert.ok(errors.some((err) => isFerryError(err, 'PATH_UNSAFE')));
    const file: string[] = [];
    for await (const entry of walk(root, { under: 'a/b/c/secret.txt' })) file.push(entry.path);
    assert.deepEqual(file, []);
  });

  test('the watcher does not watch a directory reached through a parent swapped for a symlink', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await mkdir(join(root, 'a'));
    await mkdir(join(outside, 'new'));
    const changes: string[] = [];
    let wake: (() => void) | undefined;
    const watcher = new FolderWatcher({
      root,
      // One window gathers the whole swap, so the flush sees 'a/new' after 'a' became a symlink.
      debounceMs: 1000,
      onChange: (under) => {
        changes.push(under);
        wake?.();
      },
    });
    await watcher.open();
    closers.push(() => watcher.close());
    assert.equal(watcher.status().watchedDirs, 2);

    const until = async (match: (path: string) => boolean): Promise<void> => {
      while (!changes.some(match)) await new Promise<void>((resolve) => (wake = resolve));
    };
    // The peer moves `a` away (its watch still reports under `a/`), puts a symlink in its place and
    // creates `new` in the moved directory: the event names `a/new`, which now leads outside.
    await rename(join(root, 'a'), join(root, 'a-old'));
    await symlink(outside, join(root, 'a'));
    await mkdir(join(root, 'a-old/new'));
    await until((p) => p === '' || p === 'a');
    assert.equal(watcher.status().watchedDirs, 3, 'root, a-old and a-old/new; nothing outside');

    // A write outside the folder is never reported; a write inside still is.
    changes.length = 0;
    await writeFile(join(outside, 'new/secret.txt'), 'outside');
    await writeFile(join(root, 'marker.txt'), 'inside');
    await until((p) => p === '' || p === 'marker.txt');
    assert.ok(!changes.some((p) => p.startsWith('a/')), `nothing under a/: ${changes.join(', ')}`);
  });

  test('a mode change never follows a symlink swapped in at the path', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await writeFile(join(outside, 'precious'), 'x');
    await chmod(join(outside, 'precious'), 0o600);
    await chmod(outside, 0o700);
    await symlink(join(outside, 'precious'), join(root, 'file'));
    await symlink(outside, join(root, 'dir'));
    await assert.rejects(chmodNoFollow(join(root, 'file'), 0o666), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    await assert.rejects(chmodNoFollow(join(root, 'dir'), 0o777), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.equal((await stat(join(outside, 'precious'))).mode & 0o777, 0o600);
    assert.equal((await stat(outside)).mode & 0o777, 0o700);
    await mkdir(join(root, 'real'));
    await chmodNoFollow(join(root, 'real'), 0o750);
    assert.equal((await stat(join(root, 'real'))).mode & 0o777, 0o750);
  });

  test('installing a temp file swapped for a symlink refuses and leaves the link target alone', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await writeFile(join(outside, 'precious'), 'x');
    await chmod(join(outside, 'precious'), 0o600);
    const temp = join(root, '.ferry-tmp-0123456789abcdef01234567');
    await symlink(join(outside, 'precious'), temp);
    const paths = new DiskPaths(root);
    const target = await paths.resolve('file.txt');
    const global = { path: 'file.txt', mode: 0o666, mtimeMs: 1_700_000_000_000 } as FileRecord;
    assert.throws(() => placeTemp(temp, global, target, paths), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.equal((await stat(join(outside, 'precious'))).mode & 0o777, 0o600);
  });

  test('installing into a parent swapped for a symlink after it was resolved refuses and writes nothing outside', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await mkdir(join(root, 'sub'));
    const paths = new DiskPaths(root);
    const target = await paths.resolve('sub/file.txt'); // `sub` verified (and remembered for a second)
    const tempName = '.ferry-tmp-00112233445566778899aabb';
    await writeFile(join(root, 'sub', tempName), 'from the peer');
    // Swapped before the install: the temp file now sits behind the symlink, outside.
    await rename(join(root, 'sub'), join(root, 'sub-old'));
    await symlink(outside, join(root, 'sub'));
    await writeFile(join(outside, tempName), 'planted');
    const global = { path: 'sub/file.txt', mode: 0o644, mtimeMs: 1_700_000_000_000 } as FileRecord;
    assert.throws(() => placeTemp(join(root, 'sub', tempName), global, target, paths), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.deepEqual(await readdir(outside), [tempName], 'no file.txt outside the folder');
  });

  /** `root/sub` made, and `sub/one.txt` installed into it: its directory is now held open (DiskPaths.dirs). */
  async function heldSub(root: string): Promise<{ paths: DiskPaths; global: (path: string) => FileRecord }> {
    await mkdir(join(root, 'sub'));
    const paths = new DiskPaths(root);
    const global = (path: string): FileRecord => ({ path, mode: 0o644, mtimeMs: 1_700_000_000_000 }) as FileRecord;
    const first = await paths.resolve('sub/one.txt');
    await writeFile(join(root, 'sub', '.ferry-tmp-000000000000000000000001'), 'one');
    placeTemp(join(root, 'sub', '.ferry-tmp-000000000000000000000001'), global('sub/one.txt'), first, paths);
    return { paths, global };
  }

  test('a parent held open by an earlier install and then swapped for a symlink is refused, not written through', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    const { paths, global } = await heldSub(root);
    assert.equal(paths.dirs.size, 1, 'the directory of the first install is held open');
    const target = await paths.resolve('sub/two.txt');
    const tempName = '.ferry-tmp-000000000000000000000002';
    await writeFile(join(root, 'sub', tempName), 'two');
    await rename(join(root, 'sub'), join(root, 'sub-old'));
    await symlink(outside, join(root, 'sub'));
    await writeFile(join(outside, tempName), 'planted');
    assert.throws(() => placeTemp(join(root, 'sub', tempName), global('sub/two.txt'), target, paths), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.deepEqual(await readdir(outside), [tempName], 'no two.txt outside the folder');
    assert.deepEqual((await readdir(join(root, 'sub-old'))).sort(), [tempName, 'one.txt'].sort(), 'nothing installed into the moved directory');
  });

  test('a held directory moved away and replaced by a new one: the new one is written, never the old', async () => {
    const root = await tempDir();
    const elsewhere = await tempDir();
    const { paths, global } = await heldSub(root);
    // Moved out of the folder (the held descriptor still reaches it there), a new directory at its name.
    await rename(join(root, 'sub'), join(elsewhere, 'moved'));
    await mkdir(join(root, 'sub'));
    const target = await paths.resolve('sub/two.txt');
    const held = paths.dirs.open('sub');
    try {
      await writeFile(`${held.base}/.ferry-tmp-000000000000000000000002`, 'two');
    } finally {
      held.close();
    }
    placeTemp(join(root, 'sub', '.ferry-tmp-000000000000000000000002'), global('sub/two.txt'), target, paths);
    assert.deepEqual(await readdir(join(root, 'sub')), ['two.txt']);
    assert.deepEqual(await readdir(join(elsewhere, 'moved')), ['one.txt']);
  });

  test('held directories are closed once unused, and by forget()', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'a'));
    await mkdir(join(root, 'b'));
    const paths = new DiskPaths(root);
    const a = paths.dirs.open('a');
    paths.dirs.open('b').close();
    assert.equal(paths.dirs.size, 2);
    paths.forget('all');
    assert.equal(paths.dirs.size, 1, 'the one in use stays open');
    await writeFile(`${a.base}/x`, 'still usable while lent');
    a.close();
    paths.forget('all');
    assert.equal(paths.dirs.size, 0);
    assert.deepEqual(await readdir(join(root, 'a')), ['x']);
  });

  test('fetching into a parent swapped for a symlink after it was resolved refuses and creates no temp file outside', async () => {
    const root = await tempDir();
    const outside = await tempDir();
    await mkdir(join(root, 'sub'));
    const paths = new DiskPaths(root);
    const target = await paths.resolve('sub/file.txt');
    const tempAbs = join(target.parentAbs, '.ferry-tmp-00112233445566778899aabb');
    paths.dirs.open('sub').close(); // held open, as after an earlier file of the same directory
    // Swapped between the resolve and the fetch: the temp file's directory is now a link outside.
    await rename(join(root, 'sub'), join(root, 'sub-old'));
    await symlink(outside, join(root, 'sub'));
    const record = { path: 'sub/file.txt', type: 'file', size: 0, blocks: [], blockSize: 131072, mode: 0o644, version: { PEER: 1 } } as unknown as FileRecord;
    const job = {
      folderId: Buffer.alloc(20),
      root,
      index: {},
      record,
      tempAbs,
      peers: [],
      budget: { limitBytes: 1 << 20 },
      stats: {},
      buffers: {},
      signal: new AbortController().signal,
      logger: silentLogger,
      dirs: paths.dirs,
    } as unknown as FetchJob;
    await assert.rejects(fetchIntoTemp(job), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.deepEqual(await readdir(outside), [], 'no temp file outside the folder');
    // Unswapped, the same job builds its temp file inside.
    await rm(join(root, 'sub'));
    await rename(join(root, 'sub-old'), join(root, 'sub'));
    await fetchIntoTemp(job);
    assert.equal((await stat(tempAbs)).size, 0);
  });
});
