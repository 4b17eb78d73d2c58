// A device's replaced connection closing after its successor attached must not detach the successor.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, test } from 'node:test';
import { PeerConnection } from '../../src/protocol/connection.js';
import type { ClusterFolder } from '../../src/protocol/messages.js';
import { folderSyncState } from '../../src/sync/index.js';
import { duplexPair } from '../protocol/helpers.js';
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

test('overlapping attaches of one device: the one begun last stays attached, even when the other finishes last', async () => {
  const keys = newFolder();
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys });
  await writeFile(join(alice.root, 'first.txt'), 'one');
  await alice.scan();
  const first = await connect(cleanups, alice, bob);
  await converged([alice, bob]);
  await first.close();
  // Two new links of bob's: the older one's attach waits on the index (its index ID is unknown
  // here, so bob's records are cleared first); the newer one's attaches at once.
  const state: ClusterFolder = { folderId: keys.folderId, peerAccess: 'rw', ...folderSyncState(bob.index, alice.id) };
  const opened = async (): Promise<PeerConnection> => {
    const [x, y] = duplexPair();
    const mine = new PeerConnection(x, { closeTimeoutMs: 200 });
    const theirs = new PeerConnection(y, { closeTimeoutMs: 200 });
    await Promise.all([mine.open(), theirs.open()]);
    cleanups.push(async () => {
      await Promise.all([mine.close(), theirs.close()]);
    });
    return mine;
  };
  const [older, newer] = [await opened(), await opened()];
  const link = (connection: PeerConnection, peerState: ClusterFolder) => ({ deviceId: bob.id, deviceName: 'bob', address: 'mem', connection, peerAccess: 'rw' as const, peerHoldsFolderKey: true, peerState });
  const attachedOlder = alice.sync.attach(link(older, { ...state, indexId: randomBytes(state.indexId.length) }));
  const attachedNewer = alice.sync.attach(link(newer, state));
  await Promise.all([attachedOlder, attachedNewer]);
  // The older link ends (it was superseded): the newer one must still be bob's link here.
  alice.sync.detach(bob.id, older);
  const peers = alice.sync.report().peers.filter((p) => p.device === bob.id);
  assert.equal(peers.length, 1);
  assert.equal(peers[0]!.connected, true, 'bob is still attached through the newer link');
});
