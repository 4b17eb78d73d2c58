// Concurrent edits, case-only renames, case-insensitive clashes, and read-only devices (local changes, revert, relaying).

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { readFile, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TEMP_FILE_PREFIX } from '../../src/scan/ignore.js';
import { recordSigningBytes } from '../../src/protocol/records.js';
import { conflictPath } from '../../src/sync/paths.js';
import { connect, converged, makeDevice, newFolder, runCleanups, treeOf, until, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

async function namesIn(root: string, dir = ''): Promise<string[]> {
  return (await readdir(join(root, dir))).filter((n) => n !== '.ferry' && !n.startsWith(TEMP_FILE_PREFIX)).sort();
}

describe('conflicts and names', () => {
  test('concurrent edits: the newer mtime keeps the name, the other becomes a conflict copy on both sides', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await writeFile(join(alice.root, 'doc.txt'), 'original');
    await alice.scan();
    const first = await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    await first.close();

    const aliceMtime = new Date('2026-01-02T03:04:05Z');
    await writeFile(join(alice.root, 'doc.txt'), 'alice edit');
    await utimes(join(alice.root, 'doc.txt'), aliceMtime, aliceMtime);
    await writeFile(join(bob.root, 'doc.txt'), 'bob edit, later');
    await utimes(join(bob.root, 'doc.txt'), new Date('2026-01-03T00:00:00Z'), new Date('2026-01-03T00:00:00Z'));
    await alice.scan();
    await bob.scan();
    await connect(cleanups, alice, bob);

    const copy = conflictPath('doc.txt', aliceMtime.getTime(), alice.shortId);
    assert.equal(copy, `doc.conflict-20260102-030405-${alice.shortId}.txt`);
    await converged([alice, bob], async () => (await namesIn(bob.root)).includes(copy));
    for (const device of [alice, bob]) {
      assert.equal(await readFile(join(device.root, 'doc.txt'), 'utf8'), 'bob edit, later');
      assert.equal(await readFile(join(device.root, copy), 'utf8'), 'alice edit');
      assert.deepEqual(await namesIn(device.root), [copy, 'doc.txt']);
    }
    await until(() => alice.index.counts().needFiles === 0 && bob.index.counts().needFiles === 0);
  });

  test('identical concurrent content (both sides seeded with the same file) makes no conflict copy', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await writeFile(join(alice.root, 'same.txt'), 'seeded on both');
    await writeFile(join(bob.root, 'same.txt'), 'seeded on both');
    await alice.scan();
    await bob.scan();
    await connect(cleanups, alice, bob);
    const versionOf = (d: typeof alice): string => JSON.stringify(d.index.getLocal('same.txt')?.version);
    await until(() => versionOf(alice) === versionOf(bob));
    await alice.sync.idle();
    await bob.sync.idle();
    assert.deepEqual(await namesIn(alice.root), ['same.txt']);
    assert.deepEqual(await namesIn(bob.root), ['same.txt']);
    assert.deepEqual(alice.index.getLocal('same.txt')?.version, bob.index.getLocal('same.txt')?.version);
  });

  test('a case-only rename ends with just the new name', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await writeFile(join(alice.root, 'a.txt'), 'content');
    await alice.scan();
    await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    await rename(join(alice.root, 'a.txt'), join(alice.root, 'A.txt'));
    await alice.scan();
    await converged([alice, bob]);
    assert.deepEqual(await namesIn(bob.root), ['A.txt']);
    assert.equal(await readFile(join(bob.root, 'A.txt'), 'utf8'), 'content');
  });

  test('names that clash on a case-insensitive volume: each keeps its own, the other is reported, no copy is made', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys, caseSensitive: false });
    const bob = await makeDevice(cleanups, { name: 'bob', keys, caseSensitive: false });
    await writeFile(join(alice.root, 'README.md'), 'alice readme');
    await writeFile(join(bob.root, 'readme.md'), 'bob readme');
    await alice.scan();
    await bob.scan();
    await connect(cleanups, alice, bob);
    await until(() => alice.sync.failed.has('readme.md') && bob.sync.failed.has('README.md'));
    assert.match(alice.sync.failed.list()[0]!.reason, /differs only in case from README\.md/);
    assert.deepEqual(await namesIn(alice.root), ['README.md']);
    assert.deepEqual(await namesIn(bob.root), ['readme.md']);
    assert.equal(await readFile(join(alice.root, 'README.md'), 'utf8'), 'alice readme');
    assert.equal(await readFile(join(bob.root, 'readme.md'), 'utf8'), 'bob readme');
    assert.equal(alice.index.counts().localFiles, 1, 'nothing new indexed');
  });

  test('on a case-sensitive volume twins are written as themselves', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await writeFile(join(alice.root, 'README.md'), 'upper');
    await writeFile(join(alice.root, 'readme.md'), 'lower');
    await alice.scan();
    await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    assert.deepEqual(await namesIn(bob.root), ['README.md', 'readme.md']);
    assert.equal(await readFile(join(bob.root, 'readme.md'), 'utf8'), 'lower');
    assert.equal(bob.sync.failed.count, 0);
  });
});

