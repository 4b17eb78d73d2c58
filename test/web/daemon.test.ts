// The admin API on a real daemon through its control socket: pause/resume, archive, settings (validated, persisted), log, set-password.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../../src/cli/client.js';
import { isFerryError } from '../../src/errors.js';
import type { ArchiveListing, SettingsReport, StatusReport } from '../../src/web/daemon-api.js';
import { DaemonProcess, MAIN, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { Client } from './helpers.js';

let root: string;
let daemon: DaemonProcess;
let control: ControlClient;

function setPassword(home: string, input: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'admin', 'set-password', '--home', home], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
    child.stdin.end(input);
  });
}

before(async () => {
  root = await tempDir('web-daemon');
  daemon = new DaemonProcess(join(root, 'home'));
  await daemon.ready();
  control = new ControlClient(daemon.home);
});

after(async () => {
  await daemon?.stop();
  await removeDir(root);
});

test('ferry admin set-password: needs a running daemon, checks the length, then the web login takes the password', async () => {
  const none = await setPassword(join(root, 'no-daemon'), 'long enough password\n');
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no Ferry daemon is running/);
  const short = await setPassword(daemon.home, 'short\n');
  assert.equal(short.code, 2);
  assert.match(short.stderr, /at least 8 characters/);
  assert.equal((await setPassword(daemon.home, 'long enough password\n')).code, 0);
  const status = await control.call<StatusReport>('GET', '/status');
  const [host, port] = [status.web!.slice(0, status.web!.lastIndexOf(':')), Number(status.web!.slice(status.web!.lastIndexOf(':') + 1))];
  const web = new Client({ host, port });
  assert.equal((await web.login('wrong password')).status, 401);
  assert.equal((await web.login('long enough password')).status, 200);
  assert.equal((await web.send('GET', '/api/status')).status, 200);
});

test('pause and resume a folder; archive list and restore; bad archive paths are refused', async () => {
  const dir = join(root, 'docs');
  await mkdir(dir);
  await writeFile(join(dir, 'a.txt'), 'a');
  const keys = JSON.parse((await ferry(['share', dir, '--json', '--home', daemon.home])).stdout) as { folderId: string };
  const folder = async () => (await control.call<StatusReport>('GET', '/status')).folders.find((f) => f.id === keys.folderId)!;
  await waitFor(async () => (await folder()).localFiles === 1, 'the first scan');

  await control.call('POST', `/folders/${keys.folderId}/pause`);
  assert.equal((await folder()).state, 'paused');
  await control.call('POST', `/folders/${keys.folderId}/resume`);
  assert.notEqual((await folder()).state, 'paused');

  // An overwritten file lands in the archive when the folder's own archive keeps it; here we put one there by hand.
  const archived = join(dir, '.ferry', 'archive', 'old.txt~20260101-120000-000');
  await mkdir(join(dir, '.ferry', 'archive'), { recursive: true });
  await writeFile(archived, 'old');
  const listing = await control.call<ArchiveListing>('GET', `/folders/${keys.folderId}/archive`);
  assert.deepEqual(listing.files.map((f) => [f.path, f.archivePath, f.size]), [['old.txt', 'old.txt~20260101-120000-000', 3]]);
  for (const bad of ['../../etc/passwd~20260101-120000-000', 'old.txt', '/old.txt~20260101-120000-000']) {
    await assert.rejects(control.call('POST', `/folders/${keys.folderId}/archive/restore`, { archivePath: bad }), (err) => isFerryError(err, 'USAGE'));
  }
  const restored = await control.call<{ restored: string }>('POST', `/folders/${keys.folderId}/archive/restore`, {
    archivePath: 'old.txt~20260101-120000-000',
  });
  assert.equal(restored.restored, 'old.txt');
  await waitFor(async () => (await folder()).localFiles === 2, 'the restored file to be scanned');
  assert.deepEqual(await control.call('POST', `/folders/${keys.folderId}/archive/purge`, { olderThanDays: 0 }), { purged: 0 });
  await rm(dir, { recursive: true, force: true }).catch(() => undefined);
});

test('settings: bad values are refused naming the setting; good ones persist across a restart', async () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ archiveDays: -1 }, /^archiveDays must be a whole number/],
    [{ archiveDays: 1.5 }, /^archiveDays/],
    [{ uploadKBps: 'fast' }, /^uploadKBps/],
    [{ web: 'localhost' }, /^web must be HOST:PORT/],
    [{ listen: '0.0.0.0:0' }, /^listen needs a port/],
    [{ lan: 'yes' }, /^lan must be true or false/],
    [{ trackerUrls: ['ftp://x/announce'] }, /^trackerUrls entries must be/],
    [{ deviceName: '' }, /^deviceName/],
    [{ colour: 'red' }, /unknown setting 'colour'/],
    [{ webHosts: ['nas.lan:8888'] }, /^webHosts entries must be host names or addresses without a port/],
    [{ webHosts: 'nas.lan' }, /^webHosts must be a list/],
    [{ massDeleteFiles: -5 }, /^massDeleteFiles must be a whole number/],
  ];
  for (const [patch, message] of bad) {
    await assert.rejects(control.call('PUT', '/settings', patch), (err) => isFerryError(err, 'USAGE') && message.test(err.message), JSON.stringify(patch));
  }
  const report = await control.call<SettingsReport>('PUT', '/settings', {
    archiveDays: 30, uploadKBps: 512, deviceName: 'nas', trackerUrls: ['udp://127.0.0.1:6969/announce'],
    webHosts: ['NAS.example.lan', '[fd00::5]'], massDeleteFiles: 250,
  });
  assert.deepEqual(report.settings.webHosts, ['nas.example.lan', '[fd00::5]']);
  assert.equal(report.settings.massDeleteFiles, 250);
  assert.equal(report.settings.archiveDays, 30);
  // Applied to the running daemon at once: nothing waits for a restart.
  assert.equal(report.restartRequired, false);
  assert.deepEqual([report.running.archiveDays, report.running.uploadKBps, report.running.deviceName], [30, 512, 'nas']);
  assert.equal(((await control.call<StatusReport>('GET', '/status')).device.name), 'nas', 'the device name in status too');
  assert.ok(report.overridden.includes('web'), 'the test daemon runs with --web');
  assert.equal(report.overriddenBy?.web, '--web');
  assert.equal(report.overriddenBy?.lan, '--no-lan');
  // The addresses bind sockets: they are stored and wait for the next start.
  const moved = await control.call<SettingsReport>('PUT', '/settings', { listen: '127.0.0.1:45123' });
  assert.deepEqual([moved.restartRequired, moved.restartFor], [false, []], 'the test daemon runs with --listen, which wins');
  const lines = await control.call<{ lines: string[] }>('GET', '/log?lines=50');
  assert.ok(lines.lines.some((line) => line.includes('settings changed')), 'the change is in the log tail');

  await daemon.stop();
  daemon = new DaemonProcess(daemon.home);
  await daemon.ready();
  const again = await control.call<SettingsReport>('GET', '/settings');
  assert.deepEqual(
    [again.settings.archiveDays, again.settings.uploadKBps, again.settings.deviceName, again.running.archiveDays, again.running.massDeleteFiles, again.running.webHosts],
    [30, 512, 'nas', 30, 250, ['nas.example.lan', '[fd00::5]']],
  );
});
