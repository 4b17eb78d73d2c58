// The IPv6 DHT's translating socket (dht6.ts): nodes6 and 18-byte values become IPv4 stand-ins for
// bittorrent-dht on the way in and real IPv6 on the way out; queries ask want n6; the table is bounded.

import assert from 'node:assert/strict';
import type { RemoteInfo } from 'node:dgram';
import { test } from 'node:test';
import bencode from 'bencode';
import { Ipv6DhtSocket, StandIns, type Datagrams6 } from '../../src/discovery/dht6.js';
import { ipBytes } from '../../src/discovery/bep42.js';

type Dict = Record<string, unknown>;
const port2 = (port: number): Buffer => Buffer.from([port >> 8, port & 0xff]);

function harness() {
  const sent: Array<{ message: Dict; port: number; host: string }> = [];
  let deliver: (buf: Buffer, from: { address: string; port: number }) => void = () => undefined;
  const inner: Datagrams6 = {
    send: (buf, port, host) => sent.push({ message: bencode.decode(buf) as Dict, port, host }),
    onMessage: (handler) => (deliver = handler),
    address: () => ({ address: '::', port: 6881 }),
    close: () => undefined,
  };
  const socket = new Ipv6DhtSocket(inner, 8);
  const received: Array<{ message: Dict; rinfo: RemoteInfo }> = [];
  socket.on('message', (buf: Buffer, rinfo: RemoteInfo) => received.push({ message: bencode.decode(buf) as Dict, rinfo }));
  return { socket, sent, received, deliver: (m: Dict, address: string, port: number) => deliver(Buffer.from(bencode.encode(m)), { address, port }) };
}

test('a reply with nodes6 and IPv6 values reaches the library as IPv4 stand-ins, and goes back out as the real addresses', () => {
  const h = harness();
  const id = Buffer.alloc(20, 9);
  const nodes6 = Buffer.concat([Buffer.alloc(20, 1), ipBytes('2001:db8::2')!, port2(6881), Buffer.alloc(20, 2), ipBytes('2001:db8::3')!, port2(6882)]);
  const values = [Buffer.concat([ipBytes('2001:db8::10')!, port2(22100)])];
  // A reply nobody asked for: passed on without nodes or values (no stand-ins made for a stranger's list).
  h.deliver({ t: Buffer.from('zz'), y: 'r', r: { id, nodes6, values } }, '2001:db8::4', 6881);
  assert.deepEqual(Object.keys(h.received[0]!.message.r as Dict), ['id']);
  assert.equal(h.socket.standIns.size, 1);
  h.received.length = 0;
  // Our get_peers to it, then its reply.
  const ask = bencode.encode({ t: Buffer.from('aa'), y: 'q', q: 'get_peers', a: { id, info_hash: Buffer.alloc(20, 3) } });
  h.socket.send(Buffer.from(ask), 0, ask.length, 6881, '2001:db8::4', () => undefined);
  h.sent.length = 0;
  h.deliver({ t: Buffer.from('aa'), y: 'r', r: { id, nodes6, nodes: Buffer.alloc(26, 7), values, token: Buffer.from('tok') } }, '2001:db8::4', 6881);
  assert.equal(h.received.length, 1);
  const { message, rinfo } = h.received[0]!;
  assert.equal(rinfo.family, 'IPv4');
  assert.match(rinfo.address, /^240\./);
  assert.equal(h.socket.standIns.real(rinfo.address), '2001:db8::4');
  const r = message.r as Dict;
  const nodes = Buffer.from(r.nodes as Uint8Array);
  // Only the two IPv6 nodes, as 26-byte entries with stand-ins; the IPv4 `nodes` of the reply dropped.
  assert.equal(nodes.length, 52);
  assert.equal(r.nodes6, undefined);
  const fake1 = `${nodes[20]}.${nodes[21]}.${nodes[22]}.${nodes[23]}`;
  assert.equal(h.socket.standIns.real(fake1), '2001:db8::2');
  assert.equal(nodes.readUInt16BE(24), 6881);
  const value = Buffer.from((r.values as Uint8Array[])[0]!);
  assert.equal(value.length, 6);
  assert.equal(h.socket.standIns.real(`${value[0]}.${value[1]}.${value[2]}.${value[3]}`), '2001:db8::10');
  assert.equal(value.readUInt16BE(4), 22100);

  // Our reply to a stand-in: sent to the real address, nodes as nodes6, values as 18 bytes.
  const reply = bencode.encode({ t: Buffer.from('bb'), y: 'r', r: { id, nodes: nodes.subarray(0, 26), values: [value] } });
  h.socket.send(Buffer.from(reply), 0, reply.length, 6881, rinfo.address, () => undefined);
  const out = h.sent[0]!;
  assert.equal(out.host, '2001:db8::4');
  const outR = out.message.r as Dict;
  assert.equal(outR.nodes, undefined);
  assert.deepEqual(Buffer.from(outR.nodes6 as Uint8Array), nodes6.subarray(0, 38));
  assert.deepEqual(Buffer.from((outR.values as Uint8Array[])[0]!), values[0]);

  // A query asks for IPv6 nodes (BEP 32 want n6).
  const query = bencode.encode({ t: Buffer.from('cc'), y: 'q', q: 'get_peers', a: { id, info_hash: Buffer.alloc(20, 3) } });
  h.socket.send(Buffer.from(query), 0, query.length, 6882, fake1, () => undefined);
  assert.equal(h.sent[1]!.host, '2001:db8::2');
  assert.deepEqual((h.sent[1]!.message.a as Dict).want, [Buffer.from('n4'), Buffer.from('n6')].map((b) => new Uint8Array(b)));
});

test('a send to an unknown stand-in fails; IPv4 senders are not this DHT\'s', () => {
  const h = harness();
  let error: Error | null = null;
  const ping = bencode.encode({ t: Buffer.from('aa'), y: 'q', q: 'ping', a: { id: Buffer.alloc(20) } });
  h.socket.send(Buffer.from(ping), 0, ping.length, 1, '240.9.9.9', (err) => (error = err));
  return new Promise<void>((resolve) => setImmediate(() => {
    assert.match(String(error), /no IPv6 address/);
    assert.equal(h.sent.length, 0);
    h.deliver({ t: Buffer.from('aa'), y: 'q', q: 'ping', a: { id: Buffer.alloc(20) } }, '10.0.0.1', 1);
    assert.equal(h.received.length, 0);
    resolve();
  }));
});

test('stand-ins: stable per address, bounded (the least recently used goes)', () => {
  const table = new StandIns(3);
  const a = table.fake('2001:db8::a');
  assert.equal(table.fake('2001:db8::a'), a);
  table.fake('2001:db8::b');
  table.fake('2001:db8::c');
  table.fake('2001:db8::a'); // a is now the most recent
  table.fake('2001:db8::d'); // b goes
  assert.equal(table.size, 3);
  assert.equal(table.real(a), '2001:db8::a');
  assert.equal([...['b', 'c', 'd']].filter((x) => table.real(table.fake(`2001:db8::${x}`)) === `2001:db8::${x}`).length, 3);
  assert.equal(table.real('10.0.0.1'), undefined);
  assert.equal(table.real('nonsense'), undefined);
});
