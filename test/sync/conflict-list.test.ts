// The conflict list follows the index (copies whose original is there), and resolving keeps the loser in the archive.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { FolderKeys } from '../../src/keys/index.js';
import { Archive } from '../../src/sync/archive.js';
import { ConflictList, resolveConflict, type ResolveContext } from '../../src/sync/conflicts.js';
import { conflictPath } from '../../src/sync/paths.js';
import { silentLogger } from '../../src/util/log.js';
import { makeDevice, runCleanups, type Cleanups, type Device } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

const COPY = conflictPath('doc.txt', Date.UTC(2026, 0, 1), 'BOBXXXXXXXXX');

function context(device: Device, conflicts: ConflictList): ResolveContext {
  return {
    root: device.root,
    index: device.index,
    archive: new Archive(device.root, silentLogger),
    conflicts,
    exclusive: (work) => device.lock.run(work),
    rescan: async (subtrees) => {
      for (const under of subtrees) await device.scan(under);
    },
    logger: silentLogger,
  };
}

/** The count once the list has caught up with the index (count() itself never waits). */
async function countOf(list: ConflictList): Promise<number | undefined> {
  await list.update();
  return list.count();
}

async function archivedFiles(root: string): Promise<string[]> {
  return (await readdir(join(root, '.ferry', 'archive')).catch(() => [])).sort();
}

async function withConflict(): Promise<{ device: Device; conflicts: ConflictList }> {
  const device = await makeDevice(cleanups, { name: 'alice', keys: FolderKeys.generate() });
  await writeFile(join(device.root, 'doc.txt'), 'the original, longer');
  await writeFile(join(device.root, COPY), 'the copy');
  await writeFile(join(device.root, 'plain.txt'), 'no conflict');
  await device.scan();
  return { device, conflicts: new ConflictList(device.index) };
}

describe('conflict list', () => {
  test('a copy counts while its original is there, and is listed with both versions', async () => {
    const { device, conflicts } = await withConflict();
    assert.equal((await countOf(conflicts)), 1);
    const { conflicts: listed, total } = (await conflicts.list(0, 10, (id) => (id === device.shortId ? 'alice-nas' : undefined)));
    assert.equal(total, 1);
    assert.deepEqual(listed[0]!.path, 'doc.txt');
    assert.equal(listed[0]!.copyPath, COPY);
    assert.equal(listed[0]!.original.size, 'the original, longer'.length);
    assert.equal(listed[0]!.copy.size, 'the copy'.length);
    assert.equal(listed[0]!.original.deviceName, 'alice-nas');

    // Followed from the index's change log: the original gone, then back.
    await rm(join(device.root, 'doc.txt'));
    await device.scan();
    assert.equal((await countOf(conflicts)), 0);
    await writeFile(join(device.root, 'doc.txt'), 'back');
    await device.scan();
    assert.equal((await countOf(conflicts)), 1);
    await rm(join(device.root, COPY));
    await device.scan();
    assert.equal((await countOf(conflicts)), 0);
    assert.equal((await conflicts.list(0, 10)).total, 0);
  });

  test('keep the copy: it takes the name in one rename, the original is kept in the archive (the same inode)', async () => {
    const { device, conflicts } = await withConflict();
    const before = await stat(join(device.root, 'doc.txt'));
    const done = await resolveConflict(context(device, conflicts), 'doc.txt', 'copy');
    assert.equal(done.copyPath, COPY);
    assert.equal(await readFile(join(device.root, 'doc.txt'), 'utf8'), 'the copy');
    assert.equal(existsSync(join(device.root, COPY)), false);
    const archived = join(device.root, '.ferry', 'archive', done.archived!);
    assert.equal(await readFile(archived, 'utf8'), 'the original, longer');
    assert.equal((await stat(archived)).ino, before.ino, 'hard-linked, never copied or missing');
    assert.equal((await countOf(conflicts)), 0);
    assert.equal(device.index.getLocal(COPY)?.deleted, true, 'the copy is a deletion to sync');
  });

  test('keep the original: the copy goes to the archive', async () => {
    const { device, conflicts } = await withConflict();
    await resolveConflict(context(device, conflicts), COPY, 'original');
    assert.equal(await readFile(join(device.root, 'doc.txt'), 'utf8'), 'the original, longer');
    assert.deepEqual((await archivedFiles(device.root)).map((n) => n.replace(/~.*/, '')), [COPY]);
    assert.equal((await countOf(conflicts)), 0);
  });

  test('keep both: a default name from the device, or the one given; a name outside the folder is refused', async () => {
    const { device, conflicts } = await withConflict();
    const ctx = context(device, conflicts);
    await assert.rejects(resolveConflict(ctx, COPY, 'both', '../outside.txt'), /cannot name the copy/);
    await assert.rejects(resolveConflict(ctx, COPY, 'both', 'plain.txt'), /already exists/);
    await assert.rejects(resolveConflict(ctx, 'plain.txt', 'copy'), (err: Error & { code?: string }) => err.code === 'CONFLICT_UNKNOWN');
    const done = await resolveConflict(ctx, COPY, 'both');
    assert.equal(done.renamedTo, `doc (${device.shortId}).txt`);
    assert.equal(await readFile(join(device.root, done.renamedTo), 'utf8'), 'the copy');
    assert.equal(await readFile(join(device.root, 'doc.txt'), 'utf8'), 'the original, longer');
    assert.equal((await countOf(conflicts)), 0);
    assert.deepEqual(await archivedFiles(device.root), [], 'nothing lost, nothing archived');
  });
});
