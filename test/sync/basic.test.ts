// Two devices in one process: initial sync of a tree both ways, changed blocks only, local reuse, deletions, replacements.

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { chmod, copyFile, mkdir, readFile, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MESSAGE_CODES } from '../../src/protocol/messages.js';
import { decodeMessage } from '../../src/protocol/validate.js';
import {
  connect,
  converged,
  makeDevice,
  newFolder,
  randomContent,
  runCleanups,
  treeOf,
  until,
  type Cleanups,
  type Link,
} from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

/** Blocks the side asked its peer for (a request names one block or a run of adjacent ones). */
function blocksRequestedBy(link: Link, side: 'a' | 'b'): number {
  const frames = side === 'a' ? link.framesA : link.framesB;
  return frames
    .filter((f) => f.direction === 'out' && f.type === MESSAGE_CODES.Request)
    .map((f) => decodeMessage(f.type, f.body))
    .reduce((sum, m) => sum + (m.type === 'Request' ? m.hash.length / 32 : 0), 0);
}

async function archived(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    let names: string[] = [];
    try {
      names = await readdir(join(root, '.ferry/archive', rel));
    } catch {
      return;
    }
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      if (/~\d{8}-\d{6}-\d{3}/.test(name)) out.push(path.replace(/~[\d-]+(@[A-Za-z0-9]+)?$/, ''));
      else await walk(path);
    }
  };
  await walk('');
  return out.sort();
}

