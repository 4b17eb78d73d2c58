// The sync port's UDP socket on the IPv4 wildcard (the default listen address) also carries IPv6
// (issue 19): an IPv6-only sibling socket on the same port number, so a peer's global IPv6 address
// is reached from the sync port, and µTP connects over it end to end (here on ::1).

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import { UdpSocket, UtpEndpoint } from '../../src/transport/index.js';

async function hasIpv6Loopback(): Promise<boolean> {
  const probe = createSocket({ type: 'udp6', ipv6Only: true });
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(0, '::1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    probe.close();
  }
}

const ipv6 = await hasIpv6Loopback();
// CI machines have ::1; a local container without IPv6 skips, saying so.
const skip = ipv6 ? false : (process.env.CI ? false : 'no IPv6 loopback here');

test('a 0.0.0.0 socket receives and answers IPv6 datagrams on the same port number', { skip }, async () => {
  const socket = new UdpSocket({ host: '0.0.0.0', port: 0 });
  await socket.open();
  const peer = createSocket({ type: 'udp6', ipv6Only: true });
  try {
    assert.equal(socket.ipv6, true);
    await new Promise<void>((resolve) => peer.bind(0, '::1', () => resolve()));
    const seen = new Promise<{ buf: Buffer; from: { address: string; port: number } }>((resolve) =>
      socket.handle((buf) => buf[0] === 0x42, (buf, from) => resolve({ buf, from })),
    );
    peer.send(Buffer.from('Bhello'), socket.address().port, '::1');
    const { buf, from } = await seen;
    assert.equal(buf.toString(), 'Bhello');
    assert.equal(from.address, '::1');
    assert.equal(from.port, peer.address().port);
    // The answer leaves from the sync port number, over IPv6.
    const answer = once(peer, 'message') as Promise<[Buffer, { address: string; port: number }]>;
    socket.send(Buffer.from('reply'), from.port, from.address);
    const [reply, rinfo] = await answer;
    assert.equal(reply.toString(), 'reply');
    assert.equal(rinfo.port, socket.address().port);
    // IPv4 still goes out of the IPv4 socket.
    const peer4 = createSocket('udp4');
    await new Promise<void>((resolve) => peer4.bind(0, '127.0.0.1', () => resolve()));
    const answer4 = once(peer4, 'message') as Promise<[Buffer, { address: string; port: number }]>;
    socket.send(Buffer.from('four'), peer4.address().port, '127.0.0.1');
    assert.equal((await answer4)[1].port, socket.address().port);
    peer4.close();
  } finally {
    peer.close();
    await socket.close();
  }
});

test('µTP connects between two 0.0.0.0 sockets over IPv6 and carries data both ways', { skip }, async () => {
  const a = new UdpSocket({ host: '0.0.0.0', port: 0 });
  const b = new UdpSocket({ host: '0.0.0.0', port: 0 });
  await Promise.all([a.open(), b.open()]);
  const ea = new UtpEndpoint(a);
  const eb = new UtpEndpoint(b);
  try {
    const accepted = once(eb, 'connection') as Promise<[import('../../src/transport/index.js').UtpConnection]>;
    const dialled = await ea.connect({ address: '::1', port: b.address().port }, { timeoutMs: 10_000 });
    dialled.write(Buffer.from('over six'));
    const [server] = await accepted;
    const [chunk] = (await once(server, 'data')) as [Buffer];
    assert.equal(chunk.toString(), 'over six');
    assert.equal(server.remote.address, '::1');
    assert.equal(server.remote.port, a.address().port);
    server.write(Buffer.from('and back'));
    const [back] = (await once(dialled, 'data')) as [Buffer];
    assert.equal(back.toString(), 'and back');
    dialled.destroy();
    server.destroy();
  } finally {
    ea.close();
    eb.close();
    await Promise.all([a.close(), b.close()]);
  }
});
