// DHT input checks: KRPC messages of the wrong shape are dropped before bittorrent-dht sees them
// (some would throw inside it), and a live node fed them keeps answering and keeps bounded tables.

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import bencode from 'bencode';
import { DhtDiscovery } from '../../src/discovery/dht.js';
import { krpcProblem } from '../../src/discovery/dht-guard.js';
import { waitFor } from '../helpers/daemon.js';

const ID = Buffer.alloc(20, 1);
const HASH = Buffer.alloc(20, 2);
const enc = (value: unknown): Buffer => Buffer.from(bencode.encode(value));
const query = (q: string, a: Record<string, unknown>): Buffer => enc({ t: Buffer.from('aa'), y: 'q', q, a: { id: ID, ...a } });

test('well-formed KRPC passes; wrong types and sizes are named and dropped', () => {
  assert.equal(krpcProblem(query('ping', {})), null);
  assert.equal(krpcProblem(query('get_peers', { info_hash: HASH })), null);
  assert.equal(krpcProblem(query('announce_peer', { info_hash: HASH, token: Buffer.from('tok'), port: 6881 })), null);
  assert.equal(krpcProblem(enc({ t: Buffer.from('aa'), y: 'r', r: { id: ID, nodes: Buffer.alloc(26), values: [Buffer.alloc(6)] } })), null);
  const bad: Array<[Buffer, RegExp]> = [
    [Buffer.from('garbage'), /not bencoded/],
    [Buffer.alloc(9000, 0x6c), /oversized/],
    [enc([1, 2, 3]), /not a dictionary/],
    [enc({ t: 5, y: 'q' }), /transaction/],
    [enc({ t: Buffer.from('aa'), y: 'z' }), /unknown message type/],
    [enc({ t: Buffer.from('aa'), y: 'q', q: 'ping', a: 7 }), /a\.id/],
    [query('ping', { id: 12345 }), /a\.id/],
    [query('get_peers', { info_hash: 42 }), /info_hash/],
    [query('get_peers', { info_hash: [HASH] }), /info_hash/],
    [query('find_node', { target: Buffer.alloc(3) }), /target/],
    [query('announce_peer', { info_hash: HASH, token: 99, port: 6881 }), /token/],
    [query('announce_peer', { info_hash: HASH, token: Buffer.from('t'), port: 'x' }), /port/],
    [query('put', { v: 'x' }), /unsupported query/],
    [enc({ t: Buffer.from('aa'), y: 'r', r: { id: ID, nodes: Buffer.alloc(25) } }), /nodes/],
    [enc({ t: Buffer.from('aa'), y: 'r', r: { id: ID, values: Buffer.alloc(6) } }), /values/],
    [enc({ t: Buffer.from('aa'), y: 'r', r: { id: ID, values: Array(300).fill(Buffer.alloc(6)) } }), /values/],
    [enc({ t: Buffer.from('aa'), y: 'e', e: 'oops' }), /error/],
  ];
  for (const [packet, reason] of bad) assert.match(krpcProblem(packet) ?? 'accepted', reason, packet.toString('latin1').slice(0, 60));
});

test('a live DHT node ignores hostile messages, keeps answering pings and keeps its tables bounded', async () => {
  const dht = new DhtDiscovery({ host: '127.0.0.1', port: 0, bootstrap: [], folders: () => [], announcePort: () => 1, onPeers: () => {} });
  await dht.open();
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const pongs: Buffer[] = [];
  socket.on('message', (m: Buffer) => pongs.push(m));
  const send = (packet: Buffer): Promise<void> => new Promise((r) => socket.send(packet, dht.port, '127.0.0.1', () => r()));
  try {
    // Each of these throws inside bittorrent-dht without the guard (e.g. info_hash.toString('hex') on a number).
    for (const packet of [
      query('get_peers', { info_hash: 42 }),
      query('announce_peer', { info_hash: HASH, token: 7, port: 1 }),
      query('find_node', { target: 5 }),
      query('put', { v: Buffer.alloc(999), token: Buffer.from('x') }),
      Buffer.from('d1:t2:aa1:y1:qe'),
      Buffer.from('l'.repeat(5000)),
    ]) await send(packet);
    // Hundreds of distinct "nodes" announcing themselves: the routing table stays k-bucket bounded.
    for (let i = 0; i < 400; i++) {
      const id = Buffer.alloc(20);
      id.writeUInt32BE(i * 7919, 0);
      await send(enc({ t: Buffer.from('bb'), y: 'q', q: 'ping', a: { id } }));
    }
    await send(query('ping', {}));
    await waitFor(async () => pongs.some((p) => p.includes(Buffer.from('1:y1:r'))), 'a pong');
    const report = dht.report() as { nodes: number; guard: { dropped: number } };
    assert.ok(report.guard.dropped >= 6, JSON.stringify(report.guard));
    assert.ok(report.nodes <= 160 * 20, `routing table bounded: ${report.nodes}`);
  } finally {
    socket.close();
    await dht.close();
  }
});

test('nodes handed over by the other family\'s DHT before this one started are joined through when it starts (BEP 32 hand-over)', async () => {
  const known = new DhtDiscovery({ host: '127.0.0.1', port: 0, bootstrap: [], folders: () => [], announcePort: () => 1, onPeers: () => {} });
  await known.open();
  const joiner = new DhtDiscovery({ host: '127.0.0.1', port: 0, bootstrap: [], folders: () => [], announcePort: () => 1, onPeers: () => {} });
  try {
    // The IPv4 DHT opens first and may meet IPv6 nodes before the IPv6 one has started: they must not be lost.
    joiner.addNodes([{ host: '127.0.0.1', port: known.port }, { host: '::1', port: 1 }]);
    await joiner.open();
    await waitFor(async () => joiner.nodeCount >= 1, 'the handed-over node in the routing table');
  } finally {
    await Promise.all([joiner.close(), known.close()]);
  }
});
