// What a running daemon holds that it does not use: modules are loaded on first use. A daemon that answered the CLI
// and the web page has not loaded fetch's implementation (undici: Koa 3 tests an object body with `instanceof
// Response`, and the first read of that global loads it; src/web/http.ts sendJson), nor the argon2 addon (no password
// hashed or checked yet), nor the CLI's command modules (`ferry run` needs only its own).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, type StatusJson } from '../helpers/daemon.js';

const MODULE_LOG = fileURLToPath(new URL('../helpers/module-log.js', import.meta.url));

function getJson(url: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    }).on('error', reject);
  });
}

test('a daemon that answered the CLI and the web page has not loaded undici, argon2 or the CLI commands', async (t) => {
  const root = await tempDir('ferry-modules-');
  t.after(() => removeDir(root));
  const log = join(root, 'modules.log');
  const daemon = new DaemonProcess(join(root, 'home'), [], { FERRY_TEST_MODULE_LOG: log }, ['--import', MODULE_LOG]);
  t.after(() => daemon.stop());
  await daemon.ready();
  const status = (await daemon.status()) as StatusJson & { web: string };
  assert.ok(status.device.id);
  const cli = await ferry(['folders', 'list', '--json', '--home', daemon.home]);
  assert.equal(cli.code, 0, cli.stderr);
  const state = await getJson(`http://${status.web}/api/auth/state`);
  assert.equal(state.status, 200);
  assert.equal((state.body as { setup: boolean }).setup, true);
  assert.equal(await daemon.stop(), 0);

  const lines = (await readFile(log, 'utf8')).split('\n');
  const has = (pattern: RegExp): boolean => lines.some((line) => pattern.test(line));
  // The log sees what the daemon does load.
  assert.ok(has(/^esm .*\/src\/cli\/run\.js$/), 'cli/run.js');
  assert.ok(has(/^esm .*\/src\/web\/web-app\.js$/), 'web/web-app.js');
  assert.ok(has(/^builtin http$/), 'http');
  assert.ok(has(/^esm .*\/node_modules\/lmdb\//), 'lmdb');

  assert.ok(!has(/^builtin internal\/deps\/undici\/undici$/), 'undici (fetch) is not loaded');
  assert.ok(!has(/@node-rs\/argon2/), 'argon2 is not loaded');
  for (const command of ['status', 'folder-commands', 'peers', 'settings', 'backup', 'help']) {
    assert.ok(!has(new RegExp(`^esm .*/src/cli/${command}\\.js$`)), `cli/${command}.js is not loaded`);
  }
});
