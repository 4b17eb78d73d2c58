// LAN discovery over IPv6 link-local alone (netlab lan.sh, root only): two daemons in two namespaces
// whose LAN has no IPv4 at all find each other by ff12::4652 multicast and connect to `[fe80::…%eth0]`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { FerryNode, join, labDown, labUp, share, type LabEnv } from './discovery-lab.js';

const PREFIX = 'fdlan6';

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('LAN discovery over IPv6 link-local', { skip: needs.netlab(['ss', 'iproute2']) }, () => {
  let lab: LabEnv;
  let base: string;
  const nodes: FerryNode[] = [];

  before(async () => {
    labDown('lan.sh', PREFIX); // a lab left by a killed run
    lab = labUp('lan.sh', PREFIX, ['2']);
    base = await tempDir('lan6');
    for (const i of [1, 2]) {
      const ns = lab[`NETLAB_LAN_H${i}_NS`]!;
      // No IPv4 on the LAN: no address, no route, so every IPv4 announcement fails to leave.
      ip('-n', ns, '-4', 'addr', 'flush', 'dev', 'eth0');
      ip('-n', ns, '-4', 'route', 'flush', 'dev', 'eth0');
    }
    // The link-local addresses must be past duplicate address detection to send from.
    await waitFor(
      async () => [1, 2].every((i) => ip('-n', lab[`NETLAB_LAN_H${i}_NS`]!, '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'link', 'tentative').trim() === ''),
      'link-local addresses past DAD',
      30_000,
    );
  });

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    labDown('lan.sh', PREFIX);
    await removeDir(base);
  });

  test('two daemons find each other by IPv6 multicast and sync over a zoned link-local address', async () => {
    for (const name of ['a', 'b']) await mkdir(joinPath(base, `dir-${name}`), { recursive: true });
    await writeFile(joinPath(base, 'dir-a', 'hello.txt'), 'found you on fe80::/10\n');
    for (const [i, name] of ['a', 'b'].entries()) {
      const ns = lab[`NETLAB_LAN_H${i + 1}_NS`]!;
      assert.doesNotMatch(ip('-n', ns, '-4', 'addr', 'show', 'dev', 'eth0'), /inet /);
      nodes.push(new FerryNode(joinPath(base, `home-${name}`), { ns, listen: '[::]:22100', args: ['--no-dht', '--no-trackers'] }));
    }
    await Promise.all(nodes.map((node) => node.ready()));
    const [a, b] = nodes as [FerryNode, FerryNode];
    const { rw } = await share(a, joinPath(base, 'dir-a'));
    await join(b, rw, joinPath(base, 'dir-b'));

    await waitFor(
      async () => (await readFile(joinPath(base, 'dir-b', 'hello.txt'), 'utf8').catch(() => '')) === 'found you on fe80::/10\n',
      'the file to reach b',
      90_000,
    );
    const peers = (await Promise.all(nodes.map((n) => n.connectedPeers()))).flat();
    const lan = peers.filter((p) => p.source === 'lan');
    assert.ok(lan.length >= 1, `dialled from a LAN address: ${JSON.stringify(peers)}`);
    for (const peer of lan) assert.match(peer.address, /^\[fe80::[0-9a-f:]+%eth0\]:22100$/);
  });
});
