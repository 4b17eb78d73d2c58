// A home moves between word sizes (issue 24): written by the armv7 executable, opened by the x64 and
// arm64 ones and back. LMDB files are not portable between 32-bit and 64-bit builds: the index is
// set aside and rebuilt from portable.json, with the device ID, folder keys and settings intact.
// And a backup made on armv7 restores on x64 with the same device ID.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { needs } from '../helpers/needs.js';
import { DistDaemon, command, needsEmulator, ok, runSync, tempDir, until } from './dist-helpers.js';

interface Status {
  device: { id: string };
  homeRecovered?: { problem: string; fromPortable: boolean };
  folders: Array<{ id: string; localFiles: number; state: string }>;
  knownPeers: Array<{ address: string }>;
}

const PEER = '127.0.0.1:9';

async function start(target: string, home: string): Promise<{ daemon: DistDaemon; status: Status }> {
  const daemon = new DistDaemon(target, home);
  try {
    await daemon.ready();
    // The folder is indexed again (a rebuilt index rescans it).
    const status = await until(`${target}: the folder indexed`, () => {
      const s = JSON.parse(ok(daemon.cli(['status', '--json']), 'status')) as Status;
      return s.folders[0]?.localFiles === 2 && s.folders[0].state === 'idle' ? s : undefined;
    });
    return { daemon, status };
  } catch (err) {
    await daemon.stop();
    throw new Error(`${(err as Error).message}\n${daemon.log}`);
  }
}

/** A CLI command of one target's executable on `home` (no daemon). */
function cli(target: string, home: string, args: string[]): string {
  const [cmd, argv] = command(target, [...args, '--home', home]);
  return ok(runSync(cmd, argv), `${target} ${args[0]}`);
}

function keysOf(daemon: DistDaemon, folder: string): string {
  return (JSON.parse(ok(daemon.cli(['keys', folder, '--json']), 'keys')) as { rw: string }).rw;
}

test('a home moves armv7 → x64 → arm64 → armv7: index rebuilt across word sizes, identity, keys and settings intact; a backup restores on x64', { skip: needs.all(needsEmulator('armv7'), needsEmulator('arm64')) }, async (t) => {
  const base = tempDir(t, 'ferry-dist-home-');
  const folder = join(base, 'folder');
  mkdirSync(folder);
  writeFileSync(join(folder, 'a.txt'), 'a');
  writeFileSync(join(folder, 'b.txt'), 'b');
  const home = join(base, 'home');

  const first = new DistDaemon('armv7', home);
  let rw: string;
  let deviceId: string;
  let folderId: string;
  try {
    await first.ready();
    const shared = JSON.parse(ok(first.cli(['share', folder, '--json']), 'share')) as { rw: string; folderId: string };
    ({ rw, folderId } = shared);
    ok(first.cli(['peers', 'add', PEER]), 'peers add');
    deviceId = (JSON.parse(ok(first.cli(['status', '--json']), 'status')) as Status).device.id;
  } finally {
    await first.stop();
  }

  const steps: Array<[string, string | undefined]> = [['x64', 'word-size'], ['arm64', undefined], ['armv7', 'word-size']];
  for (const [target, problem] of steps) {
    const before = readdirSync(home).filter((n) => n.startsWith('index-broken-')).length;
    const { daemon, status } = await start(target, home);
    try {
      assert.equal(status.device.id, deviceId, `${target}: device ID`);
      assert.equal(status.homeRecovered?.problem, problem, `${target}: ${JSON.stringify(status.homeRecovered)}`);
      if (problem) assert.equal(status.homeRecovered?.fromPortable, true);
      assert.equal(readdirSync(home).filter((n) => n.startsWith('index-broken-')).length, before + (problem ? 1 : 0), `${target}: old index kept aside`);
      assert.equal(keysOf(daemon, folderId), rw, `${target}: folder key`);
      assert.ok(status.knownPeers.some((k) => k.address === PEER), `${target}: the known peer (a setting)`);
    } finally {
      await daemon.stop();
    }
  }

  // Backup on armv7, restore into a new home on x64: the same device, the same folder key.
  const backupFile = join(base, 'backup.json');
  cli('armv7', home, ['backup', backupFile]);
  const restored = join(base, 'restored');
  cli('x64', restored, ['restore', '--backup', backupFile]);
  assert.ok(existsSync(join(restored, 'device', 'key.pem')));
  const { daemon, status } = await start('x64', restored);
  try {
    assert.equal(status.device.id, deviceId);
    assert.equal(keysOf(daemon, folderId), rw);
  } finally {
    await daemon.stop();
  }
});
