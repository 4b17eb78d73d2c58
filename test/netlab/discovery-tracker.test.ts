// Tracker discovery against a real BitTorrent tracker (Debian's opentracker via netlab tracker.sh,
// root only): two daemons on loopback find each other through it, once over UDP, once over HTTP.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { FerryNode, join, labDown, labRun, labUp, share, type LabEnv } from './discovery-lab.js';

const PREFIX = 'fdtrk';
const PORT = '16979';

describe('tracker discovery (opentracker)', { skip: needs.netlab('opentracker', ['ss', 'iproute2']) }, () => {
  let tracker: LabEnv;
  let base: string;
  const nodes: FerryNode[] = [];

  before(async () => {
    labDown('tracker.sh', PREFIX);
    tracker = labUp('tracker.sh', PREFIX, ['--impl', 'opentracker', '--port', PORT]);
    base = await tempDir('tracker');
  });

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    labDown('tracker.sh', PREFIX);
    await removeDir(base);
  });

  async function findEachOther(kind: 'udp' | 'http'): Promise<void> {
    const url = kind === 'udp' ? tracker.NETLAB_TRACKER_UDP! : tracker.NETLAB_TRACKER_HTTP!;
    const dirA = joinPath(base, `${kind}-a`);
    const dirB = joinPath(base, `${kind}-b`);
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    await writeFile(joinPath(dirA, 'via.txt'), `found through the ${kind} tracker\n`);
    const args = ['--no-lan', '--no-dht', '--tracker', url];
    // Share first with trackers off, so opentracker's whitelist has the folder before anyone announces.
    let a = new FerryNode(joinPath(base, `${kind}-home-a`), { listen: '127.0.0.1:0', args: ['--no-lan', '--no-dht', '--no-trackers'] });
    nodes.push(a);
    await a.ready();
    const { rw, folderId } = await share(a, dirA);
    await a.stop();
    labRun('tracker.sh', PREFIX, ['allow', folderId]);

    a = new FerryNode(a.home, { listen: '127.0.0.1:0', args });
    const b = new FerryNode(joinPath(base, `${kind}-home-b`), { listen: '127.0.0.1:0', args });
    nodes.push(a, b);
    await Promise.all([a.ready(), b.ready()]);
    await join(b, rw, dirB);

    await waitFor(async () => (await readFile(joinPath(dirB, 'via.txt'), 'utf8').catch(() => '')) === `found through the ${kind} tracker\n`, 'the file to sync', 60_000);
    const [statusA, statusB] = await Promise.all([a.status(), b.status()]);
    const peers = (statusB.folders[0]?.peers ?? []).filter((p) => p.connected);
    assert.equal(peers.length, 1);
    // B heard of A from the tracker (A's announce came first), so B dialled A at its announced port.
    assert.equal(peers[0]!.source, 'tracker');
    assert.equal(peers[0]!.address, statusA.listen);
    const book = statusB.services.discovery.addressBook[folderId] ?? [];
    assert.ok(book.some((e) => e.address === statusA.listen && e.source === 'tracker'), JSON.stringify(book));
    const trackers = statusA.services.discovery.trackers as Array<{ url: string; lastAnnounceMs: number | null; error?: string }>;
    assert.equal(trackers.length, 1);
    assert.equal(trackers[0]!.url, url);
    assert.equal(trackers[0]!.error, undefined);
    await Promise.all([a.stop(), b.stop()]);
  }

  test('two daemons find each other through a UDP tracker (BEP 15)', () => findEachOther('udp'));
  test('two daemons find each other through an HTTP tracker (BEP 3, compact peers)', () => findEachOther('http'));
});
