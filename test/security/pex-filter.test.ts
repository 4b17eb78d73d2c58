// A hostile peer's PeerExchange pointing us at "any address" or at ourselves is not dialled (issue 25, low).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConnectedPeer } from '../../src/discovery/peer-address.js';
import { PeerExchange } from '../../src/discovery/pex.js';

const FOLDER = Buffer.alloc(20, 7);
const id = (c: string): string => c.repeat(52);
const from: ConnectedPeer = {
  deviceId: id('A'),
  address: '203.0.113.5:50000',
  direction: 'in',
  connection: { closed: false, send: async () => undefined },
  handshake: { folders: [{ keys: { folderId: FOLDER, folderIdHex: FOLDER.toString('hex') } }] },
};

test('0.0.0.0, [::], mapped forms and our own addresses at our port are refused; others are learned', () => {
  const learned: string[] = [];
  const pex = new PeerExchange({
    deviceId: id('Z'),
    peers: () => [],
    listenPort: () => 22100,
    ownAddresses: () => new Set(['192.168.1.9', '2001:db8::9', '127.0.0.1', '::1']),
    onAddress: (_folder, address) => learned.push(address),
  });
  pex.receive(from, {
    type: 'PeerExchange',
    folderId: FOLDER,
    listenPort: 22100,
    peers: [
      { device: id('B'), addresses: ['0.0.0.0:22100', '[::]:22100', '[::ffff:0.0.0.0]:22100', '0.1.2.3:22100', '[0:0:0:0:0:0:0:0]:1'] },
      { device: id('C'), addresses: ['192.168.1.9:22100', '[2001:db8::9]:22100', '192.168.1.9:22101', '198.51.100.7:22100'] },
    ],
  });
  assert.deepEqual(learned, ['192.168.1.9:22101', '198.51.100.7:22100']);
  assert.equal(pex.counters.addressesRefused, 7);
});
