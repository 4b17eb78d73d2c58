// Ordinary events log one short line, never a stack: a browser tab closed while its event stream is open (issue 21).

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DaemonProcess, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { Client } from './helpers.js';

const PASSWORD = 'a long enough admin password';
let root: string;
let daemon: DaemonProcess;

before(async () => {
  root = await tempDir('quiet-log');
  const passwordFile = join(root, 'password');
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  daemon = new DaemonProcess(join(root, 'home'), ['--admin-password-file', passwordFile]);
  await daemon.ready();
});

after(async () => {
  await daemon?.stop();
  await removeDir(root);
});

test('a closed tab (event stream cut mid-answer) logs one short line and no stack trace', async () => {
  const web = ((await daemon.status()) as unknown as { web: string }).web;
  const [host, port] = [web.slice(0, web.lastIndexOf(':')), Number(web.slice(web.lastIndexOf(':') + 1))];
  const client = new Client({ host, port });
  const login = await client.login(PASSWORD);
  assert.equal(login.status, 200, JSON.stringify(login.body));
  // The page's event stream: read its first frame, then go away as a closed tab does.
  await new Promise<void>((resolve, reject) => {
    const req = request({ host, port, path: '/api/events', headers: { cookie: client.cookie, accept: 'text/event-stream' } }, (res) => {
      assert.equal(res.statusCode, 200);
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    req.end();
  });
  await waitFor(async () => daemon.log.includes('client went away mid-answer'), 'the daemon to note the closed stream');
  const line = daemon.log.split('\n').find((l) => l.includes('client went away mid-answer'))!;
  assert.match(line, /path=\/api\/events/);
  assert.doesNotMatch(daemon.log, /^\s+at /m, 'no stack trace in the log');
  assert.doesNotMatch(daemon.log, /Premature close/);
});
