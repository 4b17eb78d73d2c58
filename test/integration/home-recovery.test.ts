// A home whose index cannot be used (truncated, garbage, another schema) is set aside, rebuilt from
// portable.json, the folder on disk and the peer: same device ID and keys, the folder syncs again
// without fetching the data it holds. A home from before portable.json gets one written.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { open as openLmdb } from 'lmdb';
import { DaemonProcess, ferry, removeDir, shareBetween, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';

const BIG_BYTES = 3 * 1024 * 1024;

interface Status extends StatusJson {
  homeRecovered?: { problem: string; setAside: string; fromPortable: boolean };
  folders: Array<StatusJson['folders'][number] & { peers: Array<{ connected: boolean; bytesIn?: number }> }>;
}

describe('home recovery', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let dirA: string;
  let dirB: string;
  let homeB: string;
  let deviceB: string;
  let rw: string;

  async function synced(daemon: DaemonProcess, files: number): Promise<Status> {
    return waitFor(async () => {
      const status = (await daemon.status()) as Status;
      const folder = status.folders[0];
      return folder && folder.state === 'idle' && folder.needFiles === 0 && folder.localFiles === files && folder.peers.some((p: { connected: boolean }) => p.connected) ? status : undefined;
    }, 'the folder to be in sync with a connected peer');
  }

  async function portable(): Promise<{ device?: { id: string }; folders: Array<{ key: string }>; settings: Record<string, unknown> }> {
    return JSON.parse(await readFile(join(homeB, 'portable.json'), 'utf8'));
  }

  /** Stops b, damages its index with `damage`, starts it again: rebuilt, same identity and key, synced without fetching the data. */
  async function recoverAfter(problem: string, damage: (dataFile: string) => Promise<void>): Promise<void> {
    await b.stop();
    const before = (await readdir(homeB)).filter((n) => n.startsWith('index-broken-'));
    await damage(join(homeB, 'index', 'data.mdb'));
    b = new DaemonProcess(homeB);
    await b.ready();
    const status = await synced(b, 3);
    assert.equal(status.device.id, deviceB);
    assert.equal(status.homeRecovered?.problem, problem, JSON.stringify(status.homeRecovered));
    assert.equal(status.homeRecovered?.fromPortable, true);
    const aside = (await readdir(homeB)).filter((n) => n.startsWith('index-broken-') && !before.includes(n));
    assert.equal(aside.length, 1, `one index set aside: ${aside.join(', ')}`);
    assert.ok(existsSync(join(homeB, aside[0]!, 'data.mdb')), 'the old index is kept');
    assert.match(b.log, /home index could not be used: set aside and rebuilt from portable.json/);
    const keys = await ferry(['keys', status.folders[0]!.id, '--json', '--home', homeB]);
    assert.equal(keys.code, 0, keys.stderr);
    assert.equal((JSON.parse(keys.stdout) as { rw: string }).rw, rw);
    // The data it holds is not fetched again: the link carried indexes, not the 3 MiB file.
    const bytesIn = (status.folders[0]!.peers as Array<{ connected: boolean; bytesIn?: number }>).find((p) => p.connected)!.bytesIn ?? 0;
    assert.ok(bytesIn < BIG_BYTES / 4, `received ${bytesIn} bytes after the rebuild`);
    assert.equal((await stat(join(dirB, 'big.bin'))).size, BIG_BYTES);
  }

  before(async () => {
    base = await tempDir('home-recovery');
    dirA = join(base, 'a-folder');
    dirB = join(base, 'b-folder');
    homeB = join(base, 'home-b');
    await mkdir(dirA);
    await mkdir(dirB);
    await writeFile(join(dirA, 'big.bin'), randomBytes(BIG_BYTES));
    await writeFile(join(dirA, 'one.txt'), 'one');
    await writeFile(join(dirA, 'two.txt'), 'two');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(homeB);
    await Promise.all([a.ready(), b.ready()]);
    ({ rw } = await shareBetween(a, dirA, b, dirB));
    deviceB = (await synced(b, 3)).device.id;
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('portable.json is owner-only and holds the identity, the folder key and the known peer', async () => {
    const { mode } = await stat(join(homeB, 'portable.json'));
    assert.equal(mode & 0o777, 0o600);
    const home = await portable();
    assert.equal(home.device?.id, deviceB);
    assert.deepEqual(home.folders.map((f) => f.key), [rw]);
    assert.ok(Array.isArray(home.settings.knownPeers) && home.settings.knownPeers.length === 1);
  });

  test('a home without portable.json gets one on start', async () => {
    await b.stop();
    await rm(join(homeB, 'portable.json'));
    b = new DaemonProcess(homeB);
    await b.ready();
    const status = await synced(b, 3);
    assert.equal(status.homeRecovered, undefined);
    assert.deepEqual((await portable()).folders.map((f) => f.key), [rw]);
  });

  test('a truncated data.mdb', async () => {
    await recoverAfter('truncated', async (file) => truncate(file, Math.floor((await stat(file)).size / 2)));
  });

  test('a data.mdb of garbage', async () => {
    await recoverAfter('garbage', async (file) => writeFile(file, randomBytes((await stat(file)).size)));
  });

  test('an index of another schema', async () => {
    await recoverAfter('schema', async (file) => {
      const env = openLmdb({ path: join(file, '..'), maxDbs: 32 });
      await env.openDB({ name: 'meta', useRecords: false } as { name: string }).put('schemaVersion', 999);
      await env.close();
    });
  });
});
