// Two IPv6-only devices (listening on [::1] alone: no IPv4 address, no LAN, no DHT, no added peer)
// find each other through a real third-party tracker reached over IPv6 (npm bittorrent-tracker,
// BEP 7 `peers6`) and sync (issue 19).

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { needsBtTracker, startBtTracker } from '../helpers/bt-tracker.js';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { FerryNode, join, share } from '../netlab/discovery-lab.js';

describe('IPv6-only devices meet through a tracker alone', { skip: needsBtTracker() }, () => {
  let tracker: Awaited<ReturnType<typeof startBtTracker>>;
  let base: string;
  const nodes: FerryNode[] = [];

  before(async () => {
    tracker = await startBtTracker('::1');
    base = await tempDir('tracker6');
  });

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    await tracker?.close();
    await removeDir(base);
  });

  test('B hears of A at [::1]:PORT from the tracker (peers6), dials it and syncs', async () => {
    const dirA = joinPath(base, 'a');
    const dirB = joinPath(base, 'b');
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    await writeFile(joinPath(dirA, 'via6.txt'), 'found through the tracker over IPv6\n');
    const args = ['--no-lan', '--no-dht', '--tracker', tracker.http];
    const a = new FerryNode(joinPath(base, 'home-a'), { listen: '[::1]:0', args });
    const b = new FerryNode(joinPath(base, 'home-b'), { listen: '[::1]:0', args });
    nodes.push(a, b);
    await Promise.all([a.ready(), b.ready()]);
    const { rw } = await share(a, dirA);
    await waitFor(async () => tracker.announces.length > 0, 'A announced');
    await join(b, rw, dirB);

    await waitFor(async () => (await readFile(joinPath(dirB, 'via6.txt'), 'utf8').catch(() => '')) === 'found through the tracker over IPv6\n', 'the file to sync', 60_000);
    const statusA = await a.status();
    const peers = await b.connectedPeers();
    assert.equal(peers.length, 1);
    assert.equal(peers[0]!.source, 'tracker');
    assert.equal(peers[0]!.address, statusA.listen);
    assert.match(statusA.listen, /^\[::1\]:\d+$/);
  });
});
