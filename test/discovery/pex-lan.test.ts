// Peer exchange between devices behind one external address: a public peer passes each one's LAN
// addresses (which it learned from that device's own entry) to the others behind the same
// address, and to nobody else; a device tells public peers its own LAN addresses.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConnectedPeer } from '../../src/discovery/peer-address.js';
import { PeerExchange } from '../../src/discovery/pex.js';
import type { Message } from '../../src/protocol/index.js';

const FOLDER = Buffer.alloc(20, 9);
const id = (c: string): string => c.repeat(52);
function peer(device: string, address: string, direction: 'in' | 'out'): ConnectedPeer {
  return {
    deviceId: device,
    address,
    direction,
    connection: { closed: false, send: async () => undefined },
    handshake: { folders: [{ keys: { folderId: FOLDER, folderIdHex: FOLDER.toString('hex') } }] },
  };
}

test('a public peer passes LAN addresses on only to devices behind the same external address', () => {
  // Seen from public device Z: A and B both come from 203.0.113.5 (one home router), D from elsewhere.
  const a = peer(id('A'), '203.0.113.5:40000', 'out');
  const b = peer(id('B'), '203.0.113.5:51234', 'in');
  const d = peer(id('D'), '198.51.100.7:22100', 'out');
  const peers = [a, b, d];
  const learned: string[] = [];
  const pex = new PeerExchange({ deviceId: id('Z'), peers: () => peers, listenPort: () => 22100, onAddress: (_f, address) => learned.push(address) });
  // A's PeerExchange names A itself with its LAN addresses (a loopback and a link-local one are refused).
  pex.receive(a, { type: 'PeerExchange', folderId: FOLDER, listenPort: 22100, peers: [{ device: id('A'), addresses: ['192.168.1.10:22100', '127.0.0.1:22100', '169.254.3.3:22100'] }] });
  assert.deepEqual(learned, [], 'Z dials none of them: they are A\'s LAN');
  const toB = pex.build(b, FOLDER, peers).peers.find((e) => e.device === id('A'));
  assert.deepEqual(toB?.addresses, ['203.0.113.5:40000', '203.0.113.5:22100', '192.168.1.10:22100']);
  const toD = pex.build(d, FOLDER, peers).peers.find((e) => e.device === id('A'));
  assert.deepEqual(toD?.addresses, ['203.0.113.5:40000', '203.0.113.5:22100']);
});

test('a device tells public peers its own LAN addresses, LAN peers not', () => {
  const pub = peer(id('P'), '198.51.100.7:22100', 'out');
  const neighbour = peer(id('N'), '192.168.1.11:22100', 'out');
  const pex = new PeerExchange({ deviceId: id('A'), peers: () => [pub, neighbour], listenPort: () => 22100, onAddress: () => {}, lanAddresses: () => ['192.168.1.10:22100'] });
  const toPublic: Message = pex.build(pub, FOLDER, [pub, neighbour]);
  assert.deepEqual(toPublic.peers.find((e) => e.device === id('A'))?.addresses, ['192.168.1.10:22100']);
  assert.equal(pex.build(neighbour, FOLDER, [pub, neighbour]).peers.some((e) => e.device === id('A')), false);
});
