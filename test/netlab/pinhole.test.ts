// UPnP IGD v2 IPv6 pinholes against a real router (root only), in test/netlab/inet.sh's internet with IPv6:
// both home routers route IPv6 behind the usual stateful firewall (inbound new connections dropped); router 1
// runs miniupnpd, whose WANIPv6FirewallControl service opens pinholes, router 2 runs none. Device A (behind
// router 1) finds the router by SSDP on ff02::c and opens pinholes to its sync port (TCP and UDP); a public
// device C with no UDP at all (so no punching) dials A's global IPv6 address over TCP and syncs. The negative twin B
// (behind router 2, same settings) cannot be reached. The pinhole is in the router's ruleset while A runs,
// shows in `status --json`, and is deleted when A stops; a short lease is renewed (UpdatePinhole), for TCP
// and UDP alike.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { inet, FerryNode, join, share, type LabEnv, type PeerJson, type StatusJson } from './discovery-lab.js';
import { BUILD_TEST, mapPort, NsProcess } from './nat-lab.js';

const execFileAsync = promisify(execFile);
const PREFIX = 'fpin';
const LAB_SETTINGS = { NETLAB_INET_HOSTS: '1', NETLAB_INET_V6: '1', NETLAB_INET_R1_UPNP: '1', NETLAB_INET_R2_UPNP: '0' };
const SYNC_PORT = 22100;

interface MapperReport {
  state: string;
  method: string | null;
  external: string | null;
  error: string | null;
  lifetimeS: number | null;
}
type Status = StatusJson & {
  external?: Array<{ address: string; source: string }>;
  knownPeers?: Array<{ address: string; connected: boolean; lastError?: string }>;
  services: StatusJson['services'] & { nat?: { pinhole?: { tcp?: MapperReport; udp?: MapperReport } } };
};

/** The accept rules miniupnpd keeps in router 1's forward chain for IPv6 pinholes (one line per pinhole). */
async function pinholeRules(lab: LabEnv): Promise<string[]> {
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', lab.NETLAB_INET_R1_NS!, 'nft', 'list', 'chain', 'inet', 'filter', 'miniupnpd']);
  return stdout.split('\n').map((l) => l.trim()).filter((l) => l.includes('accept'));
}

/** Does router 1 hold a pinhole to ADDRESS:PORT for PROTOCOL? (nft prints the IPv6 destination and next header raw.) */
function hasPinhole(rules: string[], address: string, port: number, protocol: 'TCP' | 'UDP'): boolean {
  const hex = expandIpv6(address);
  const proto = protocol === 'TCP' ? '0x6' : '0x11';
  return rules.some((r) => r.includes(`th dport ${port} `) && r.includes(`0x${hex}`) && r.includes(`@nh,48,8 ${proto} `));
}

/** 32 hex digits of an IPv6 address. */
function expandIpv6(address: string): string {
  const [head, tail = ''] = address.split('::') as [string, string?];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.map((g) => g.padStart(4, '0')).join('');
}

