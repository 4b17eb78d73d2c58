// Reachability in test/netlab/inet.sh's two-router internet (root only): devices behind two UPnP
// routers find each other by tracker and sync; two behind the same router (A's external port is
// B's listening port: the old "is this me?" check threw A away) sync through the router's hairpin;
// STUN against the lab's server puts the router's external address in status.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { inet, FerryNode, join, labDown, labRun, labUp, share, type LabEnv, type StatusJson } from './discovery-lab.js';

const PREFIX = 'freach';
const LAB_SETTINGS = { NETLAB_INET_HOSTS: '2', NETLAB_INET_R1_HAIRPIN: '1' };
const SYNC_PORT = 22100;

type Status = StatusJson & {
  external?: Array<{ address: string; source: string }>;
  services: StatusJson['services'] & { nat?: { external: string | null; udp?: { external: string | null } }; stun?: { state: string; external: string | null } };
};

describe('two home routers on one internet', { skip: needs.all(needs.netlab(['ss', 'iproute2'], ['nft', 'nftables'], ['miniupnpd', 'miniupnpd-nftables'], ['stund', 'stun-server']), needs.command('opentracker')) }, () => {
  let lab: LabEnv;
  let tracker: LabEnv;
  let base: string;
  const nodes: FerryNode[] = [];

  before(async () => {
    labDown('tracker.sh', PREFIX);
    inet('down', PREFIX, LAB_SETTINGS);
    lab = inet('up', PREFIX, LAB_SETTINGS);
    tracker = labUp('tracker.sh', PREFIX, ['--impl', 'opentracker', '--port', '16989', '--netns', lab.NETLAB_INET_PUBLIC_NS!, '--addr', lab.NETLAB_INET_PUBLIC_ADDR!]);
    base = await tempDir('reach');
  });

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    labDown('tracker.sh', PREFIX);
    inet('down', PREFIX, LAB_SETTINGS);
    await removeDir(base);
  });

  function node(name: string, ns: string, args: string[]): FerryNode {
    const created = new FerryNode(joinPath(base, `home-${name}`), { ns, listen: `0.0.0.0:${SYNC_PORT}`, nat: true, args: ['--no-lan', '--no-dht', ...args] });
    nodes.push(created);
    return created;
  }

  async function status(of: FerryNode): Promise<Status> {
    return (await of.status()) as Status;
  }

  /** A shares a folder (trackers off until opentracker's whitelist has it), B joins; both then announce. */
  async function shareAndJoin(name: string, nsA: string, nsB: string): Promise<{ a: FerryNode; b: FerryNode; dirB: string }> {
    const trackerArgs = ['--tracker', tracker.NETLAB_TRACKER_HTTP!];
    const dirA = joinPath(base, `${name}-a`);
    const dirB = joinPath(base, `${name}-b`);
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    await writeFile(joinPath(dirA, 'hello.txt'), `across the routers: ${name}\n`);
    let a = node(`${name}-a`, nsA, ['--no-trackers']);
    await a.ready();
    const { rw, folderId } = await share(a, dirA);
    await a.stop();
    labRun('tracker.sh', PREFIX, ['allow', folderId]);
    a = node(`${name}-a`, nsA, trackerArgs);
    await a.ready();
    await waitFor(async () => (await status(a)).services.nat?.external ?? false, 'A to map its port');
    const b = node(`${name}-b`, nsB, trackerArgs);
    await b.ready();
    await join(b, rw, dirB);
    return { a, b, dirB };
  }

  test('devices behind two UPnP routers find each other by tracker and sync; each learns its external address', async () => {
    const { a, b, dirB } = await shareAndJoin('two', lab.NETLAB_INET_H1a_NS!, lab.NETLAB_INET_H2a_NS!);
    await waitFor(async () => (await readFile(joinPath(dirB, 'hello.txt'), 'utf8').catch(() => '')) === 'across the routers: two\n', 'the file to sync', 90_000);
    const [statusA, statusB] = await Promise.all([status(a), status(b)]);
    const mappedA = statusA.services.nat!.external!;
    assert.ok(mappedA.startsWith(`${lab.NETLAB_INET_R1_EXTERNAL_ADDR}:`), mappedA);
    const peersB = (statusB.folders[0]?.peers ?? []).filter((p) => p.connected);
    assert.equal(peersB.length, 1);
    assert.equal(peersB[0]!.address, mappedA, 'B dialled A at its mapped address');
    // A's address as mapped (upnp) and as B saw it (observed, in B's Hello); B was seen at its router's address.
    assert.ok(statusA.external?.some((e) => e.source === 'upnp' && e.address === mappedA), JSON.stringify(statusA.external));
    assert.ok(statusA.external?.some((e) => e.source === 'observed' && e.address === mappedA), JSON.stringify(statusA.external));
    assert.ok(statusB.external?.some((e) => e.source === 'observed' && e.address.startsWith(`${lab.NETLAB_INET_R2_EXTERNAL_ADDR}:`)), JSON.stringify(statusB.external));
    // The sync port's UDP socket (µTP, STUN) is mapped too, to the same external port as TCP.
    await waitFor(async () => (await status(a)).services.nat?.udp?.external === mappedA, "A's UDP port to be mapped like its TCP port");
    await Promise.all([a.stop(), b.stop()]);
  });

  test("two devices behind the same UPnP router sync by tracker (A's external port is B's listening port)", async () => {
    const { a, b, dirB } = await shareAndJoin('same', lab.NETLAB_INET_H1a_NS!, lab.NETLAB_INET_H1b_NS!);
    await waitFor(async () => (await status(b)).services.nat?.external ?? false, 'B to map its port');
    const [mappedA, mappedB] = [(await status(a)).services.nat!.external!, (await status(b)).services.nat!.external!];
    // The router gave A the sync port itself and B the next one: A's external port is B's local port.
    assert.equal(mappedA, `${lab.NETLAB_INET_R1_EXTERNAL_ADDR}:${SYNC_PORT}`);
    assert.notEqual(mappedB, mappedA);
    await waitFor(async () => (await readFile(joinPath(dirB, 'hello.txt'), 'utf8').catch(() => '')) === 'across the routers: same\n', 'the file to sync', 90_000);
    const statusB = await status(b);
    const book = statusB.services.discovery.addressBook;
    assert.ok(Object.values(book).flat().some((e) => e.address === mappedA), `B kept A's address: ${JSON.stringify(book)}`);
    assert.ok(!Object.values(book).flat().some((e) => e.address === mappedB), `B dropped its own: ${JSON.stringify(book)}`);
    await Promise.all([a.stop(), b.stop()]);
  });

  test("STUN against the lab's server reports the router's external address in status", async () => {
    const stunned = node('stun', lab.NETLAB_INET_H2b_NS!, ['--no-trackers', '--stun', lab.NETLAB_INET_STUN_ADDR!]);
    await stunned.ready();
    await waitFor(async () => (await status(stunned)).external?.some((e) => e.source === 'stun') ?? false, 'a STUN answer');
    const result = await status(stunned);
    const fromStun = result.external!.find((e) => e.source === 'stun')!;
    assert.ok(fromStun.address.startsWith(`${lab.NETLAB_INET_R2_EXTERNAL_ADDR}:`), fromStun.address);
    assert.equal(result.services.stun?.state, 'found');
    await stunned.stop();
  });
});
