// Hole punching without a third device (root only), in test/netlab/inet.sh's internet: two home
// routers with NO port mapping (miniupnpd off) and real routers' inbound drop rule, so neither
// device accepts anything unsolicited. Each learns its external UDP endpoint by STUN on the sync
// port's shared socket, and is given the other's (what a tracker hands out: the router's address
// and the announced port); both dial, TCP goes nowhere, and the µTP SYNs each side keeps sending
// open both NATs: the folder syncs over `udp punched`. Without UDP (`--no-udp`) the same pair never connects.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { describe, test } from 'node:test';
import { waitFor } from '../helpers/daemon.js';
import { INET_SYNC_PORT, inetSuite, FerryNode, join, share, type StatusJson } from './discovery-lab.js';

const PREFIX = 'fudp';
const LAB_SETTINGS = { NETLAB_INET_HOSTS: '1', NETLAB_INET_R1_UPNP: '0', NETLAB_INET_R2_UPNP: '0' };
const SYNC_PORT = INET_SYNC_PORT;
const isRoot = process.getuid?.() === 0;

type Status = StatusJson & { external?: Array<{ address: string; source: string }> };
type LinkJson = { connected: boolean; path?: string; rttMs?: number };

describe('two devices behind NATs without port mapping', { skip: isRoot ? false : 'needs root (network namespaces); CI runs as root' }, () => {
  const suite = inetSuite(PREFIX, LAB_SETTINGS);
  const { node } = suite;

  async function stunned(of: FerryNode): Promise<string> {
    return waitFor(async () => ((await of.status()) as Status).external?.find((e) => e.source === 'stun')?.address ?? false, 'a STUN answer');
  }

  async function pair(name: string, args: string[]): Promise<{ a: FerryNode; b: FerryNode; dirB: string; externalA: string; externalB: string }> {
    const dirA = joinPath(suite.base, `${name}-a`);
    const dirB = joinPath(suite.base, `${name}-b`);
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    await writeFile(joinPath(dirA, 'hello.txt'), `punched: ${name}\n`);
    const a = node(`${name}-a`, suite.lab.NETLAB_INET_H1a_NS!, args);
    const b = node(`${name}-b`, suite.lab.NETLAB_INET_H2a_NS!, args);
    await Promise.all([a.ready(), b.ready()]);
    const { rw } = await share(a, dirA);
    await join(b, rw, dirB);
    const [externalA, externalB] = await Promise.all([stunned(a), stunned(b)]);
    return { a, b, dirB, externalA, externalB };
  }

  test('STUN on the shared socket learns the sync port; both dial, the µTP SYNs punch both NATs, and the folder syncs over udp punched', async () => {
    const { a, b, dirB, externalA, externalB } = await pair('udp', []);
    try {
    // The port-preserving NAT kept the sync port: STUN asked from the sync port's own socket.
    assert.equal(externalA, `${suite.lab.NETLAB_INET_R1_EXTERNAL_ADDR}:${SYNC_PORT}`);
    assert.equal(externalB, `${suite.lab.NETLAB_INET_R2_EXTERNAL_ADDR}:${SYNC_PORT}`);
    // Each is given the other's external endpoint, as a tracker would hand it out.
    assert.equal((await a.cli(['peers', 'add', externalB])).code, 0);
    assert.equal((await b.cli(['peers', 'add', externalA])).code, 0);
    await waitFor(async () => (await readFile(joinPath(dirB, 'hello.txt'), 'utf8').catch(() => '')) === 'punched: udp\n', 'the file to sync through both NATs', 90_000);
    const peersB = (await b.connectedPeers()) as unknown as LinkJson[];
    assert.equal(peersB.length, 1);
    assert.equal(peersB[0]!.path, 'udp punched', JSON.stringify(peersB));
    assert.equal(typeof peersB[0]!.rttMs, 'number');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('the same pair with UDP off never connects (TCP cannot pass the routers)', async () => {
    const { a, b } = await pair('tcp', ['--no-udp']);
    // (STUN then asks from a socket of its own: the sync port is what a tracker would hand out.)
    const externalA = `${suite.lab.NETLAB_INET_R1_EXTERNAL_ADDR}:${SYNC_PORT}`;
    const externalB = `${suite.lab.NETLAB_INET_R2_EXTERNAL_ADDR}:${SYNC_PORT}`;
    try {
    assert.equal((await a.cli(['peers', 'add', externalB])).code, 0);
    assert.equal((await b.cli(['peers', 'add', externalA])).code, 0);
    // Each side's dial ends in a timeout (the routers drop the SYNs); nothing connected meanwhile.
    await waitFor(async () => {
      const status = (await a.status()) as Status & { knownPeers?: Array<{ address: string; lastError?: string }> };
      return status.knownPeers?.some((k) => k.address === externalB && /no TLS connection|TIMEOUT|timed? ?out/i.test(k.lastError ?? '')) ?? false;
    }, "A's dial to time out", 60_000);
    const [peersA, peersB] = await Promise.all([a.connectedPeers(), b.connectedPeers()]);
    assert.equal(peersA.length + peersB.length, 0);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
