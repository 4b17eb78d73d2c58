// The IPv6 DHT (BEP 32) against a real third-party DHT (Debian's python3-libtorrent): inside a
// namespace of its own (2001:db8::/64 documentation addresses on its loopback only; nothing leaves
// it), two IPv6-only Ferry daemons bootstrap from three libtorrent nodes over IPv6. A announces
// its folder; B looks it up, gets A's address from libtorrent's 18-byte `values`, dials and syncs.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { FerryNode, join, share } from './discovery-lab.js';
import { LIBTORRENT_DHT_PORT, LibtorrentDht } from './libtorrent-dht.js';

const NS = 'fv6d6-dht';
const A_IP = '2001:db8::10';
const B_IP = '2001:db8::11';
const NODES = ['2001:db8::2', '2001:db8::3', '2001:db8::4'];
/** The same libtorrent sessions listen on these IPv4 addresses too (each session: one of each family). */
const NODES4 = ['198.51.100.2', '198.51.100.3', '198.51.100.4'];
const DHT_PORT = LIBTORRENT_DHT_PORT;

describe('IPv6 DHT (BEP 32) with libtorrent nodes', { skip: needs.all(needs.netlab(), needs.python(['libtorrent', 'python3-libtorrent'])) }, () => {
  let base: string;
  const dht = new LibtorrentDht(NS);
  const daemons: FerryNode[] = [];

  before(async () => {
    await dht.start([A_IP, B_IP, ...NODES, '198.51.100.1', ...NODES4], NODES.map((v6, i) => [v6, NODES4[i]!]));
    base = await tempDir('dht6');
  });

  after(async () => {
    await Promise.allSettled(daemons.map((d) => d.stop()));
    await dht.close();
    if (base) await removeDir(base);
  });

  test('B finds A through the IPv6 DHT alone and the folder syncs', async () => {
    const args = ['--no-lan', '--no-trackers', ...NODES.flatMap((ip) => ['--dht-bootstrap', `[${ip}]:${DHT_PORT}`])];
    const a = new FerryNode(`${base}/home-a`, { ns: NS, listen: `[${A_IP}]:0`, args });
    const b = new FerryNode(`${base}/home-b`, { ns: NS, listen: `[${B_IP}]:0`, args });
    daemons.push(a, b);
    await Promise.all([a.ready(), b.ready()]);
    const dirA = `${base}/a`;
    const dirB = `${base}/b`;
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    await writeFile(`${dirA}/via-dht6.txt`, 'found through the IPv6 DHT\n');
    const { rw } = await share(a, dirA);
    await join(b, rw, dirB);
    await waitFor(async () => (await readFile(`${dirB}/via-dht6.txt`, 'utf8').catch(() => '')) === 'found through the IPv6 DHT\n', 'the file to sync', 90_000);
    const statusA = await a.status();
    const peers = await b.connectedPeers();
    assert.equal(peers.length, 1);
    assert.equal(peers[0]!.source, 'dht');
    assert.equal(peers[0]!.address, statusA.listen);
    const dht6 = (await b.status()).services.discovery.dht6 as { family: string; nodes: number; folders: Record<string, { peersFound: number }> };
    assert.equal(dht6.family, 'ipv6');
    assert.ok(dht6.nodes >= 1, JSON.stringify(dht6));
  });

  test('a dual-stack daemon given only IPv4 bootstrap nodes joins the IPv6 DHT through them (want n4 n6, nodes6)', async () => {
    const c = new FerryNode(`${base}/home-c`, {
      ns: NS,
      listen: '0.0.0.0:0',
      args: ['--no-lan', '--no-trackers', ...NODES4.flatMap((ip) => ['--dht-bootstrap', `${ip}:${DHT_PORT}`])],
    });
    daemons.push(c);
    await c.ready();
    type Dht = { family: string; nodes: number };
    const dht6 = await waitFor(async () => {
      const d = (await c.status()).services.discovery.dht6 as Dht;
      return d.nodes >= 1 ? d : undefined;
    }, 'IPv6 DHT nodes learned over IPv4', 60_000);
    assert.equal(dht6.family, 'ipv6');
    assert.ok(((await c.status()).services.discovery.dht as Dht).nodes >= 1);
  });
});
