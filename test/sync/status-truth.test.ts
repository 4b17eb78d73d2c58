// Status tells the truth: a folder that needs files and cannot get them says `stalled` with the reason, never `idle`; a closed link's reason is shown.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, describe, test } from 'node:test';
import { makeDevice, newFolder, runCleanups, until, type Cleanups } from './helpers.js';
import { answerNothing, rawPeer, record, sendRecords, signed } from './raw-peer.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

describe('folder status', () => {
  test('a needed file nobody can supply makes the folder stalled with a reason; the peer gone, it says so', async () => {
    const keys = newFolder();
    const victim = await makeDevice(cleanups, { name: 'victim', keys });
    const peer = await rawPeer(cleanups, victim, keys, 'mallory', 1);
    answerNothing(peer);
    await sendRecords(peer, [signed(keys, record('wanted.bin', { size: 10, blocks: [randomBytes(32)] }))]);
    await until(() => victim.index.counts().needFiles === 1);
    await until(() => victim.sync.report().state === 'stalled' && /wanted\.bin/.test(victim.sync.report().stalledReason ?? ''));
    const report = victim.sync.report();
    assert.equal(report.needFiles, 1);
    assert.match(report.stalledReason ?? '', /1 file needed/);
    assert.match(report.stalledReason ?? '', /wanted\.bin/);

    await peer.conn.close('PROTOCOL', 'testing the close reason');
    await until(() => victim.sync.report().peers.some((p) => !p.connected));
    const after = victim.sync.report();
    assert.equal(after.state, 'stalled');
    assert.match(after.stalledReason ?? '', /no peer connected/);
    assert.match(after.peers[0]!.lastClose ?? '', /PROTOCOL: peer: testing the close reason/);
  });

  test('an index that is still arriving is syncing, and one cut off by a disconnect is a stall, never idle', async () => {
    const keys = newFolder();
    const victim = await makeDevice(cleanups, { name: 'victim', keys });
    const peer = await rawPeer(cleanups, victim, keys, 'mallory', 5000);
    // Directories need no fetching: nothing is "needed", yet 4,999 sequences of the peer's index are missing.
    await sendRecords(peer, [signed(keys, record('a-dir', { type: 'dir', mode: 0o755, sequence: 1 }))]);
    await until(() => victim.index.peerSequence(peer.id) === 1);
    assert.equal(victim.index.counts().needFiles, 0);
    assert.equal(victim.sync.report().state, 'syncing');
    await peer.conn.close('PROTOCOL', 'cut off');
    await until(() => victim.sync.report().peers.some((p) => !p.connected));
    const report = victim.sync.report();
    assert.equal(report.state, 'stalled');
    assert.match(report.stalledReason ?? '', /index of mallory is incomplete \(1 of 5000\).*cut off/);
  });
});
