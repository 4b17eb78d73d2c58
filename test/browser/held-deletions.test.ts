// A mass delete by a peer in real headless Chromium: the folder card says how many files another device deleted
// and holds them; "Keep them and restore everywhere" brings them back on that device (issue 25, low item).
// FERRY_SCREENSHOTS=DIR also saves the card with the held deletions there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../../src/cli/client.js';
import type { StatusReport } from '../../src/web/daemon-api.js';
import { DaemonProcess, ferry, waitFor } from '../helpers/daemon.js';
import { browserSuite, NO_BROWSER, PASSWORD, SHOTS } from './chromium.js';

const FILES = 60;
const WAIT_MS = 60_000;

const suite = browserSuite('browser-held');
const { daemons } = suite;

async function cli(daemon: DaemonProcess, ...args: string[]): Promise<string> {
  const result = await ferry([...args, '--home', daemon.home]);
  assert.equal(result.code, 0, `ferry ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function folderOf(daemon: DaemonProcess): Promise<StatusReport['folders'][number]> {
  return (await new ControlClient(daemon.home).call<StatusReport>('GET', '/status')).folders[0]!;
}

test('the folder card holds a peer\'s mass delete and restores the files everywhere', { skip: NO_BROWSER, timeout: 180_000 }, async () => {
  const dirA = join(suite.root, 'a');
  const dirB = join(suite.root, 'b');
  await mkdir(join(dirA, 'photos'), { recursive: true });
  for (let i = 0; i < FILES; i++) await writeFile(join(dirA, 'photos', `img-${i}.jpg`), `photo ${i}\n`);
  const a = new DaemonProcess(join(suite.root, 'home-a'));
  const b = new DaemonProcess(join(suite.root, 'home-b'));
  daemons.push(a, b);
  await Promise.all([a.ready(), b.ready()]);
  const keys = JSON.parse(await cli(a, 'share', dirA, '--json')) as { folderId: string; rw: string };
  await cli(b, 'join', keys.rw, dirB);
  await cli(b, 'peers', 'add', ((await a.status()) as unknown as { listen: string }).listen);
  await waitFor(async () => (await folderOf(b)).localFiles === FILES && (await folderOf(b)).needFiles === 0, 'B to have every file', WAIT_MS);

  // B hears of all the deletions at once (paused while A deletes).
  const control = new ControlClient(b.home);
  await control.call('POST', `/folders/${keys.folderId}/pause`);
  await rm(join(dirA, 'photos'), { recursive: true });
  await waitFor(async () => (await folderOf(a)).localFiles === 0, 'A to record the deletions');
  await control.call('POST', `/folders/${keys.folderId}/resume`);

  const page = await suite.browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(WAIT_MS);
  const status = (await b.status()) as unknown as { web: string };
  await page.goto(`http://${status.web}/`);
  await page.locator('#setup-form #password').fill(PASSWORD);
  await page.locator('#setup-form #confirm').fill(PASSWORD);
  await page.locator('#setup-form button[type=submit]').click();
  const banner = page.locator(`#held-${keys.folderId}`);
  await banner.locator('strong', { hasText: `${FILES} files were deleted on another device` }).waitFor();
  assert.match(await banner.innerText(), /more than half/);
  assert.match(await banner.innerText(), /photos\/img-/);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'held-deletions.png') });
  assert.equal((await readdir(join(dirB, 'photos'))).length, FILES, 'nothing deleted on B yet');

  await banner.locator('button.restore-deletions').click();
  await banner.waitFor({ state: 'hidden' });
  await waitFor(async () => (await readdir(join(dirA, 'photos')).catch(() => [])).length === FILES, 'A to get the files back', WAIT_MS);
  await page.close();
});
