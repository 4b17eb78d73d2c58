// Web sessions are signed with a key kept in the home: a restart keeps the owner logged in (issue 21, live
// settings), a logout or a password change still ends them for good, and a forged token gets nowhere.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DaemonProcess, removeDir, tempDir } from '../helpers/daemon.js';
import { Client } from '../web/helpers.js';

const PASSWORD = 'correct horse battery';

async function started(home: string): Promise<{ daemon: DaemonProcess; port: number }> {
  const daemon = new DaemonProcess(home);
  await daemon.ready();
  const status = (await daemon.status()) as unknown as { web: string };
  return { daemon, port: Number(/:(\d+)$/.exec(status.web)![1]) };
}

/** The same browser (cookie and CSRF token) against a daemon on a new port. */
function sameBrowser(client: Client, port: number): Client {
  const next = new Client({ host: '127.0.0.1', port });
  next.cookie = client.cookie;
  next.csrf = client.csrf;
  return next;
}

test('a session outlives a daemon restart; logout ends it across restarts; a forged token is refused', async () => {
  const dir = await tempDir('sessions');
  const home = join(dir, 'home');
  let { daemon, port } = await started(home);
  try {
    const owner = new Client({ host: '127.0.0.1', port });
    assert.equal((await owner.login(PASSWORD, '/api/auth/setup')).status, 200);
    const other = new Client({ host: '127.0.0.1', port });
    assert.equal((await other.login(PASSWORD)).status, 200);
    await daemon.stop();
    ({ daemon, port } = await started(home));

    let again = sameBrowser(owner, port);
    assert.equal((await again.send('GET', '/api/status')).status, 200, 'still logged in after the restart');
    assert.equal((await again.send('PUT', '/api/settings', { body: { archiveDays: 7 } })).status, 200, 'the CSRF token still holds');
    const state = await again.send('GET', '/api/auth/state');
    assert.deepEqual(state.body, { setup: false, loggedIn: true, csrf: owner.csrf });

    const forged = sameBrowser(owner, port);
    forged.cookie = owner.cookie.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    assert.equal((await forged.send('GET', '/api/status')).status, 401);

    assert.equal((await sameBrowser(other, port).send('POST', '/api/auth/logout')).status, 200);
    await daemon.stop();
    ({ daemon, port } = await started(home));
    assert.equal((await sameBrowser(other, port).send('GET', '/api/status')).status, 401, 'a logout holds across a restart');
    again = sameBrowser(owner, port);
    assert.equal((await again.send('GET', '/api/status')).status, 200);
    const changed = await again.send('POST', '/api/auth/password', { body: { current: PASSWORD, password: 'a brand new password' } });
    assert.equal(changed.status, 200);
    const old = sameBrowser(owner, port);
    old.cookie = owner.cookie;
    assert.equal((await old.send('GET', '/api/status')).status, 401, 'a password change ends older sessions');
  } finally {
    await daemon.stop();
    await removeDir(dir);
  }
});
