// A folder with no connected peer is looked up in the DHT every few minutes (here: scaled down),
// not only at the 15-minute announce. A scripted KRPC node on loopback
// answers and counts the get_peers queries.

import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import bencode from 'bencode';
import { DhtDiscovery } from '../../src/discovery/dht.js';
import { waitFor } from '../helpers/daemon.js';

const HASH = Buffer.alloc(20, 7);
const FOLDER = { folderId: HASH, folderIdHex: HASH.toString('hex') };

async function countLookups(hasPeers: boolean): Promise<{ lookups: () => number; stop: () => Promise<void> }> {
  const node = createSocket('udp4');
  await new Promise<void>((r) => node.bind(0, '127.0.0.1', r));
  let lookups = 0;
  const id = Buffer.alloc(20, 0x42);
  node.on('message', (buf, from) => {
    const message = bencode.decode(buf) as { t: Uint8Array; y: Uint8Array; q?: Uint8Array; a?: { info_hash?: Uint8Array } };
    if (Buffer.from(message.y).toString() !== 'q') return;
    const query = Buffer.from(message.q ?? []).toString();
    if (query === 'get_peers' && Buffer.from(message.a?.info_hash ?? []).equals(HASH)) lookups++;
    const r = { id, nodes: Buffer.alloc(0), ...(query === 'get_peers' ? { token: Buffer.from('tok') } : {}) };
    node.send(Buffer.from(bencode.encode({ t: message.t, y: 'r', r })), from.port, from.address);
  });
  const dht = new DhtDiscovery({
    host: '127.0.0.1', port: 0, bootstrap: [`127.0.0.1:${node.address().port}`], folders: () => [FOLDER], announcePort: () => 22100,
    onPeers: () => undefined, hasPeers: () => hasPeers, lonelyLookupMs: 150,
  });
  await dht.open();
  return {
    lookups: () => lookups,
    stop: async () => {
      await dht.close();
      await new Promise<void>((r) => node.close(() => r()));
    },
  };
}

test('a folder without a connected peer is looked up again and again, not only at its announce', async () => {
  const lonely = await countLookups(false);
  try {
    await waitFor(async () => lonely.lookups() >= 4, 'repeated lookups of the lonely folder');
  } finally {
    await lonely.stop();
  }
});
