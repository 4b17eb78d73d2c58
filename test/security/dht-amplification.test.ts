// DHT replies to an address that has made no round trip are no larger than the query (issue 25, low: replies were 10–22× the query).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { test } from 'node:test';
import bencode from 'bencode';
import { DhtDiscovery } from '../../src/discovery/dht.js';
import { waitFor } from '../helpers/daemon.js';

const enc = (value: unknown): Buffer => Buffer.from(bencode.encode(value));

/** Sends `packet` and resolves with the first reply carrying its transaction id. */
function ask(socket: Socket, port: number, packet: Buffer, t: Buffer): Promise<Buffer> {
  return new Promise((resolve) => {
    const onMessage = (reply: Buffer): void => {
      const message = bencode.decode(reply) as { t?: Uint8Array };
      if (message.t && Buffer.from(message.t).equals(t)) {
        socket.off('message', onMessage);
        resolve(reply);
      }
    };
    socket.on('message', onMessage);
    socket.send(packet, port, '127.0.0.1');
  });
}

test('find_node and get_peers from an unproven address: replies no larger than the query; after a round trip, full ones', async () => {
  const hub = new DhtDiscovery({ host: '127.0.0.1', port: 0, bootstrap: [], folders: () => [], announcePort: () => 1, onPeers: () => {} });
  await hub.open();
  const others = Array.from({ length: 6 }, () => new DhtDiscovery({ host: '127.0.0.1', port: 0, bootstrap: [`127.0.0.1:${hub.port}`], folders: () => [], announcePort: () => 1, onPeers: () => {} }));
  const socket = createSocket('udp4');
  try {
    await Promise.all(others.map((node) => node.open()));
    // The hub knows the other nodes (they joined through it).
    await waitFor(async () => ((hub.report() as { nodes?: number }).nodes ?? 0) >= 3 || undefined, 'the hub to know other nodes');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    // Answer the hub's pings (the round trip that proves our address).
    const myId = randomBytes(20);
    socket.on('message', (packet: Buffer, rinfo) => {
      const message = bencode.decode(packet) as { y?: Uint8Array; q?: Uint8Array; t?: Uint8Array };
      if (message.y && Buffer.from(message.y).toString() === 'q') socket.send(enc({ t: message.t, y: 'r', r: { id: myId } }), rinfo.port, rinfo.address);
    });
    const t1 = Buffer.from('q1');
    const findNode = enc({ t: t1, y: 'q', q: 'find_node', a: { id: myId, target: randomBytes(20) } });
    const first = await ask(socket, hub.port, findNode, t1);
    assert.ok(first.length <= findNode.length, `reply of ${first.length} bytes to a query of ${findNode.length}`);
    const t2 = Buffer.from('q2');
    const getPeers = enc({ t: t2, y: 'q', q: 'get_peers', a: { id: myId, info_hash: randomBytes(20) } });
    const second = await ask(socket, hub.port, getPeers, t2);
    assert.ok(second.length <= getPeers.length, `reply of ${second.length} bytes to a query of ${getPeers.length}`);

    // Once we answered the hub's ping, our address is proven: replies carry nodes again.
    await waitFor(async () => {
      const t = randomBytes(2);
      const reply = await ask(socket, hub.port, enc({ t, y: 'q', q: 'find_node', a: { id: myId, target: randomBytes(20) } }), t);
      const r = (bencode.decode(reply) as { r?: { nodes?: Uint8Array } }).r;
      return (r?.nodes?.length ?? 0) > 0 || undefined;
    }, 'full replies after the round trip');
  } finally {
    socket.close();
    await Promise.all(others.map((node) => node.close()));
    await hub.close();
  }
});
