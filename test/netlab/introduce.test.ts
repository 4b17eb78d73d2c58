// Hole punching introduced by a third device (root only), in test/netlab/inet.sh's internet: two
// home routers with NO port mapping (miniupnpd off), cone NAT with real routers' inbound drop rule,
// trackers off, and a public folder peer C holding only the ENC key. The routers map the sync
// port's UDP to another external port (A: 22100 → 32101, B: 22100 → 32102; endpoint-independent,
// as many home routers do), so the addresses peer exchange hands out (router address at the sync
// port) lead nowhere and the two cannot punch by themselves: only an introduction through C, which
// passes each the other's STUN-learned endpoint and has both dial at once, connects them. A and B
// end up connected directly ('udp punched'), and a file written after C stops syncs A → B. With
// UDP off on A they never connect directly (C may still relay for them), and status says why.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { describe, test } from 'node:test';
import { waitFor } from '../helpers/daemon.js';
import { INET_SYNC_PORT, inetSuite, FerryNode, join, type LabEnv, type StatusJson } from './discovery-lab.js';

const PREFIX = 'fintro';
const LAB_SETTINGS = { NETLAB_INET_HOSTS: '1', NETLAB_INET_R1_UPNP: '0', NETLAB_INET_R2_UPNP: '0' };
const SYNC_PORT = INET_SYNC_PORT;
const UDP_PORT = { 1: 32101, 2: 32102 } as const;
const isRoot = process.getuid?.() === 0;

interface IntroJson {
  counters: Record<string, number>;
  devices: Array<{ device: string; state: string; via?: string; tries: number; reason?: string; punchedInMs?: number }>;
}
type Status = Omit<StatusJson, 'folders'> & {
  external?: Array<{ address: string; source: string }>;
  knownPeers?: Array<{ address: string; connected: boolean; lastError?: string }>;
  services: StatusJson['services'] & { introduce?: IntroJson };
  folders: Array<Omit<StatusJson['folders'][number], 'peers'> & { peers: Array<{ device: string; connected: boolean; path?: string }> }>;
};

