// Peer exchange: what is told to whom (bounded, no private addresses to a public peer), what is
// believed, and the PeerExchange validator.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import type { ConnectedPeer } from '../../src/discovery/peer-address.js';
import { PeerExchange } from '../../src/discovery/pex.js';
import { decodeMessage, encodeMessage, type Message } from '../../src/protocol/index.js';

const FOLDER = Buffer.alloc(20, 9);
const id = (c: string): string => c.repeat(52);
function peer(device: string, address: string, direction: 'in' | 'out', sent: Message[] = []): ConnectedPeer {
  return {
    deviceId: device,
    address,
    direction,
    connection: { closed: false, send: async (m) => void sent.push(m) },
    handshake: { folders: [{ keys: { folderId: FOLDER, folderIdHex: FOLDER.toString('hex') } }] },
  };
}

test('a peer hears of the folder\'s other connected devices; a public peer never of private addresses', async () => {
  const sentToPublic: Message[] = [];
  const peers = [
    peer(id('A'), '203.0.113.5:50000', 'in', sentToPublic),
    peer(id('B'), '192.168.1.20:22100', 'out'),
    peer(id('C'), '198.51.100.7:22100', 'out'),
    peer(id('D'), '10.0.0.4:41000', 'in'),
  ];
  const pex = new PeerExchange({ deviceId: id('Z'), peers: () => peers, listenPort: () => 22100, onAddress: () => {} });
  await pex.open();
  pex.tick();
  await pex.close();
  assert.equal(sentToPublic.length, 1);
  const message = sentToPublic[0] as Extract<Message, { type: 'PeerExchange' }>;
  assert.deepEqual(message.peers, [{ device: id('C'), addresses: ['198.51.100.7:22100'] }]);
  assert.equal(message.listenPort, 22100);
  // The private peer hears of both outgoing addresses; incoming ones have no listen port yet.
  const toPrivate = pex.build(peers[1]!, FOLDER, peers);
  assert.deepEqual(toPrivate.peers.map((e) => e.device), [id('C')]);
  assert.deepEqual(pex.build(peers[3]!, FOLDER, peers).peers.map((e) => e.device), [id('B'), id('C')]);
});

test('what a peer tells us is believed within bounds: not ourselves, not it, not our loopback', () => {
  const learned: string[] = [];
  const pex = new PeerExchange({ deviceId: id('Z'), peers: () => [], listenPort: () => 1, onAddress: (_f, a, d) => learned.push(`${d[0]} ${a}`) });
  const from = peer(id('A'), '203.0.113.5:50000', 'in');
  pex.receive(from, {
    type: 'PeerExchange',
    folderId: FOLDER,
    listenPort: 22100,
    peers: [
      { device: id('Z'), addresses: ['1.1.1.1:1'] },
      { device: id('A'), addresses: ['1.1.1.2:1'] },
      { device: id('B'), addresses: ['127.0.0.1:22', '[FE80::1]:9', '[fe80::2%eth0]:9', '8.8.8.8:22100'] },
    ],
  });
  assert.deepEqual(learned, ['B [fe80::1]:9', 'B 8.8.8.8:22100']);
  // A's own listen port is remembered and passed on to others.
  const b = peer(id('B'), '198.51.100.9:22100', 'out');
  assert.deepEqual(pex.build(b, FOLDER, [from, b]).peers, [{ device: id('A'), addresses: ['203.0.113.5:22100'] }]);
});

test('the PeerExchange validator refuses names, bad ports and too many entries', () => {
  const roundTrip = (m: Message): Message => {
    const frame = encodeMessage(m);
    return decodeMessage(frame.type, frame.body);
  };
  const good: Message = { type: 'PeerExchange', folderId: FOLDER, listenPort: 0, peers: [{ device: id('B'), addresses: ['10.0.0.1:22100', '[::1]:5'] }] };
  assert.deepEqual(roundTrip(good), good);
  for (const addresses of [['nas.local:22100'], ['10.0.0.1:0'], ['10.0.0.1:70000'], ['[10.0.0.1]:5'], ['999.1.1.1:5'], ['fe80::1:5']]) {
    assert.throws(() => roundTrip({ ...good, peers: [{ device: id('B'), addresses }] } as Message), (err: unknown) => isFerryError(err, 'PROTOCOL'), addresses[0]);
  }
  const many = Array.from({ length: 65 }, () => ({ device: id('B'), addresses: [] }));
  assert.throws(() => roundTrip({ ...good, peers: many } as Message), (err: unknown) => isFerryError(err, 'PROTOCOL'));
  assert.throws(() => roundTrip({ ...good, listenPort: 70000 } as Message), (err: unknown) => isFerryError(err, 'PROTOCOL'));
});
