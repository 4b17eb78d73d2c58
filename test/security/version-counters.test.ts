// Issue 25, item 2: a key holder who pushes a file's version counters to 2^53−1 must not stop the folder.
// A record above the cap (2^48) is skipped and reported; one at the cap is taken, and the owner's next
// edit still syncs (it counts under the owner's overflow entry), with no link closed.

import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, test } from 'node:test';
import { MAX_VERSION_COUNTER } from '../../src/index/records.js';
import { connect, deviceIdOf, makeDevice, newFolder, runCleanups, until, type Cleanups } from '../sync/helpers.js';
import { answerNothing, rawPeer, sendRecords, signed } from '../sync/raw-peer.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

test('counters of 2^53−1 are refused and reported; counters at the cap are taken and the owner keeps editing', async () => {
  const keys = newFolder();
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys });
  await writeFile(join(alice.root, 'doc.txt'), 'first');
  await alice.scan();
  const link = await connect(cleanups, alice, bob);
  await until(async () => (await readFile(join(bob.root, 'doc.txt'), 'utf8').catch(() => '')) === 'first');

  const mallory = await rawPeer(cleanups, bob, keys, 'mallory', 2);
  answerNothing(mallory);
  const truth = alice.index.getGlobal('doc.txt')!;
  const { inode: _inode, signature: _signature, ...plain } = truth;
  // Far above the cap: the record is skipped and reported, never adopted, and the link stays.
  await sendRecords(mallory, [signed(keys, { ...plain, inode: 0, sequence: 1, version: { ...truth.version, MALLORY: Number.MAX_SAFE_INTEGER } })]);
  await until(() => bob.sync.failed.has('doc.txt'));
  assert.equal(bob.sync.failed.list()[0]!.source, deviceIdOf('mallory'));
  assert.equal(mallory.victimConn.closed, false);
  assert.ok(!('MALLORY' in bob.index.getGlobal('doc.txt')!.version));

  // At the cap: valid, so it is taken (same content, a newer version) and reaches alice too.
  const atCap = { ...truth.version, [alice.shortId]: MAX_VERSION_COUNTER, MALLORY: 1 };
  await sendRecords(mallory, [signed(keys, { ...plain, inode: 0, sequence: 2, version: atCap })]);
  await until(() => alice.index.getGlobal('doc.txt')?.version[alice.shortId] === MAX_VERSION_COUNTER);
  await until(() => alice.index.getLocal('doc.txt')?.version[alice.shortId] === MAX_VERSION_COUNTER);

  // The owner's next edit cannot raise its own entry past the cap: it counts under the overflow entry, and syncs.
  await writeFile(join(alice.root, 'doc.txt'), 'second');
  await alice.scan();
  const edited = alice.index.getLocal('doc.txt')!.version;
  assert.equal(edited[`${alice.shortId}-2`], 1);
  assert.ok(Object.values(edited).every((counter) => counter <= MAX_VERSION_COUNTER));
  await until(async () => (await readFile(join(bob.root, 'doc.txt'), 'utf8')) === 'second');
  assert.equal(link.a.closed || link.b.closed, false, 'no link was closed');
  assert.equal(mallory.victimConn.closed, false);
});
