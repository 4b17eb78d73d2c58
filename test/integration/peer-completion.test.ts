// Real daemons on loopback: A's status tells how complete B's copy is, from the index B announces (issue 21).

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, shareBetween, removeDir, tempDir, waitFor } from '../helpers/daemon.js';

interface PeerJson {
  device: string;
  connected: boolean;
  completion: number;
  needFiles: number;
  needBytes: number;
}

async function peerOf(daemon: DaemonProcess, device: string): Promise<PeerJson | undefined> {
  const folder = (await daemon.status()).folders[0];
  return (folder?.peers as PeerJson[] | undefined)?.find((p) => p.device === device);
}

describe('per-peer completion', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let bId: string;
  let dirA: string;
  let dirB: string;

  before(async () => {
    base = await tempDir('completion');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(join(base, 'home-b'));
    await Promise.all([a.ready(), b.ready()]);
    bId = (await b.status()).device.id;
    dirA = join(base, 'a');
    dirB = join(base, 'b');
    await mkdir(dirA);
    await writeFile(join(dirA, 'one.bin'), Buffer.alloc(100_000, 1));
    await shareBetween(a, dirA, b, dirB);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test("A sees B below 100 % while B misses files, and 100 % with nothing needed once B has them", async () => {
    const synced = await waitFor(async () => {
      const peer = await peerOf(a, bId);
      return peer?.connected && peer.completion === 100 && peer.needFiles === 0 ? peer : undefined;
    }, 'B complete at first');
    assert.equal(synced.needBytes, 0);

    // B goes away; A gets new files that B has not got: A's last view of B's index says what B misses.
    await b.stop();
    await writeFile(join(dirA, 'two.bin'), Buffer.alloc(300_000, 2));
    await writeFile(join(dirA, 'three.bin'), Buffer.alloc(100_000, 3));
    const missing = await waitFor(async () => {
      const peer = await peerOf(a, bId);
      return peer && !peer.connected && peer.needFiles === 2 ? peer : undefined;
    }, 'A to see what B misses');
    assert.equal(missing.needBytes, 400_000);
    assert.doesNotMatch(a.log, /^\s+at /m, 'a dropped peer is no stack trace in the log');
    assert.equal(missing.completion, 20, JSON.stringify(missing)); // 100 000 of 500 000 bytes
    const text = await ferry(['status', '--home', a.home]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /peer .*\b\d+(\.\d)? % complete, needs 2 files/);

    // B comes back and catches up.
    b = new DaemonProcess(b.home);
    await b.ready();
    const caughtUp = await waitFor(async () => {
      const peer = await peerOf(a, bId);
      return peer?.connected && peer.completion === 100 ? peer : undefined;
    }, 'B complete after catching up');
    assert.equal(caughtUp.needFiles, 0);
    assert.equal(caughtUp.needBytes, 0);
    const folder = (await a.status()).folders[0] as { inRateBps?: number; filesInProgress?: number };
    assert.equal(typeof folder.inRateBps, 'number');
    assert.equal(typeof folder.filesInProgress, 'number');
  });
});
