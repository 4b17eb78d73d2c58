// The first-run page in real headless Chromium from another address than loopback: it asks for the setup code,
// refuses a missing or wrong one, and takes the right one (issue 21 "a safe first start", issue 25 item 1).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser } from 'playwright-core';
import { DaemonProcess, removeDir, tempDir } from '../helpers/daemon.js';
import { lanAddress, lanSkip } from '../security/helpers.js';
import { launchChromium, NO_BROWSER, PASSWORD, SHOTS } from './chromium.js';

const WAIT_MS = 60_000;
/** FERRY_SCREENSHOTS=DIR saves the first-run form with the refused code there. */

let root: string;
let browser: Browser;
let daemon: DaemonProcess | undefined;

before(async () => {
  root = await tempDir('browser-first');
  if (NO_BROWSER) return;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await daemon?.stop();
  await removeDir(root);
});

test('first start from another machine: the page asks for the setup code and refuses a missing or wrong one', { skip: NO_BROWSER || lanSkip(), timeout: 120_000 }, async () => {
  daemon = new DaemonProcess(join(root, 'home'), ['--web', '0.0.0.0:0']);
  await daemon.ready();
  const status = (await daemon.status()) as unknown as { web: string };
  const port = /:(\d+)$/.exec(status.web)![1];
  // The daemon's LAN address as the browser's target: the connection's source is that address, not loopback.
  const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(`http://${lanAddress()}:${port}/`);
  await page.locator('#setup-form #setup-code').waitFor();
  assert.match(await page.locator('#setup-form').innerText(), /ferry admin setup-code/);

  await page.locator('#setup-form #password').fill(PASSWORD);
  await page.locator('#setup-form #confirm').fill(PASSWORD);
  // The field is required: the browser itself refuses an empty code; a wrong one reaches the daemon.
  await page.locator('#setup-form #setup-code').fill('AAAA-BBBB-CCCC-DDDD');
  await page.locator('#setup-form button[type=submit]').click();
  await page.locator('#login-error', { hasText: /wrong setup code/ }).waitFor();
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'setup-code.png') });
  assert.equal(await page.locator('#setup-form').count(), 1, 'still on the setup form');

  const code = (await readFile(join(daemon.home, 'admin-setup-code'), 'utf8')).trim();
  await page.locator('#setup-form #setup-code').fill(code);
  await page.locator('#setup-form button[type=submit]').click();
  await page.locator('#folder-list').waitFor({ state: 'attached' });
  assert.equal(await page.locator('#setup-form').count(), 0);
  await page.close();
});
