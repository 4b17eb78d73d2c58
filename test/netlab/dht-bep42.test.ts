// BEP 42 against a real third-party DHT (Debian's python3-libtorrent): inside a namespace of its own
// (addresses from TEST-NET-2, 198.51.100.0/24, on its loopback only: nothing leaves it), a Ferry
// daemon bootstraps from three libtorrent DHT nodes. Their replies carry `ip` (what they saw us at);
// three distinct responders agree, so status shows the address with source `dht`, and the DHT node
// ID is re-keyed to one valid for that address per BEP 42.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { validNodeId } from '../../src/discovery/bep42.js';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { FerryNode } from './discovery-lab.js';
import { LIBTORRENT_DHT_PORT, LibtorrentDht } from './libtorrent-dht.js';

const NS = 'fv6b42-dht';
const FERRY_IP = '198.51.100.1';
const NODES = ['198.51.100.2', '198.51.100.3', '198.51.100.4'];
const DHT_PORT = LIBTORRENT_DHT_PORT;

describe('BEP 42 with libtorrent DHT nodes', { skip: needs.all(needs.netlab(), needs.python(['libtorrent', 'python3-libtorrent'])) }, () => {
  let base: string;
  const dht = new LibtorrentDht(NS);
  let ferry: FerryNode | undefined;

  before(async () => {
    await dht.start([FERRY_IP, ...NODES], NODES.map((ip) => [ip]));
    base = await tempDir('bep42');
  });

  after(async () => {
    await ferry?.stop();
    await dht.close();
    if (base) await removeDir(base);
  });

  test('three libtorrent responders agree on our address: status shows it (source dht) and the node ID follows it', async () => {
    ferry = new FerryNode(`${base}/home`, {
      ns: NS,
      listen: `${FERRY_IP}:0`,
      args: ['--no-lan', '--no-trackers', ...NODES.flatMap((ip) => ['--dht-bootstrap', `${ip}:${DHT_PORT}`])],
    });
    await ferry.ready();
    type Status = { listen: string; external?: Array<{ address: string; source: string }>; services: { discovery: { dht: { nodeId: string; port: number } } } };
    const status = (await waitFor(async () => {
      const s = (await ferry!.status()) as unknown as Status;
      return s.external?.some((e) => e.source === 'dht') && validNodeId(Buffer.from(s.services.discovery.dht.nodeId, 'hex'), FERRY_IP) ? s : undefined;
    }, 'the DHT-learned address and a BEP 42 node ID', 60_000)) as Status;
    const port = status.services.discovery.dht.port;
    assert.deepEqual(status.external!.filter((e) => e.source === 'dht').map((e) => e.address), [`${FERRY_IP}:${port}`]);
    assert.match(ferry.log, /DHT node ID follows the external address/);
    // Our ID is valid for the agreed address, and the responders' IDs were checked (counted, not enforced;
    // libtorrent's own were all valid in the runs here: it follows BEP 42 too).
    const dht = (await ferry.status()).services.discovery.dht as unknown as { nodeIdValid: boolean; bep42: { responders: number; invalid: number } };
    assert.equal(dht.nodeIdValid, true);
    assert.ok(dht.bep42.responders >= 3, JSON.stringify(dht.bep42));
  });
});
