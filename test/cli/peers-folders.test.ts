// `ferry peers list|remove` and `ferry folders list` end to end: two real daemons, the CLI as a user runs it.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AddedPeerReport, PeerInfo } from '../../src/web/daemon-api.js';
import { DaemonProcess, ferry, removeDir, shareBetween, tempDir, waitFor } from '../helpers/daemon.js';

let base: string;
let a: DaemonProcess;
let b: DaemonProcess;
let folderId: string;
let listenA: string;

before(async () => {
  base = await tempDir('cli-peers');
  await mkdir(join(base, 'dir-a'));
  await mkdir(join(base, 'dir-b'));
  await writeFile(join(base, 'dir-a', 'one.txt'), 'one\n');
  a = new DaemonProcess(join(base, 'home-a'));
  b = new DaemonProcess(join(base, 'home-b'));
  await Promise.all([a.ready(), b.ready()]);
  ({ folderId } = await shareBetween(a, join(base, 'dir-a'), b, join(base, 'dir-b')));
  listenA = ((await a.status()) as unknown as { listen: string }).listen;
});

after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await removeDir(base);
});

async function listJson(home: string): Promise<{ added: AddedPeerReport[]; connected: PeerInfo[] }> {
  const result = await ferry(['peers', 'list', '--json', '--home', home]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as { added: AddedPeerReport[]; connected: PeerInfo[] };
}

test('peers list shows the added address connected, with the device behind it, and the connected device', async () => {
  const deviceA = (await a.status()).device.id;
  const listed = await waitFor(async () => {
    const list = await listJson(b.home);
    return list.added[0]?.connected && list.connected.length === 1 ? list : undefined;
  }, 'b to list a connected');
  assert.deepEqual(listed.added, [{ address: listenA, deviceId: deviceA, connected: true }]);
  assert.equal(listed.connected[0]!.device, deviceA);
  assert.deepEqual(listed.connected[0]!.folders, [folderId]);

  const text = await ferry(['peers', 'list', '--home', b.home]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`added addresses:\\n  ${listenA.replace(/\./g, '\\.')}  connected  device ${deviceA}\\n`));
  assert.match(text.stdout, new RegExp(`connected devices:\\n  .+  ${deviceA}  .+ \\(dialled, found by known, tcp over IPv4\\)  1 folder\\n`));
  // status names this device, its sync address, what it is seen at from outside and the port mapping
  const status = await ferry(['status', '--home', b.home]);
  const deviceB = (await b.status()).device;
  assert.match(status.stdout, new RegExp(`^device  ${deviceB.name}  ${deviceB.id}\nlisten  127\\.0\\.0\\.1:\\d+  \\(tcp 127\\.0\\.0\\.1:\\d+; udp 127\\.0\\.0\\.1:\\d+\\)\\n`));
  assert.match(status.stdout, /\nseen at  no external address known yet\nport mapping  off\n/, 'the test daemons run with --no-nat on loopback');
  // a was dialled, it added nothing
  assert.match((await ferry(['peers', 'list', '--home', a.home])).stdout, /^no addresses added \(ferry peers add HOST:PORT\)\nconnected devices:\n/);
});

test('folders list shows each folder with its access, state and peers; --json for scripts', async () => {
  const json = await waitFor(async () => {
    const result = await ferry(['folders', 'list', '--json', '--home', b.home]);
    assert.equal(result.code, 0, result.stderr);
    const { folders } = JSON.parse(result.stdout) as { folders: Array<{ id: string; path: string; access: string; state: string; localFiles: number; peersConnected: number }> };
    return folders[0]?.localFiles === 1 && folders[0].peersConnected === 1 ? folders : undefined;
  }, 'b to hold the file with a connected');
  assert.equal(json.length, 1);
  assert.deepEqual([json[0]!.id, json[0]!.path, json[0]!.access], [folderId, join(base, 'dir-b'), 'rw']);
  const text = await ferry(['folders', 'list', '--home', b.home]);
  assert.match(text.stdout, new RegExp(`^${folderId}  rw  \\w+  ${join(base, 'dir-b').replace(/[.]/g, '\\.')}\\n  1 files, 4 B; 1 peer connected\\n$`));
  const empty = new DaemonProcess(join(base, 'home-empty'));
  try {
    await empty.ready();
    assert.equal((await ferry(['folders', 'list', '--home', empty.home])).stdout, 'no folders shared yet (ferry share DIR, or ferry join KEY DIR)\n');
  } finally {
    await empty.stop();
  }
});

test('peers remove forgets an address (by address or by device ID); unknown ones and bad input are errors', async () => {
  const deviceA = (await a.status()).device.id;
  const removed = await ferry(['peers', 'remove', listenA, '--home', b.home]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, new RegExp(`^removed ${listenA.replace(/\./g, '\\.')}: it is no longer dialled`));
  assert.deepEqual((await listJson(b.home)).added, []);

  const again = await ferry(['peers', 'remove', listenA, '--home', b.home]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /no added peer address is .+ \(none is added; 'ferry peers list' shows them\)/);

  // Added again, then removed by the start of the device ID once it answered there.
  assert.equal((await ferry(['peers', 'add', listenA, '--home', b.home])).code, 0);
  await waitFor(async () => (await listJson(b.home)).added[0]?.deviceId === deviceA, 'the device behind the address to be known');
  const byDevice = await ferry(['peers', 'remove', deviceA.slice(0, 8), '--home', b.home]);
  assert.equal(byDevice.code, 0, byDevice.stderr);
  assert.deepEqual((await listJson(b.home)).added, []);

  const bad = await ferry(['peers', 'remove', 'not an address!', '--home', b.home]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /give an added address \(HOST:PORT\) or a device ID/);
  const none = await ferry(['peers', 'remove', '--home', b.home]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /usage: ferry peers remove HOST:PORT\|DEVICE/);
  const help = await ferry(['peers', 'remove', '--help']);
  assert.match(help.stdout, /example.*:\n  ferry peers remove 192\.168\.1\.20:22100/s);
});
