// A device's replaced connection closing after its successor attached must not detach the successor.

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, test } from 'node:test';
import { connect, converged, makeDevice, newFolder, runCleanups, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

test('closing the replaced connection leaves the newer one syncing', async () => {
  const keys = newFolder();
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys });
  await writeFile(join(alice.root, 'first.txt'), 'one');
  await alice.scan();
  const older = await connect(cleanups, alice, bob);
  await converged([alice, bob]);
  await connect(cleanups, alice, bob); // the same pair again: the newer link replaces the older one
  await older.close();

  const peers = alice.sync.report().peers.filter((p) => p.device === bob.id);
  assert.equal(peers.length, 1);
  assert.equal(peers[0]!.connected, true, 'bob is still attached through the newer connection');
  await writeFile(join(alice.root, 'second.txt'), 'two');
  await alice.scan();
  await converged([alice, bob]);
});
