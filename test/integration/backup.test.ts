// `ferry backup FILE` → wipe the home → `ferry restore --backup FILE`: the same device ID, and the
// folder rejoins its peer.

import assert from 'node:assert/strict';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, shareBetween, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';

describe('backup and restore of a home', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let dirA: string;
  let dirB: string;
  let homeB: string;
  let rw: string;
  let deviceB: string;
  let backupFile: string;

  async function inSync(daemon: DaemonProcess, files: number): Promise<StatusJson> {
    return waitFor(async () => {
      const status = await daemon.status();
      const folder = status.folders[0];
      const connected = folder?.peers.some((p) => (p as { connected: boolean }).connected);
      return folder && folder.state === 'idle' && folder.needFiles === 0 && folder.localFiles === files && connected ? status : undefined;
    }, 'the folder to be in sync with a connected peer');
  }

  before(async () => {
    base = await tempDir('backup');
    dirA = join(base, 'a-folder');
    dirB = join(base, 'b-folder');
    homeB = join(base, 'home-b');
    backupFile = join(base, 'backup.json');
    await mkdir(dirA);
    await mkdir(dirB);
    await writeFile(join(dirA, 'one.txt'), 'one');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(homeB);
    await Promise.all([a.ready(), b.ready()]);
    ({ rw } = await shareBetween(a, dirA, b, dirB));
    deviceB = (await inSync(b, 1)).device.id;
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('backup writes an owner-only file and says it is secret', async () => {
    const result = await ferry(['backup', backupFile, '--home', homeB]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /SECRET/);
    assert.match(result.stdout, new RegExp(deviceB));
    assert.equal((await stat(backupFile)).mode & 0o777, 0o600);
    const data = JSON.parse(await readFile(backupFile, 'utf8')) as { device: { id: string; keyPem: string }; folders: Array<{ key: string }> };
    assert.equal(data.device.id, deviceB);
    assert.match(data.device.keyPem, /PRIVATE KEY/);
    assert.deepEqual(data.folders.map((f) => f.key), [rw]);
  });

  test('restore refuses a home that is not empty', async () => {
    const running = await ferry(['restore', '--backup', backupFile, '--home', join(base, 'home-a')]);
    assert.equal(running.code, 1);
    assert.match(running.stderr, /already runs on home/);
    const other = join(base, 'home-c');
    await mkdir(join(other, 'device'), { recursive: true });
    await writeFile(join(other, 'device', 'key.pem'), 'another device');
    const occupied = await ferry(['restore', '--backup', backupFile, '--home', other]);
    assert.equal(occupied.code, 2, occupied.stderr);
    assert.match(occupied.stderr, /not an empty home \(it has a device identity\)/);
    assert.equal(await readFile(join(other, 'device', 'key.pem'), 'utf8'), 'another device');
  });

  test('wipe the home, restore: same device ID, the folder rejoins and syncs', async () => {
    await b.stop();
    await rm(homeB, { recursive: true });
    const restored = await ferry(['restore', '--backup', backupFile, '--home', homeB]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal((await stat(join(homeB, 'device', 'key.pem'))).mode & 0o777, 0o600);
    b = new DaemonProcess(homeB);
    await b.ready();
    const status = await inSync(b, 1);
    assert.equal(status.device.id, deviceB);
    await writeFile(join(dirA, 'two.txt'), 'two');
    await waitFor(async () => (await readFile(join(dirB, 'two.txt'), 'utf8').catch(() => '')) === 'two', 'a new file from the peer');
    const keys = await ferry(['keys', status.folders[0]!.id, '--json', '--home', homeB]);
    assert.equal((JSON.parse(keys.stdout) as { rw: string }).rw, rw);
  });
});
