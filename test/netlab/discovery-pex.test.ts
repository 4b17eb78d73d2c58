// Peer exchange between real daemons on loopback: A knows only B, B knows C; A ends up connected
// to C because B told it where C is.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { FerryNode, join, share } from './discovery-lab.js';

describe('peer exchange', () => {
  let base: string;
  const nodes: FerryNode[] = [];

  before(async () => {
    base = await tempDir('pex');
  });

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    if (process.env.FERRY_TEST_LOGS) for (const node of nodes) process.stderr.write(node.log.split('\n').filter((l) => /conn|pex|exchange|dropping/.test(l)).join("\n") + "\n====\n");
    await removeDir(base);
  });

  test('A knows only B, B knows C: A ends up connected to C', async () => {
    for (const name of ['a', 'b', 'c']) {
      await mkdir(joinPath(base, `dir-${name}`), { recursive: true });
      nodes.push(new FerryNode(joinPath(base, `home-${name}`), { listen: '127.0.0.1:0', args: ['--no-lan', '--no-dht', '--no-trackers'] }));
    }
    await Promise.all(nodes.map((node) => node.ready()));
    const [a, b, c] = nodes as [FerryNode, FerryNode, FerryNode];
    const [, sb, sc] = await Promise.all(nodes.map((node) => node.status()));
    const { rw } = await share(a, joinPath(base, 'dir-a'));
    await join(b, rw, joinPath(base, 'dir-b'));
    await join(c, rw, joinPath(base, 'dir-c'));
    assert.equal((await a.cli(['peers', 'add', sb!.listen])).code, 0);
    assert.equal((await b.cli(['peers', 'add', sc!.listen])).code, 0);

    const toC = await waitFor(async () => (await a.connectedPeers()).find((p) => p.device === sc!.device.id), 'A to connect to C', 60_000);
    // B told A where C is (and C where A is: both may dial, and one connection is kept).
    assert.match(toC.source, /^(pex|incoming)$/);
    const status = await a.status();
    const book = status.services.discovery.addressBook[status.folders[0]!.id] ?? [];
    assert.ok(book.some((e) => e.address === sc!.listen && e.source === 'pex'), JSON.stringify(book));
    assert.ok(book.every((e) => e.source === 'pex'));
    assert.ok(((await b.status()).services.discovery.pex as { sent: number }).sent >= 1);
  });
});