describe('sync between two devices', () => {
  test('initial sync of a tree, both directions: nested and empty dirs, empty file, symlink, modes, NFC and NFD names', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await mkdir(join(alice.root, 'docs/deep/deeper'), { recursive: true });
    await mkdir(join(alice.root, 'empty-dir'));
    await writeFile(join(alice.root, 'docs/deep/deeper/note.txt'), 'deep note');
    await writeFile(join(alice.root, 'empty.txt'), '');
    await writeFile(join(alice.root, 'run.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(alice.root, 'run.sh'), 0o755);
    await symlink('docs/deep', join(alice.root, 'shortcut'));
    await writeFile(join(alice.root, 'caf\u00e9.txt'), 'nfc name');
    await writeFile(join(alice.root, 'big.bin'), randomContent(700_000));
    await mkdir(join(bob.root, 'from-bob'));
    await writeFile(join(bob.root, 'from-bob/na\u0308ive.txt'), 'nfd name on disk');
    await alice.scan();
    await bob.scan();

    await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    const tree = await treeOf(bob.root);
    assert.equal(tree.get('run.sh')?.mode, 0o755);
    assert.equal(tree.get('shortcut')?.type, 'symlink');
    assert.equal(tree.get('shortcut')?.content, 'docs/deep');
    assert.equal(tree.get('empty-dir')?.type, 'dir');
    assert.equal(tree.get('empty.txt')?.type, 'file');
    assert.equal(tree.get('caf\u00e9.txt')?.type, 'file');
    assert.equal(await readFile(join(alice.root, 'from-bob/n\u00e4ive.txt'), 'utf8'), 'nfd name on disk');
    await until(() => alice.index.counts().needFiles === 0 && bob.index.counts().needFiles === 0);
    assert.equal(bob.index.counts().localFiles, alice.index.counts().localFiles);
    // A rescan after the pull finds nothing to change (real inodes and on-disk mtimes were recorded).
    const before = bob.index.localSequence();
    await bob.scan();
    assert.equal(bob.index.localSequence(), before);
    assert.equal(bob.sync.report().state, 'idle');
  });

  test('a modified file transfers only its changed blocks; a copy or rename transfers none', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    const content = randomContent(3 * 1024 * 1024, 7); // 24 blocks of 128 KiB
    await writeFile(join(alice.root, 'video.bin'), content);
    await alice.scan();
    const link = await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    assert.equal(blocksRequestedBy(link, 'b'), 24);

    content.fill(0xee, 5 * 131072 + 10, 5 * 131072 + 20);
    await writeFile(join(alice.root, 'video.bin'), content);
    await alice.scan();
    await converged([alice, bob]);
    assert.equal(blocksRequestedBy(link, 'b'), 25, 'one changed block');

    const { ino: videoInode } = await stat(join(bob.root, 'video.bin'));
    await copyFile(join(alice.root, 'video.bin'), join(alice.root, 'copy.bin'));
    await rename(join(alice.root, 'video.bin'), join(alice.root, 'renamed.bin'));
    await alice.scan();
    await converged([alice, bob]);
    assert.equal(blocksRequestedBy(link, 'b'), 25, 'copy and rename reuse local blocks');
    // One of the two new names got bob's old file itself (moved, not copied), the other a copy of its blocks.
    const inodes = await Promise.all(['copy.bin', 'renamed.bin'].map(async (name) => (await stat(join(bob.root, name))).ino));
    assert.equal(inodes.filter((ino) => ino === videoInode).length, 1);
    assert.ok(bob.sync.stats.blocksCopied >= 24);
    assert.ok((await readFile(join(bob.root, 'copy.bin'))).equals(content));
    assert.ok((await readFile(join(bob.root, 'renamed.bin'))).equals(content));
    // Archived: the version the modification replaced; the renamed one lives on under its new name.
    assert.deepEqual(await archived(bob.root), ['video.bin']);
  });

  test('renamed and moved small files (one block each, not in the block map) are moved on the receiver, not fetched', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await mkdir(join(alice.root, 'a'));
    await mkdir(join(alice.root, 'b'));
    const names = ['a/one.txt', 'a/two.txt', 'a/three.txt'];
    for (const [i, name] of names.entries()) await writeFile(join(alice.root, name), randomContent(1024 * (i + 1), 40 + i));
    await alice.scan();
    const link = await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    const requested = blocksRequestedBy(link, 'b');
    assert.equal(requested, 3);
    const inodes = await Promise.all(names.map(async (name) => (await stat(join(bob.root, name))).ino));

    // A rename within the directory, a move to another one, and one that stays.
    await rename(join(alice.root, 'a/one.txt'), join(alice.root, 'a/uno.txt'));
    await rename(join(alice.root, 'a/two.txt'), join(alice.root, 'b/two.txt'));
    await alice.scan();
    await converged([alice, bob]);
    assert.equal(blocksRequestedBy(link, 'b'), requested, 'nothing fetched for a rename');
    assert.equal((await stat(join(bob.root, 'a/uno.txt'))).ino, inodes[0], 'the file itself was moved');
    assert.equal((await stat(join(bob.root, 'b/two.txt'))).ino, inodes[1]);
    assert.equal((await stat(join(bob.root, 'a/three.txt'))).ino, inodes[2]);
    assert.deepEqual(await treeOf(bob.root), await treeOf(alice.root));
    assert.deepEqual(await archived(bob.root), [], 'a moved file leaves nothing to archive');
  });

  test('a deletion becomes a tombstone and the file moves to the receiver archive; a replaced file is archived', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await mkdir(join(alice.root, 'dir/sub'), { recursive: true });
    await writeFile(join(alice.root, 'dir/sub/a.txt'), 'a');
    await writeFile(join(alice.root, 'keep.txt'), 'version 1');
    await alice.scan();
    await connect(cleanups, alice, bob);
    await converged([alice, bob]);

    await rm(join(alice.root, 'dir'), { recursive: true });
    await writeFile(join(alice.root, 'keep.txt'), 'version 2, longer');
    await alice.scan();
    // The disk can match before the receiver's index commit lands: wait for both.
    await converged([alice, bob], () => bob.index.getLocal('dir')?.deleted === true);
    assert.equal(await readFile(join(bob.root, 'keep.txt'), 'utf8'), 'version 2, longer');
    assert.deepEqual(await archived(bob.root), ['dir/sub/a.txt', 'keep.txt']);
    assert.equal(bob.index.getLocal('dir')?.deleted, true);
    assert.equal(bob.index.getLocal('dir/sub/a.txt')?.deleted, true);
  });

  test('a deleted directory that still holds unknown local files is kept, and those files sync', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await mkdir(join(alice.root, 'shared'));
    await writeFile(join(alice.root, 'shared/x.txt'), 'x');
    await alice.scan();
    const link = await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    await link.close();

    await rm(join(alice.root, 'shared'), { recursive: true });
    await alice.scan();
    await writeFile(join(bob.root, 'shared/new-on-bob.txt'), 'mine');
    await writeFile(join(bob.root, 'shared/.DS_Store'), 'litter');
    await connect(cleanups, alice, bob);
    await until(async () => {
      const tree = await treeOf(alice.root);
      return tree.has('shared/new-on-bob.txt') && !tree.has('shared/x.txt');
    });
    await until(async () => !(await treeOf(bob.root)).has('shared/x.txt'));
    assert.equal(await readFile(join(bob.root, 'shared/new-on-bob.txt'), 'utf8'), 'mine');
  });
});
