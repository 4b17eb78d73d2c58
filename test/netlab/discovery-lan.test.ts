// LAN discovery on a real bridged LAN (netlab lan.sh, root only): three daemons in three namespaces
// find each other by broadcast/multicast alone and sync a folder, with no address typed in.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { FerryNode, join, labDown, labUp, share, type LabEnv } from './discovery-lab.js';

const PREFIX = 'fdlan';

describe('LAN discovery', { skip: needs.netlab(['ss', 'iproute2']) }, () => {
  let lab: LabEnv;
  let base: string;
  const nodes: FerryNode[] = [];

  before(async () => {
    labDown('lan.sh', PREFIX); // a lab left by a killed run
    lab = labUp('lan.sh', PREFIX, ['3']);
    base = await tempDir('lan');
  });

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    labDown('lan.sh', PREFIX);
    await removeDir(base);
  });

  test('three daemons find each other by broadcast and sync a folder with no known hosts', async () => {
    for (const name of ['a', 'b', 'c']) await mkdir(joinPath(base, `dir-${name}`), { recursive: true });
    await writeFile(joinPath(base, 'dir-a', 'hello.txt'), 'found you on the LAN\n');
    for (const [i, name] of ['a', 'b', 'c'].entries()) {
      const node = new FerryNode(joinPath(base, `home-${name}`), {
        ns: lab[`NETLAB_LAN_H${i + 1}_NS`]!,
        listen: `${lab[`NETLAB_LAN_H${i + 1}_ADDR`]}:22100`,
        args: ['--no-dht', '--no-trackers'],
      });
      nodes.push(node);
    }
    await Promise.all(nodes.map((node) => node.ready()));
    const [a, b, c] = nodes as [FerryNode, FerryNode, FerryNode];
    const { rw } = await share(a, joinPath(base, 'dir-a'));
    await join(b, rw, joinPath(base, 'dir-b'));
    await join(c, rw, joinPath(base, 'dir-c'));

    for (const name of ['b', 'c']) {
      await waitFor(
        async () => (await readFile(joinPath(base, `dir-${name}`, 'hello.txt'), 'utf8').catch(() => '')) === 'found you on the LAN\n',
        `the file to reach ${name}`,
        90_000,
      );
    }
    // Everyone is connected to both others, through addresses heard on the LAN.
    for (const node of nodes) {
      const peers = await waitFor(async () => {
        const connected = await node.connectedPeers();
        return connected.length === 2 ? connected : undefined;
      }, 'two connected peers', 90_000);
      for (const peer of peers) assert.match(peer.source, /^(lan|incoming)$/, JSON.stringify(peer));
      assert.deepEqual((await node.status()).services.discovery.lan !== undefined, true);
    }
    // Each pair's connection was dialled by one end from a LAN address.
    const lanSources = (await Promise.all(nodes.map((n) => n.connectedPeers()))).flat().filter((p) => p.source === 'lan');
    assert.ok(lanSources.length >= 3, `every pair found over the LAN: ${JSON.stringify(lanSources)}`);
    // IPv4, or the IPv6 link-local address with its zone (the hosts hear each other both ways).
    for (const peer of lanSources) assert.match(peer.address, /^(10\.231\.0\.\d+|\[fe80::[0-9a-f:]+%eth0\]):22100$/);
    const book = (await a.status()).services.discovery.addressBook['*'] ?? [];
    assert.deepEqual(
      book.map((e) => e.address).filter((address) => !address.startsWith('[fe80:')).sort(),
      [`${lab.NETLAB_LAN_H2_ADDR}:22100`, `${lab.NETLAB_LAN_H3_ADDR}:22100`],
    );
  });
});
