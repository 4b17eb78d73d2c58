// .ferryignore is local to each device: never sent, never taken from a peer, so one device's rules never silently stop another's sync.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, test } from 'node:test';
import { connect, makeDevice, newFolder, runCleanups, until, type Cleanups } from './helpers.js';
import { rawPeer, record, sendRecords, signed } from './raw-peer.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

test("a device's .ferryignore stays there: the peer keeps syncing what the rules would have hidden", async () => {
  const keys = newFolder();
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys });
  await writeFile(join(alice.root, '.ferryignore'), 'secret/\n*.log\n');
  await mkdir(join(alice.root, 'secret'));
  await writeFile(join(alice.root, 'secret', 'x.txt'), 'not sent');
  await writeFile(join(alice.root, 'public.txt'), 'sent');
  await alice.scan();
  await connect(cleanups, alice, bob);
  await until(() => existsSync(join(bob.root, 'public.txt')));

  // Bob never gets alice's rules, so his own files under secret/ and *.log are indexed and sent.
  await mkdir(join(bob.root, 'secret'));
  await writeFile(join(bob.root, 'secret', 'from-bob.txt'), 'bob');
  await writeFile(join(bob.root, 'bob.log'), 'log');
  await bob.scan();
  assert.equal(existsSync(join(bob.root, '.ferryignore')), false, "alice's .ferryignore is not sent");
  assert.ok(bob.index.getLocal('secret/from-bob.txt'), "bob's scanner is not bound by alice's rules");
  assert.ok(bob.index.getLocal('bob.log'));
  assert.equal(bob.index.getGlobal('.ferryignore'), undefined);
  assert.equal(existsSync(join(alice.root, 'secret', 'x.txt')), true);
  assert.equal(existsSync(join(bob.root, 'secret', 'x.txt')), false, 'what alice ignores is not sent');

  // On alice, what her rules keep out is needed but ignored: the status says so rather than idle.
  await until(() => alice.index.counts().needFiles === 2 && alice.sync.report().state === 'stalled' && /ferryignore/.test(alice.sync.report().stalledReason ?? ''));
  assert.equal(existsSync(join(alice.root, 'secret', 'from-bob.txt')), false);
});

test("a peer's .ferryignore record (an older version sends one) is dropped, not installed", async () => {
  const keys = newFolder();
  const victim = await makeDevice(cleanups, { name: 'victim', keys });
  const peer = await rawPeer(cleanups, victim, keys);
  await sendRecords(peer, [signed(keys, record('.ferryignore', { sequence: 1 })), signed(keys, record('kept.txt', { sequence: 2 }))]);
  await until(() => existsSync(join(victim.root, 'kept.txt')));
  assert.equal(victim.index.getGlobal('.ferryignore'), undefined);
  assert.equal(existsSync(join(victim.root, '.ferryignore')), false);
  assert.equal(peer.victimConn.closed, false);
});
