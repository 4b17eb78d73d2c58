// The .deb packages (make dist-check, as root): lintian, the unit, and the amd64 package's install, run as its user, upgrade, remove and purge.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs } from '../helpers/needs.js';
import { DIST, VERSION, ok, runSync, tempDir, until } from './dist-helpers.js';

const DEBS = readdirSync(DIST).filter((f) => f.endsWith('.deb')).map((f) => join(DIST, f));
const AMD64 = join(DIST, `ferry_${VERSION}_amd64.deb`);

test('lintian finds no errors in any .deb', { skip: needs.command('lintian') }, () => {
  assert.equal(DEBS.length, 3, DEBS.join(', '));
  const result = runSync('lintian', ['--allow-root', '--tag-display-limit', '0', ...DEBS], { timeoutMs: 600_000 });
  const errors = result.stdout.split('\n').filter((line) => line.startsWith('E:'));
  assert.deepEqual(errors, [], result.stdout);
});

test('an ARM .deb is refused on this amd64 machine with a clear reason', () => {
  const result = runSync('dpkg', ['--dry-run', '-i', join(DIST, `ferry_${VERSION}_arm64.deb`)]);
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /package architecture \(arm64\) does not match system \(amd64\)/);
});

function installed(): boolean {
  return runSync('dpkg-query', ['-W', '-f=${Status}', 'ferry']).stdout.includes('install ok installed');
}

/** Starts the daemon by hand as the package's user, as the unit would; returns a stop function and its status. */
async function runAsService(folder?: string): Promise<{ status: { device: { id: string }; folders: Array<{ path: string }> }; stop: () => Promise<void> }> {
  const env = ['env', 'FERRY_NATIVE_CACHE=/var/cache/ferry/native'];
  const child = spawn('runuser', ['-u', 'ferry', '--', ...env, '/usr/bin/ferry', 'run', '--home', '/var/lib/ferry',
    '--listen', '127.0.0.1:0', '--web', '127.0.0.1:0', '--no-lan', '--no-nat', '--no-dht', '--no-trackers'], { stdio: 'ignore' });
  const cli = (args: string[]) => runSync('runuser', ['-u', 'ferry', '--', ...env, '/usr/bin/ferry', ...args, '--home', '/var/lib/ferry']);
  await until('the service answers', () => (cli(['status']).status === 0 ? true : undefined), 60_000);
  if (folder) ok(cli(['share', folder]), 'share');
  const status = JSON.parse(ok(cli(['status', '--json']), 'status')) as { device: { id: string }; folders: Array<{ path: string }> };
  const stop = async (): Promise<void> => {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  return { status, stop };
}

/** The same package with a higher version, to upgrade to. */
function newerDeb(dir: string): string {
  const root = join(dir, 'root');
  ok(runSync('dpkg-deb', ['-R', AMD64, root]), 'dpkg-deb -R');
  const control = join(root, 'DEBIAN', 'control');
  writeFileSync(control, readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${VERSION}.1`));
  const out = join(dir, 'newer.deb');
  ok(runSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z1', '--build', root, out]), 'dpkg-deb --build');
  return out;
}

test('the amd64 .deb installs, runs as its user, upgrades keeping keys, index and settings, and purges', { skip: needs.all(needs.root(), needs.command('systemd-analyze', 'systemd')) }, async (t) => {
  assert.ok(existsSync(AMD64));
  t.after(() => {
    if (installed() || runSync('dpkg-query', ['-W', 'ferry']).status === 0) runSync('dpkg', ['-P', 'ferry']);
  });
  const dir = tempDir(t);
  ok(runSync('dpkg', ['-i', AMD64]), 'dpkg -i');
  const user = ok(runSync('getent', ['passwd', 'ferry']), 'getent').trim().split(':');
  assert.equal(user[5], '/var/lib/ferry');
  assert.match(user[6]!, /nologin|false/);
  assert.ok(Number(user[2]) < 1000, 'a system user');
  const home = statSync('/var/lib/ferry');
  assert.equal(home.uid, Number(user[2]));
  assert.equal(home.mode & 0o777, 0o700);
  ok(runSync('systemd-analyze', ['verify', '/lib/systemd/system/ferry.service']), 'systemd-analyze verify');

  const folder = join(dir, 'music');
  mkdirSync(folder);
  writeFileSync(join(folder, 'song.txt'), 'la la');
  chownSync(dir, Number(user[2]), Number(user[3]));
  chownSync(folder, Number(user[2]), Number(user[3]));
  const before = await runAsService(folder);
  await before.stop();
  assert.equal(before.status.folders.length, 1);
  appendFileSync('/etc/ferry/ferry.env', '# kept across upgrades\n');

  ok(runSync('dpkg', ['--force-confold', '-i', newerDeb(dir)]), 'dpkg -i (upgrade)');
  assert.equal(runSync('dpkg-query', ['-W', '-f=${Version}', 'ferry']).stdout, `${VERSION}.1`);
  assert.match(readFileSync('/etc/ferry/ferry.env', 'utf8'), /# kept across upgrades/);
  const after = await runAsService();
  await after.stop();
  assert.equal(after.status.device.id, before.status.device.id, 'same device key');
  assert.deepEqual(after.status.folders.map((f) => f.path), [folder], 'same folders and index');

  ok(runSync('dpkg', ['-r', 'ferry']), 'dpkg -r');
  assert.ok(!existsSync('/usr/bin/ferry'));
  assert.ok(existsSync('/var/lib/ferry/device'), 'remove keeps the home');
  ok(runSync('dpkg', ['-P', 'ferry']), 'dpkg -P');
  assert.ok(!existsSync('/var/lib/ferry'), 'purge deletes the home');
  assert.ok(!existsSync('/etc/ferry'), 'purge deletes /etc/ferry');
  assert.notEqual(runSync('getent', ['passwd', 'ferry']).status, 0, 'purge deletes the user');
});
