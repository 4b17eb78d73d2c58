// Archive (keep, list, restore, purge) and the sync layer's path helpers (conflict and temp names, symlink refusal, clashes).

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isFerryError } from '../../src/errors.js';
import { TEMP_FILE_PREFIX } from '../../src/scan/ignore.js';
import { Archive } from '../../src/sync/archive.js';
import { ByteBudget } from '../../src/sync/budget.js';
import { conflictPath, DiskPaths, foldName, tempName } from '../../src/sync/paths.js';
import { silentLogger } from '../../src/util/log.js';
import { runCleanups, tempDir, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

const DAY = 86_400_000;

describe('Archive', () => {
  test('keep moves a file under its path with a timestamp; list, restore and purge', async () => {
    const root = await tempDir(cleanups);
    let now = Date.UTC(2026, 0, 2, 3, 4, 5, 6);
    const archive = new Archive(root, silentLogger, () => now);
    await mkdir(join(root, 'docs'));
    await writeFile(join(root, 'docs/a.txt'), 'one');
    assert.equal(await archive.keep('docs/a.txt'), 'docs/a.txt~20260102-030405-006');
    assert.equal(await archive.keep('docs/a.txt'), null, 'nothing left to archive');
    await writeFile(join(root, 'docs/a.txt'), 'two');
    assert.equal(await archive.keep('docs/a.txt'), 'docs/a.txt~20260102-030405-006-1', 'same moment: numbered');
    now += 20 * DAY;
    await writeFile(join(root, 'docs/a.txt'), 'three');
    await archive.keep('docs/a.txt');

    const listed = [];
    for await (const file of archive.list()) listed.push(file);
    assert.deepEqual(listed.map((f) => f.path), ['docs/a.txt', 'docs/a.txt', 'docs/a.txt']);
    assert.equal(listed.find((f) => f.archivePath.endsWith('-006'))?.archivedAtMs, Date.UTC(2026, 0, 2, 3, 4, 5, 6));

    await writeFile(join(root, 'docs/a.txt'), 'current');
    await archive.restore('docs/a.txt~20260102-030405-006');
    assert.equal(await readFile(join(root, 'docs/a.txt'), 'utf8'), 'one');
    await assert.rejects(archive.restore('../escape~20260102-030405-006'), (err: unknown) => isFerryError(err, 'USAGE'));

    // "current" was archived by the restore, at `now`; only the 20-day-old one is past 14 days.
    assert.equal(await archive.purge(14), 1);
    const left = [];
    for await (const file of archive.list()) left.push(file.archivePath);
    assert.equal(left.length, 2, '"three" and "current" stay');
    now += 30 * DAY;
    assert.equal(await archive.purge(14), 2);
    assert.deepEqual(await readdir(archive.root), [], 'empty directories pruned');
  });
});

describe('sync paths', () => {
  test('conflict names keep the extension, use the UTC time and the device', () => {
    const t = Date.UTC(2026, 10, 25, 1, 2, 3);
    assert.equal(conflictPath('a/b/report.pdf', t, 'DEV'), 'a/b/report.conflict-20261125-010203-DEV.pdf');
    assert.equal(conflictPath('Makefile', t, 'DEV'), 'Makefile.conflict-20261125-010203-DEV');
    assert.equal(conflictPath('.bashrc', t, 'DEV'), '.bashrc.conflict-20261125-010203-DEV');
    assert.equal(conflictPath('x.tar.gz', t, 'DEV'), 'x.tar.conflict-20261125-010203-DEV.gz');
  });

  test('temp names are stable per path and version, and ignored by the scanner', () => {
    const a = tempName('a.txt', { X: 1 });
    assert.equal(a, tempName('a.txt', { X: 1 }));
    assert.notEqual(a, tempName('a.txt', { X: 2 }));
    assert.notEqual(a, tempName('b.txt', { X: 1 }));
    assert.ok(a.startsWith(TEMP_FILE_PREFIX));
  });

  test('folding: case and Unicode form', () => {
    assert.equal(foldName('Caf\u00e9.TXT'), foldName('cafe\u0301.txt'));
  });

  test('resolve refuses a path through a symlinked directory and finds NFD spellings and clashes', async () => {
    const root = await tempDir(cleanups);
    const outside = await tempDir(cleanups);
    await symlink(outside, join(root, 'link'));
    const paths = new DiskPaths(root, { caseSensitive: false }); // clashes exist on a case-insensitive volume only
    await assert.rejects(paths.resolve('link/x.txt', { createParents: true }), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    await assert.rejects(paths.resolve('link/deeper/x.txt', { createParents: true }), (err: unknown) => isFerryError(err, 'PATH_UNSAFE'));
    assert.deepEqual(await readdir(outside), []);

    await mkdir(join(root, 'cafe\u0301'));
    await writeFile(join(root, 'cafe\u0301/Notes.txt'), 'x');
    const nfd = await paths.resolve('caf\u00e9/Notes.txt');
    assert.equal(nfd.diskRel, 'cafe\u0301/Notes.txt');
    assert.ok(nfd.stats?.isFile());
    const clash = await paths.resolve('caf\u00e9/notes.TXT');
    assert.equal(clash.stats, undefined);
    assert.equal(clash.clash, 'cafe\u0301/Notes.txt');
    assert.equal((await new DiskPaths(root).resolve('caf\u00e9/notes.TXT')).clash, undefined, 'this volume is case-sensitive: no clash');
    const created = await paths.resolve('new/dir/file.txt', { createParents: true });
    assert.equal(created.stats, undefined);
    assert.deepEqual(await readdir(join(root, 'new')), ['dir']);
  });
});

describe('ByteBudget', () => {
  test('waits first come first served, caps oversized requests, honours abort', async () => {
    const budget = new ByteBudget(100);
    await budget.acquire(60);
    const order: string[] = [];
    const second = budget.acquire(60).then(() => order.push('second'));
    const third = budget.acquire(10).then(() => order.push('third'));
    const aborted = new AbortController();
    const fourth = budget.acquire(50, aborted.signal);
    aborted.abort();
    await assert.rejects(fourth, (err: unknown) => isFerryError(err, 'ABORTED'));
    budget.release(60);
    await Promise.all([second, third]);
    assert.deepEqual(order, ['second', 'third']);
    assert.equal(budget.inUse, 70);
    budget.release(60);
    budget.release(10);
    await budget.acquire(1_000_000);
    assert.equal(budget.inUse, 100, 'an oversized request takes the whole budget');
    assert.ok(budget.peak <= 100);
  });
});
