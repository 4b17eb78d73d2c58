// Real daemons on loopback: a large file written into a shared folder is announced block by block while the sender hashes it (Hashing), the receiver's copy is identical, and no byte travels twice.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DaemonProcess, removeDir, shareBetween, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';

const SIZE = 48 * 1024 * 1024 + 4321;
let base: string | undefined;
const daemons: DaemonProcess[] = [];

after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  if (base) await removeDir(base);
});

type FolderJson = Omit<StatusJson['folders'][number], 'peers'> & {
  peers: Array<{ connected: boolean; bytesIn: number }>;
  prefetch?: { announcements: number; dropped: number; bytesFetched: number; bytesAdopted: number; reasons: unknown[] };
};

test('a large file is announced while it is hashed; the receiver prefetches, adopts and fetches nothing twice', async () => {
  base = await tempDir('streaming');
  const a = new DaemonProcess(join(base, 'home-a'));
  const b = new DaemonProcess(join(base, 'home-b'));
  daemons.push(a, b);
  await Promise.all([a.ready(), b.ready()]);
  const dirA = join(base, 'a');
  await mkdir(dirA);
  await shareBetween(a, dirA, b, join(base, 'b'));
  const folderB = async (): Promise<FolderJson | undefined> => (await b.status()).folders[0] as FolderJson | undefined;
  const connected = await waitFor(async () => {
    const folder = await folderB();
    return folder?.state === 'idle' && folder.peers.some((p) => p.connected) ? folder : undefined;
  }, 'B connected to A with the empty folder');
  const bytesBefore = connected.peers.find((p) => p.connected)!.bytesIn;
  // Moved in whole while both run (a file still being written would be hashed again under a new tag):
  // the watcher finds it, the scanner hashes it and announces its blocks as it goes.
  const content = randomBytes(SIZE);
  await writeFile(join(base, 'big.bin'), content);
  await rename(join(base, 'big.bin'), join(dirA, 'big.bin'));
  const done = await waitFor(async () => {
    const folder = await folderB();
    return folder?.localFiles === 1 && folder.localBytes === SIZE && folder.needFiles === 0 ? folder : undefined;
  }, 'B to have the file', 120_000);
  const copy = await readFile(join(base, 'b', 'big.bin'));
  assert.equal(createHash('sha256').update(copy).digest('hex'), createHash('sha256').update(content).digest('hex'));
  const prefetch = done.prefetch;
  assert.ok(prefetch && prefetch.announcements > 0, `B heard the file's hashes before its record: ${JSON.stringify(prefetch)}`);
  assert.equal(prefetch.dropped, 0, JSON.stringify(prefetch.reasons));
  assert.equal(prefetch.bytesAdopted, prefetch.bytesFetched, 'every prefetched byte was adopted');
  const received = done.peers.find((p) => p.connected)!.bytesIn - bytesBefore;
  const story = b.log.split('\n').filter((line) => /prefetch|adopted|announcement|block request failed|mismatch|peer attached|pulled|installed/i.test(line)).slice(-40).join('\n');
  assert.ok(received >= SIZE && received < SIZE * 1.02, `bytes received ≈ the file's size, none twice (${received} for ${SIZE}; ${JSON.stringify(prefetch)})\n${story}`);
});