describe('read-only devices', () => {
  test("an RO device's edits stay local, are reported, are never sent; revert restores the global versions", async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const carol = await makeDevice(cleanups, { name: 'carol', keys: keys.weaken('ro') });
    await writeFile(join(alice.root, 'shared.txt'), 'from alice');
    await writeFile(join(alice.root, 'other.txt'), 'other');
    await alice.scan();
    await connect(cleanups, alice, carol);
    await converged([alice, carol]);

    await writeFile(join(carol.root, 'shared.txt'), 'carol was here');
    await writeFile(join(carol.root, 'carol-only.txt'), 'new on carol');
    await rm(join(carol.root, 'other.txt'));
    await carol.scan();
    await until(() => carol.sync.report().localChanges === 3);
    await writeFile(join(alice.root, 'later.txt'), 'alice keeps working');
    await alice.scan();
    await until(async () => (await treeOf(carol.root)).has('later.txt'));
    await carol.sync.idle();
    assert.equal(await readFile(join(alice.root, 'shared.txt'), 'utf8'), 'from alice');
    assert.ok(!(await treeOf(alice.root)).has('carol-only.txt'));
    assert.ok((await treeOf(alice.root)).has('other.txt'));
    assert.equal(await readFile(join(carol.root, 'shared.txt'), 'utf8'), 'carol was here', 'the puller leaves RO edits alone');
    assert.equal(alice.sync.report().localChanges, 0);

    assert.equal(await carol.sync.revertLocalChanges(), 3);
    await converged([alice, carol]);
    assert.equal(await readFile(join(carol.root, 'shared.txt'), 'utf8'), 'from alice');
    assert.equal(carol.sync.report().localChanges, 0);
    const archive = await readdir(join(carol.root, '.ferry/archive'));
    assert.equal(archive.filter((n) => n.startsWith('shared.txt~') || n.startsWith('carol-only.txt~')).length, 2);
  });

  test('an RO device relays signed records and blocks to a third device', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const carol = await makeDevice(cleanups, { name: 'carol', keys: keys.weaken('ro') });
    const dave = await makeDevice(cleanups, { name: 'dave', keys });
    await writeFile(join(alice.root, 'relayed.txt'), 'through carol');
    await alice.scan();
    const first = await connect(cleanups, alice, carol);
    await converged([alice, carol]);
    await first.close();
    await connect(cleanups, carol, dave);
    await converged([alice, carol, dave]);
    assert.equal(await readFile(join(dave.root, 'relayed.txt'), 'utf8'), 'through carol');
  });

  test('records travel unsigned between holders of the folder key; one signs them when it relays them to an RO device', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    const carol = await makeDevice(cleanups, { name: 'carol', keys: keys.weaken('ro') });
    await writeFile(join(alice.root, 'note.txt'), 'signed only for carol');
    await alice.scan();
    const first = await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    await first.close();
    // Each proved the folder key in the handshake: alice did not sign, and bob took her record unsigned.
    assert.equal(bob.index.getGlobal('note.txt')?.signature, undefined);

    await connect(cleanups, bob, carol);
    await converged([bob, carol]);
    assert.equal(await readFile(join(carol.root, 'note.txt'), 'utf8'), 'signed only for carol');
    const relayed = carol.index.getGlobal('note.txt');
    assert.ok(relayed?.signature, 'an RO device holds only signed records');
    assert.equal(keys.verify(recordSigningBytes(keys.folderId, relayed), relayed.signature), true);
  });
});
