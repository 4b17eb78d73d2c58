// TURN relays (RFC 8656; root only), in test/netlab/inet.sh's internet: two home routers with
// SYMMETRIC NATs (masquerade random,fully-random: no punch can work) and no port mapping, no public
// Ferry peer; Debian's coturn and opentracker on the public host. Both devices run `--turn`: each
// allocates, announces its relayed address to the UDP tracker through the allocation, learns the
// other's from the tracker and dials it through its own allocation: the folder syncs with path
// `turn HOST`, and the password appears in no log and no status. Without `--turn` the same pair
// never connects.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Coturn } from '../helpers/coturn.js';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { inet, FerryNode, join, labDown, labRun, labUp, share, type LabEnv, type StatusJson } from './discovery-lab.js';

const PREFIX = 'fturn';
const LAB_SETTINGS = {
  NETLAB_INET_HOSTS: '1', NETLAB_INET_R1_UPNP: '0', NETLAB_INET_R2_UPNP: '0', NETLAB_INET_R1_NAT: 'symmetric', NETLAB_INET_R2_NAT: 'symmetric',
};
const SYNC_PORT = 22100;
const TURN_PORT = 3478;
const PASSWORD = 'n0t-in-any-log';

type Status = StatusJson & {
  external?: Array<{ address: string; source: string }>;
  services: StatusJson['services'] & { turn?: { servers: Array<{ server: string; state: string; relayed: string | null; error: string | null }> } };
  knownPeers?: Array<{ address: string; lastError?: string }>;
};
type LinkJson = { connected: boolean; path?: string; address: string };

describe('two devices behind symmetric NATs with a TURN server', { skip: needs.all(needs.netlab(['ss', 'iproute2'], ['nft', 'nftables'], ['stund', 'stun-server'], ['turnserver', 'coturn']), needs.command('opentracker')) }, () => {
  let lab: LabEnv;
  let tracker: LabEnv;
  let coturn: Coturn;
  let base: string;
  const nodes: FerryNode[] = [];

  before(async () => {
    labDown('tracker.sh', PREFIX);
    inet('down', PREFIX, LAB_SETTINGS);
    lab = inet('up', PREFIX, LAB_SETTINGS);
    tracker = labUp('tracker.sh', PREFIX, ['--impl', 'opentracker', '--port', '16989', '--netns', lab.NETLAB_INET_PUBLIC_NS!, '--addr', lab.NETLAB_INET_PUBLIC_ADDR!]);
    coturn = new Coturn({ ns: lab.NETLAB_INET_PUBLIC_NS!, ip: lab.NETLAB_INET_PUBLIC_ADDR!, port: TURN_PORT, minPort: 49300, maxPort: 49400, users: { alice: PASSWORD, bob: PASSWORD } });
    await coturn.start();
    base = await tempDir('turn');
  });

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    await coturn?.stop();
    labDown('tracker.sh', PREFIX);
    inet('down', PREFIX, LAB_SETTINGS);
    await removeDir(base);
  });

  function node(name: string, ns: string, args: string[]): FerryNode {
    const created = new FerryNode(joinPath(base, `home-${name}`), { ns, listen: `0.0.0.0:${SYNC_PORT}`, args: ['--no-lan', '--no-dht', '--no-stun', ...args] });
    nodes.push(created);
    return created;
  }

  async function status(of: FerryNode): Promise<Status> {
    return (await of.status()) as Status;
  }

  /** A shares (trackers off until opentracker's whitelist has the folder), B joins; both announce to the UDP tracker. */
  async function pair(name: string, argsA: string[], argsB: string[]): Promise<{ a: FerryNode; b: FerryNode; dirB: string }> {
    const trackerArgs = ['--tracker', tracker.NETLAB_TRACKER_UDP!];
    const dirA = joinPath(base, `${name}-a`);
    const dirB = joinPath(base, `${name}-b`);
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    await writeFile(joinPath(dirA, 'hello.txt'), `relayed: ${name}\n`);
    let a = node(`${name}-a`, lab.NETLAB_INET_H1a_NS!, ['--no-trackers']);
    await a.ready();
    const { rw, folderId } = await share(a, dirA);
    await a.stop();
    labRun('tracker.sh', PREFIX, ['allow', folderId]);
    a = node(`${name}-a`, lab.NETLAB_INET_H1a_NS!, [...trackerArgs, ...argsA]);
    await a.ready();
    const b = node(`${name}-b`, lab.NETLAB_INET_H2a_NS!, [...trackerArgs, ...argsB]);
    await b.ready();
    await join(b, rw, dirB);
    return { a, b, dirB };
  }

  const turnUrl = (user: string): string => `turn://${user}:${PASSWORD}@${lab.NETLAB_INET_PUBLIC_ADDR}:${TURN_PORT}`;

  test('both allocate, find each other through the tracker by their relayed addresses, and sync over `turn HOST`', async () => {
    const { a, b, dirB } = await pair('turn', ['--turn', turnUrl('alice')], ['--turn', turnUrl('bob')]);
    try {
      const relayed = async (of: FerryNode): Promise<string> =>
        waitFor(async () => (await status(of)).services.turn?.servers[0]?.relayed ?? false, 'a TURN allocation');
      const [relayA, relayB] = await Promise.all([relayed(a), relayed(b)]);
      assert.ok(relayA.startsWith(`${lab.NETLAB_INET_PUBLIC_ADDR}:`), relayA);
      assert.ok(relayB.startsWith(`${lab.NETLAB_INET_PUBLIC_ADDR}:`), relayB);
      await waitFor(async () => (await readFile(joinPath(dirB, 'hello.txt'), 'utf8').catch(() => '')) === 'relayed: turn\n', 'the file to sync through the relay', 120_000);
      const peersB = (await b.connectedPeers()) as unknown as LinkJson[];
      assert.equal(peersB.length, 1);
      assert.equal(peersB[0]!.path, `turn ${lab.NETLAB_INET_PUBLIC_ADDR}`, JSON.stringify(peersB));
      const statusA = await status(a);
      assert.equal(statusA.services.turn!.servers[0]!.state, 'allocated');
      assert.equal(statusA.services.turn!.servers[0]!.server, `${lab.NETLAB_INET_PUBLIC_ADDR}:${TURN_PORT}`);
      assert.ok(statusA.external?.some((e) => e.source === 'turn' && e.address === relayA), JSON.stringify(statusA.external));
      // The credentials are nowhere to be seen: not in status, not in either daemon's (debug) log.
      for (const [node, text] of [[a, JSON.stringify(statusA)], [b, JSON.stringify(await status(b))]] as const) {
        assert.ok(!text.includes(PASSWORD), 'status shows the TURN password');
        assert.ok(!node.log.includes(PASSWORD), 'the log shows the TURN password');
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('the same pair without --turn never connects (symmetric NATs: no punch works)', async () => {
    const { a, b } = await pair('direct', [], []);
    try {
      // B hears of A from the tracker (A's router address), dials it, and times out; nothing connects.
      await waitFor(async () => {
        const known = (await status(b)).knownPeers ?? [];
        return known.some((k) => k.address.startsWith(`${lab.NETLAB_INET_R1_EXTERNAL_ADDR}:`) && /no TLS connection|TIMEOUT|timed? ?out/i.test(k.lastError ?? ''));
      }, "B's dial to A's router to time out", 90_000);
      const [peersA, peersB] = await Promise.all([a.connectedPeers(), b.connectedPeers()]);
      assert.equal(peersA.length + peersB.length, 0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