describe('an IPv6 pinhole on the home router (UPnP IGD v2)', {
  skip: needs.netlab(['ss', 'iproute2'], ['nft', 'nftables'], ['miniupnpd', 'miniupnpd-nftables'], ['stund', 'stun-server']),
}, () => {
  let lab: LabEnv;
  let base: string;
  const nodes: FerryNode[] = [];
  const processes: NsProcess[] = [];

  before(async () => {
    inet('down', PREFIX, LAB_SETTINGS);
    lab = inet('up', PREFIX, LAB_SETTINGS);
    base = await tempDir('pinhole');
  });

  after(async () => {
    await Promise.allSettled([...nodes.map((node) => node.stop()), ...processes.map((p) => p.stop('SIGKILL'))]);
    inet('down', PREFIX, LAB_SETTINGS);
    await removeDir(base);
  });

  /** The devices at home run as installed (port mapping, UDP); the public one without UDP (no µTP, so no punching): it can only dial TCP. */
  function node(name: string, ns: string, atHome: boolean): FerryNode {
    const created = new FerryNode(joinPath(base, `home-${name}`), {
      ns,
      nat: atHome,
      listen: `0.0.0.0:${SYNC_PORT}`, // the default host: TCP and UDP listen on :: too
      args: ['--no-lan', '--no-dht', '--no-trackers', '--no-stun', ...(atHome ? [] : ['--no-udp'])],
    });
    nodes.push(created);
    return created;
  }

  test('a public peer with no UDP connects in through the pinhole and syncs; behind a router without it, it cannot; the pinhole goes on stop', async () => {
    const dirA = joinPath(base, 'a');
    const dirB = joinPath(base, 'b');
    const dirC = joinPath(base, 'c');
    await Promise.all([mkdir(dirA), mkdir(dirB), mkdir(dirC)]);
    await writeFile(joinPath(dirA, 'hello.txt'), 'through the pinhole\n');
    const a = node('a', lab.NETLAB_INET_H1a_NS!, true);
    const b = node('b', lab.NETLAB_INET_H2a_NS!, true);
    const c = node('c', lab.NETLAB_INET_PUBLIC_NS!, false);
    await Promise.all([a.ready(), b.ready(), c.ready()]);
    const { rw } = await share(a, dirA);
    await join(b, rw, dirB);
    await join(c, rw, dirC);

    const addrA = lab.NETLAB_INET_H1a_ADDR6!;
    const toA = `[${addrA}]:${SYNC_PORT}`;
    const toB = `[${lab.NETLAB_INET_H2a_ADDR6!}]:${SYNC_PORT}`;
    const pinholeOf = async (n: FerryNode, protocol: 'tcp' | 'udp' = 'tcp'): Promise<MapperReport | undefined> => ((await n.status()) as Status).services.nat?.pinhole?.[protocol];
    const holeA = await waitFor(async () => ((await pinholeOf(a))?.state === 'mapped' ? (await pinholeOf(a))! : false), "A's pinhole", 30_000);
    assert.deepEqual([holeA.method, holeA.external], ['pinhole', toA]);
    const udpA = await waitFor(async () => ((await pinholeOf(a, 'udp'))?.state === 'mapped' ? (await pinholeOf(a, 'udp'))! : false), "A's UDP pinhole", 30_000);
    assert.equal(udpA.external, toA);
    const rules = await pinholeRules(lab);
    assert.ok(hasPinhole(rules, addrA, SYNC_PORT, 'TCP') && hasPinhole(rules, addrA, SYNC_PORT, 'UDP'), `router 1 has no TCP and UDP pinholes to ${toA}: ${rules.join('\n')}`);
    assert.ok(((await a.status()) as Status).external?.some((e) => e.source === 'pinhole' && e.address === toA), 'A lists its pinhole among its external addresses');
    assert.ok((await a.cli(['status'])).stdout.includes(`\nipv6 pinhole  ${toA}\n`), '`ferry status` shows the pinhole');
    const holeB = await waitFor(async () => ((await pinholeOf(b))?.state === 'failed' ? (await pinholeOf(b))! : false), "B's pinhole attempt to fail", 30_000);
    assert.match(holeB.error ?? '', /no UPnP gateway answered over IPv6/);

    // Only C is told the addresses: every connection is C dialling in.
    assert.equal((await c.cli(['peers', 'add', toA])).code, 0);
    assert.equal((await c.cli(['peers', 'add', toB])).code, 0);
    await waitFor(async () => (await readFile(joinPath(dirC, 'hello.txt'), 'utf8').catch(() => '')) === 'through the pinhole\n', 'the file to reach C from A', 60_000);
    const idA = (await a.status()).device.id;
    const idB = (await b.status()).device.id;
    const linkAtC = (await c.connectedPeers()).find((p) => p.device === idA) as (PeerJson & { path?: string }) | undefined;
    assert.deepEqual([linkAtC?.address, linkAtC?.path], [toA, 'tcp'], 'C dialled A over TCP at its global IPv6 address');
    await waitFor(async () => {
      const status = (await c.status()) as Status;
      return status.knownPeers?.some((k) => k.address === toB && !k.connected && /no TLS connection|TIMEOUT|timed? ?out/i.test(k.lastError ?? '')) ?? false;
    }, "C's dial to B (no pinhole) to time out", 90_000);
    assert.ok(!(await c.connectedPeers()).some((p) => p.device === idB), 'C never reached B');
    assert.equal((await b.connectedPeers()).length, 0);

    await a.stop();
    const left = await pinholeRules(lab);
    assert.ok(!hasPinhole(left, addrA, SYNC_PORT, 'TCP') && !hasPinhole(left, addrA, SYNC_PORT, 'UDP'), `A deleted its pinholes when it stopped: ${left.join('\n')}`);
  });

  test('a short lease is renewed with UpdatePinhole, for TCP and UDP, and the pinhole is deleted on close', async () => {
    const leaseS = 3;
    const tcp = mapPort(lab.NETLAB_INET_H1a_NS!, 'pinhole', 4310, leaseS);
    const udp = new NsProcess(lab.NETLAB_INET_H1a_NS!, [process.execPath, `${BUILD_TEST}/nat/fixtures/map-port.js`, 'pinhole', '4311', String(leaseS), 'UDP']);
    processes.push(tcp, udp);
    const renewals = (p: NsProcess): number => p.out.split('\n').filter((l) => l.includes('port mapping renewed') && l.includes('method=pinhole')).length;
    // Two renewals of a 3 s lease: the hole outlived its first lease twice.
    await waitFor(async () => {
      if (!tcp.running || !udp.running) throw new Error(`a mapper exited:\n${tcp.out}\n${udp.out}`);
      return renewals(tcp) >= 2 && renewals(udp) >= 2;
    }, 'both pinholes to be renewed twice', 60_000);
    const addrA = lab.NETLAB_INET_H1a_ADDR6!;
    const rules = await pinholeRules(lab);
    assert.ok(hasPinhole(rules, addrA, 4310, 'TCP') && hasPinhole(rules, addrA, 4311, 'UDP'), rules.join('\n'));
    // Reachable from the internet through the TCP pinhole: the fixture greets and closes.
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', lab.NETLAB_INET_PUBLIC_NS!, process.execPath, '-e',
      `const s=require('node:net').connect(4310,'${addrA}');let d='';s.on('data',(c)=>d+=c);s.on('end',()=>process.stdout.write(d));s.setTimeout(5000,()=>process.exit(3))`]);
    assert.match(stdout, /^hello from \d+/);
    await Promise.all([tcp.stop(), udp.stop()]);
    assert.ok(tcp.events().some((e) => e.event === 'closed') && udp.events().some((e) => e.event === 'closed'));
    const after = await pinholeRules(lab);
    assert.ok(!hasPinhole(after, addrA, 4310, 'TCP') && !hasPinhole(after, addrA, 4311, 'UDP'), after.join('\n'));
  });
});