/** Router I maps UDP from the sync port to another external port, the same for every destination. */
function remapUdp(lab: LabEnv, router: 1 | 2): void {
  execFileSync('ip', ['netns', 'exec', lab[`NETLAB_INET_R${router}_NS`]!, 'nft', 'insert', 'rule', 'inet', 'filter', 'postrouting',
    'oifname', 'wan0', 'udp', 'sport', String(SYNC_PORT), 'masquerade', 'to', `:${UDP_PORT[router]}`], { stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('two devices behind NATs, introduced by a public ENC peer', { skip: isRoot ? false : 'needs root (network namespaces); CI runs as root' }, () => {
  const suite = inetSuite(PREFIX, LAB_SETTINGS, (lab) => {
    remapUdp(lab, 1);
    remapUdp(lab, 2);
  });
  const { node } = suite;

  const status = async (of: FerryNode): Promise<Status> => (await of.status()) as Status;
  const cAddress = (): string => `${suite.lab.NETLAB_INET_PUBLIC_ADDR}:${SYNC_PORT}`;
  const connectedToC = async (of: FerryNode): Promise<boolean> => (await status(of)).knownPeers?.some((k) => k.address === cAddress() && k.connected) ?? false;
  const link = async (of: FerryNode, device: string) => (await status(of)).folders[0]?.peers.find((p) => p.device === device && p.connected);

  /** A shares a folder with a file, C joins with the ENC key, B with the RW key; A and B are given C's address. */
  async function trio(name: string, argsA: string[]): Promise<{ a: FerryNode; b: FerryNode; c: FerryNode; dirA: string; dirB: string; idA: string; idB: string }> {
    const [dirA, dirB, dirC] = ['a', 'b', 'c'].map((side) => joinPath(suite.base, `${name}-${side}`));
    for (const dir of [dirA, dirB, dirC]) await mkdir(dir!, { recursive: true });
    await writeFile(joinPath(dirA!, 'hello.txt'), `introduced: ${name}\n`);
    const a = node(`${name}-a`, suite.lab.NETLAB_INET_H1a_NS!, argsA);
    const b = node(`${name}-b`, suite.lab.NETLAB_INET_H2a_NS!);
    const c = node(`${name}-c`, suite.lab.NETLAB_INET_PUBLIC_NS!);
    await Promise.all([a.ready(), b.ready(), c.ready()]);
    const shared = await a.cli(['share', dirA!, '--json']);
    assert.equal(shared.code, 0, shared.stderr);
    const keys = JSON.parse(shared.stdout) as { rw: string; enc: string };
    await join(c, keys.enc, dirC!);
    await join(b, keys.rw, dirB!);
    const [idA, idB] = await Promise.all([a, b].map(async (n) => (await status(n)).device.id));
    assert.equal((await a.cli(['peers', 'add', cAddress()])).code, 0);
    assert.equal((await b.cli(['peers', 'add', cAddress()])).code, 0);
    return { a, b, c, dirA: dirA!, dirB: dirB!, idA: idA!, idB: idB! };
  }

  test('C introduces A and B: they punch through both NATs, connect directly over udp punched, and sync without C', async (t) => {
    const { a, b, c, dirA, dirB, idA, idB } = await trio('punch', []);
    t.after(() => Promise.allSettled([a.stop(), b.stop(), c.stop()])); // the next test's daemons take the same ports
    await waitFor(async () => (await connectedToC(a)) && (await connectedToC(b)), 'A and B to connect to C', 60_000);
    const bothAtC = Date.now();
    // (C may relay for them meanwhile: what counts is the direct link replacing it, at both ends;
    // one end may adopt it a moment after the other.)
    const direct = async (of: FerryNode, device: string) => {
      const l = await link(of, device);
      return l && !l.path?.startsWith('relay via') ? l : false;
    };
    const linkAB = await waitFor(() => direct(b, idA), 'A and B to connect directly', 90_000);
    const tookMs = Date.now() - bothAtC;
    const linkBA = await waitFor(() => direct(a, idB), 'A to keep the direct link too', 30_000);
    // Both routers drop unsolicited inbound packets, so a direct UDP link is a punched one, and both
    // ends say so: also the end whose own SYN got through first and that never saw the other's.
    for (const l of [linkAB, linkBA]) assert.equal(l.path, 'udp punched', JSON.stringify([linkAB, linkBA]));
    // STUN on the shared socket learned the remapped UDP port, which is what C passed on.
    assert.equal((await status(a)).external?.find((e) => e.source === 'stun')?.address, `${suite.lab.NETLAB_INET_R1_EXTERNAL_ADDR}:${UDP_PORT[1]}`);
    const introC = (await status(c)).services.introduce!;
    assert.ok(introC.counters.introduced! >= 1, JSON.stringify(introC));
    const punchedIn = await Promise.all([a, b].map(async (n) => (await status(n)).services.introduce?.devices.map((d) => d.punchedInMs).join(',')));
    t.diagnostic(`A–B connected ${tookMs} ms after both were connected to C; from the first introduction request to the punched link: A ${punchedIn[0]} ms, B ${punchedIn[1]} ms`);
    // Without C, a new file goes A → B over the punched link.
    await c.stop();
    await writeFile(joinPath(dirA, 'after.txt'), 'direct\n');
    await waitFor(async () => (await readFile(joinPath(dirB, 'after.txt'), 'utf8').catch(() => '')) === 'direct\n', 'after.txt to sync A → B directly', 90_000);
    assert.equal(await readFile(joinPath(dirB, 'hello.txt'), 'utf8'), 'introduced: punch\n');
    await Promise.all([a.stop(), b.stop()]);
  });

  test('with UDP off on A, the introduction cannot help: A and B never connect directly, and status says why', async () => {
    const { a, b, c, idA, idB } = await trio('noudp', ['--no-udp']);
    await waitFor(async () => (await connectedToC(a)) && (await connectedToC(b)), 'A and B to connect to C', 60_000);
    // B asks C, C introduces, B punches 3 rounds at A's router, which drops every SYN (A sends none).
    const failed = await waitFor(async () => (await status(b)).services.introduce?.devices.find((d) => d.device === idA && d.state === 'failed') ?? false, "B's introduction to A to fail", 150_000);
    assert.match(failed.reason ?? '', /^introduction via .+ failed: no reply from .+'s NAT after 3 tries$/);
    const offA = (await status(a)).services.introduce?.devices.find((d) => d.device === idB);
    assert.equal(offA?.state, 'off', JSON.stringify(offA));
    assert.match(offA?.reason ?? '', /UDP is off/);
    // Not directly: C may relay for them (issue 19, item 5a), never a direct path.
    for (const l of [await link(a, idB), await link(b, idA)]) assert.ok(l === undefined || l.path?.startsWith('relay via'), JSON.stringify(l));
    assert.equal((await status(b)).services.introduce?.counters.punched, 0);
    // The same reason in `ferry status`.
    const text = await b.cli(['status']);
    assert.match(text.stdout, new RegExp(`device ${idA.slice(0, 7)} not reached directly: introduction via .+ failed: no reply from ${idA.slice(0, 7)}'s NAT after 3 tries`));
    await Promise.all([a.stop(), b.stop(), c.stop()]);
  });
});
