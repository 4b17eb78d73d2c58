// Metadata-only changes (a touch, a chmod) are applied in place and recorded in batches, like installs: a hundred
// touched files cost the receiver a few index transactions, not one durable commit each (issue 26, edit cost).

import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, test } from 'node:test';
import type { FolderIndex } from '../../src/index/types.js';
import { connect, converged, makeDevice, newFolder, runCleanups, until, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

const FILES = 100;

/** Counts putLocal calls (each one index transaction) and the records they carry. */
function countCommits(index: FolderIndex): { calls: number; records: number } {
  const counts = { calls: 0, records: 0 };
  const putLocal = index.putLocal.bind(index);
  index.putLocal = (records, options) => {
    counts.calls++;
    counts.records += records.length;
    return putLocal(records, options);
  };
  return counts;
}

test(`${FILES} touched files: their new mtimes land on the peer in a few index transactions, no block fetched`, async () => {
  const keys = newFolder();
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys });
  for (let i = 0; i < FILES; i++) await writeFile(join(alice.root, `f${i}.txt`), `file ${i}`);
  await alice.scan();
  await connect(cleanups, alice, bob);
  await converged([alice, bob]);
  await bob.sync.idle();
  const blocksBefore = bob.sync.stats.blocksRequested;

  const commits = countCommits(bob.index);
  const base = Math.floor(Date.now() / 1000) + 86_400;
  for (let i = 0; i < FILES; i++) await utimes(join(alice.root, `f${i}.txt`), base + i, base + i);
  await alice.scan();
  await until(async () => {
    for (let i = 0; i < FILES; i++) {
      if (Math.floor((await lstat(join(bob.root, `f${i}.txt`))).mtimeMs / 1000) !== base + i) return false;
    }
    return true;
  });
  await bob.sync.idle();

  for (let i = 0; i < FILES; i++) assert.equal(Math.floor(bob.index.getLocal(`f${i}.txt`)!.mtimeMs / 1000), base + i);
  assert.equal(bob.sync.stats.blocksRequested, blocksBefore, 'the content was there: nothing fetched');
  assert.equal(commits.records, FILES);
  // One transaction per file before (each a durable commit under the folder lock: ~10 ms each on a busy disk).
  assert.ok(commits.calls <= 10, `${commits.calls} index transactions for ${FILES} touched files`);
});

test(`${FILES} new symlinks land on the peer in a few index transactions, each pointing where it should`, async () => {
  const keys = newFolder();
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys });
  await connect(cleanups, alice, bob);
  await converged([alice, bob]);
  await bob.sync.idle();

  const commits = countCommits(bob.index);
  await mkdir(join(alice.root, 'links'));
  for (let i = 0; i < FILES; i++) await symlink(`../target-${i}`, join(alice.root, 'links', `l${i}`));
  await alice.scan();
  await until(async () => {
    for (let i = 0; i < FILES; i++) {
      if ((await readlink(join(bob.root, 'links', `l${i}`)).catch(() => '')) !== `../target-${i}`) return false;
    }
    return true;
  });
  await bob.sync.idle();

  for (let i = 0; i < FILES; i++) assert.equal(bob.index.getLocal(`links/l${i}`)!.linkTarget, `../target-${i}`);
  assert.deepEqual((await readdir(join(bob.root, 'links'))).filter((n) => !n.startsWith('l')), [], 'no temp link left');
  // One durable transaction (and one directory fsync, one folder-lock hold) per link before.
  assert.ok(commits.calls <= 12, `${commits.calls} index transactions for ${FILES} new symlinks (and their directory)`);
});
