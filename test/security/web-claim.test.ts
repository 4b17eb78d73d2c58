// The hostile browser at first start (issue 25 item 1): before a password exists, whoever reaches the web port
// must not become the admin; names that are not this machine's (DNS rebinding) get 421.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonProcess, ferry, removeDir, tempDir } from '../helpers/daemon.js';
import { Client } from '../web/helpers.js';
import { lanAddress, lanSkip } from './helpers.js';

const PASSWORD = 'correct horse battery';

async function webPort(daemon: DaemonProcess): Promise<number> {
  const status = (await daemon.status()) as unknown as { web: string };
  return Number(/:(\d+)$/.exec(status.web)![1]);
}

describe('first start: the admin page cannot be claimed from the LAN', { skip: lanSkip() }, () => {
  let dir: string;
  let daemon: DaemonProcess;
  let port: number;
  let lan: string;

  before(async () => {
    lan = lanAddress()!;
    dir = await tempDir('claim');
    daemon = new DaemonProcess(join(dir, 'home'), ['--web', '0.0.0.0:0', '--web-host', 'nas.example.lan']);
    await daemon.ready();
    port = await webPort(daemon);
  });
  after(async () => {
    await daemon?.stop();
    await removeDir(dir);
  });

  test('a browser elsewhere is told a code is needed; setup without it or with a wrong one is refused', async () => {
    const stranger = new Client({ host: lan, port, localAddress: lan });
    const state = await stranger.send('GET', '/api/auth/state');
    assert.equal(state.status, 200);
    assert.deepEqual(state.body, { setup: true, loggedIn: false, codeRequired: true });
    const without = await stranger.login(PASSWORD, '/api/auth/setup');
    assert.equal(without.status, 403);
    assert.equal(without.body.error?.code, 'SETUP_CODE');
    assert.match(without.body.error!.message, /ferry admin setup-code/);
    const wrong = await stranger.send('POST', '/api/auth/setup', { body: { password: PASSWORD, code: 'AAAA-BBBB-CCCC-DDDD' }, csrf: null });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.body.error?.code, 'SETUP_CODE');
    assert.equal((await stranger.send('GET', '/api/status')).status, 401, 'no session came of it');
    assert.deepEqual((await stranger.send('GET', '/api/auth/state')).body, { setup: true, loggedIn: false, codeRequired: true });
  });

  test('a page reached by a name that is not this machine (DNS rebinding) gets 421', async () => {
    for (const host of ['evil.example', `evil.example:${port}`, `attacker.test:${port}`]) {
      const local = new Client({ host: '127.0.0.1', port });
      const page = await local.send('GET', '/', { headers: { host } });
      assert.equal(page.status, 421, host);
      const setup = await local.send('POST', '/api/auth/setup', { body: { password: PASSWORD }, csrf: null, headers: { host } });
      assert.equal(setup.status, 421, host);
      assert.equal(setup.body.error?.code, 'MISDIRECTED');
      assert.match(setup.body.error!.message, /webHosts/);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `${lan}:${port}`, `NAS.example.lan:${port}`, `[::1]:${port}`]) {
      assert.equal((await new Client({ host: '127.0.0.1', port }).send('GET', '/api/auth/state', { headers: { host } })).status, 200, host);
    }
  });

  test('the setup code: owner-only file in the home, `ferry admin setup-code`; with it the LAN browser sets the password', async () => {
    const file = join(daemon.home, 'admin-setup-code');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const code = (await readFile(file, 'utf8')).trim();
    assert.match(code, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
    const cli = await ferry(['admin', 'setup-code', '--home', daemon.home]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout.trim(), code);
    assert.match(daemon.log, new RegExp(code));

    const owner = new Client({ host: lan, port, localAddress: lan });
    // Typed by a person: lower case, without dashes.
    const setup = await owner.send('POST', '/api/auth/setup', { body: { password: PASSWORD, code: code.toLowerCase().replace(/-/g, '') }, csrf: null });
    assert.equal(setup.status, 200, JSON.stringify(setup.body));
    owner.csrf = setup.body.csrf as string;
    assert.equal((await owner.send('GET', '/api/status')).status, 200);
    assert.ok(!existsSync(file), 'the code is used up');
    const again = await ferry(['admin', 'setup-code', '--home', daemon.home]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /set already/);
    const late = await new Client({ host: lan, port, localAddress: lan }).send('POST', '/api/auth/setup', { body: { password: 'a later password', code }, csrf: null });
    assert.equal(late.status, 409);
  });
});

describe('first start on loopback and with a password file', () => {
  test('a browser on this machine needs no code', async () => {
    const dir = await tempDir('claim-local');
    const daemon = new DaemonProcess(join(dir, 'home'));
    try {
      await daemon.ready();
      const port = await webPort(daemon);
      const local = new Client({ host: '127.0.0.1', port });
      assert.deepEqual((await local.send('GET', '/api/auth/state')).body, { setup: true, loggedIn: false, codeRequired: false });
      assert.equal((await local.login(PASSWORD, '/api/auth/setup')).status, 200);
    } finally {
      await daemon.stop();
      await removeDir(dir);
    }
  });

  test('--admin-password-file: the password is set before the web port opens, the file is removed, no setup code is made', async () => {
    const dir = await tempDir('claim-file');
    const passwordFile = join(dir, 'admin-password.pending');
    await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
    const daemon = new DaemonProcess(join(dir, 'home'), ['--admin-password-file', passwordFile]);
    try {
      await daemon.ready();
      const port = await webPort(daemon);
      const local = new Client({ host: '127.0.0.1', port });
      assert.deepEqual((await local.send('GET', '/api/auth/state')).body, { setup: false, loggedIn: false });
      assert.equal((await local.login(PASSWORD)).status, 200);
      assert.ok(!existsSync(passwordFile), 'the plain-text password file is removed');
      assert.ok(!existsSync(join(daemon.home, 'admin-setup-code')));
      const cli = await ferry(['admin', 'setup-code', '--home', daemon.home]);
      assert.equal(cli.code, 1);
    } finally {
      await daemon.stop();
      await removeDir(dir);
    }
  });

  test('a password file with a password too short is reported, and the page stays guarded by the setup code', async () => {
    const dir = await tempDir('claim-badfile');
    const passwordFile = join(dir, 'admin-password.pending');
    await writeFile(passwordFile, 'short\n', { mode: 0o600 });
    const daemon = new DaemonProcess(join(dir, 'home'), ['--admin-password-file', passwordFile]);
    try {
      await daemon.ready();
      assert.match(daemon.log, /admin password file not used/);
      assert.ok(existsSync(join(daemon.home, 'admin-setup-code')));
      const port = await webPort(daemon);
      assert.equal((await new Client({ host: '127.0.0.1', port }).send('GET', '/api/auth/state')).body.setup, true);
    } finally {
      await daemon.stop();
      await removeDir(dir);
    }
  });
});
