// A reconnect in the middle of a large index exchange: batches still queued from the old link must not make the new one "go backwards".

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, test } from 'node:test';
import type { IndexMessage } from '../../src/protocol/messages.js';
import type { PeerConnection } from '../../src/protocol/connection.js';
import { INDEX_BATCH_RECORDS } from '../../src/sync/index-exchange.js';
import { connect, converged, makeDevice, newFolder, runCleanups, until, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

test('a reconnect while index batches of the old link are still being stored resumes without a PROTOCOL close', async () => {
  const keys = newFolder();
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys });
  const files = Math.round(INDEX_BATCH_RECORDS * 2.5);
  for (let d = 0; d < 25; d++) {
    await mkdir(join(alice.root, `d${d}`));
    await Promise.all(Array.from({ length: files / 25 }, (_, i) => writeFile(join(alice.root, `d${d}`, `f${i}`), '')));
  }
  await alice.scan();

  // Bob stores the first batch; the second waits (a slow disk) until the peer has reconnected, and
  // is stored before anything of the new link is.
  const receive = bob.sync.receiveIndex.bind(bob.sync);
  let batches = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let held: Promise<void> | undefined;
  bob.sync.receiveIndex = async (deviceId: string, message: IndexMessage, connection?: PeerConnection) => {
    const n = ++batches;
    if (n === 2) {
      held = gate.then(() => receive(deviceId, message, connection));
      return held;
    }
    if (n > 2) await held!.catch(() => undefined);
    return receive(deviceId, message, connection);
  };
  const first = await connect(cleanups, alice, bob);
  await until(() => held !== undefined);
  const storedAtReconnect = bob.index.peerSequence(alice.id);
  assert.ok(storedAtReconnect > 0 && storedAtReconnect < alice.index.localSequence());

  // Alice's side goes away (bob's old session still has batches queued), and the pair reconnects.
  await first.sessionA.close();
  const second = await connect(cleanups, alice, bob);
  release();
  await converged([alice, bob], () => bob.index.counts().needFiles === 0 && bob.index.peerSequence(alice.id) === alice.index.localSequence());
  assert.equal(second.b.closed, false, `the new link stayed up (${second.b.closeCode ?? ''} ${second.b.closeReason ?? ''})`);
  assert.equal(bob.sync.report().peers.find((p) => p.device === alice.id)?.connected, true);
});
