// DHT discovery in a small private mainline DHT (bittorrent-dht) on loopback: three daemons, the
// DHT bootstrapped from one of them, find each other; the routing table survives a restart.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { FerryNode, join, share } from './discovery-lab.js';

/**
 * Fixed ports (TCP sync and UDP DHT share the number), so each node can name another as bootstrap.
 * Below Linux's ephemeral range (32768+), where other tests' sockets get their ports, and checked
 * free for both protocols first.
 */
async function freeBasePort(count: number): Promise<number> {
  const bindable = async (port: number): Promise<boolean> => {
    const tcp = createServer();
    const udp = createSocket('udp4');
    try {
      await new Promise<void>((ok, fail) => tcp.once('error', fail).listen(port, '127.0.0.1', ok));
      await new Promise<void>((ok, fail) => udp.once('error', fail).bind(port, '127.0.0.1', ok));
      return true;
    } catch {
      return false;
    } finally {
      tcp.close();
      try {
        udp.close();
      } catch {
        // never bound
      }
    }
  };
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 12000);
    let free = true;
    for (let i = 1; i <= count && free; i++) free = await bindable(base + i);
    if (free) return base;
  }
}

describe('DHT discovery', () => {
  let base: string;
  const nodes: FerryNode[] = [];

  let basePort: number;

  before(async () => {
    base = await tempDir('dht');
    basePort = await freeBasePort(3);
  });

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    await removeDir(base);
  });

  const addr = (i: number): string => `127.0.0.1:${basePort + i}`;
  function start(i: number, bootstrap: string): FerryNode {
    const node = new FerryNode(joinPath(base, `home-${i}`), {
      listen: addr(i),
      args: ['--no-lan', '--no-trackers', '--dht-bootstrap', bootstrap],
    });
    nodes.push(node);
    return node;
  }
  const peersOf = async (node: FerryNode): Promise<string[]> => (await node.connectedPeers()).map((p) => p.address).sort();

  test('three daemons find each other through a DHT bootstrapped from the first', async () => {
    for (const i of [1, 2, 3]) await mkdir(joinPath(base, `dir-${i}`), { recursive: true });
    await writeFile(joinPath(base, 'dir-1', 'dht.txt'), 'found in the DHT\n');
    // 1 is the bootstrap node of the others (it names 2, which is not up yet: it starts alone).
    const a = start(1, addr(2));
    const b = start(2, addr(1));
    await Promise.all([a.ready(), b.ready()]);
    const { rw } = await share(a, joinPath(base, 'dir-1'));
    await join(b, rw, joinPath(base, 'dir-2'));
    await waitFor(async () => (await peersOf(a)).length === 1, 'A and B to connect', 60_000);

    const c = start(3, addr(1));
    await c.ready();
    await join(c, rw, joinPath(base, 'dir-3'));
    await waitFor(async () => (await readFile(joinPath(base, 'dir-3', 'dht.txt'), 'utf8').catch(() => '')) === 'found in the DHT\n', 'the file to reach C', 60_000);
    for (const node of [a, b, c]) {
      const peers = await waitFor(async () => {
        const connected = await node.connectedPeers();
        return connected.length === 2 ? connected : undefined;
      }, 'two connected peers', 60_000);
      // B and C may also meet through A's peer exchange, when it names B to C before C's DHT lookup does (CI, loaded).
      for (const peer of peers) assert.match(peer.source, /^(dht|incoming|pex)$/, JSON.stringify(peer));
    }
    const fromDht = (await Promise.all([a, b, c].map((n) => n.connectedPeers()))).flat().filter((p) => p.source === 'dht');
    // A–B and A–C can only have come from the DHT (each knew no other peer then); B–C from it or from A's peer exchange.
    assert.ok(fromDht.length >= 2, `A–B and A–C were dialled from DHT addresses: ${JSON.stringify(fromDht)}`);
    // The DHT rides on the sync port's shared UDP socket. C's table may hold only A yet: until C has
    // answered A's probe, A's replies to it carry no nodes (dht-guard.ts, anti-amplification).
    const dht = (await c.status()).services.discovery.dht as { nodes: number; port: number };
    assert.ok(dht.nodes >= 1);
    assert.equal(dht.port, basePort + 3);

    // Restarted with a bootstrap node nobody answers at, C still knows the DHT from its saved table.
    await c.stop();
    const again = new FerryNode(c.home, { listen: addr(3), args: ['--no-lan', '--no-trackers', '--dht-bootstrap', addr(9)] });
    nodes.push(again);
    await again.ready();
    await waitFor(async () => ((await again.status()).services.discovery.dht as { nodes: number }).nodes >= 2, 'C to rejoin from its saved table', 30_000);
  });
});
