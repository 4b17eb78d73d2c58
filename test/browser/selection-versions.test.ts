// Selective sync and versions in real headless Chromium (issue 23): the folder's tree from the index with sizes
// (parts not on disk here too), a checkbox per directory that deselects a subtree; a file's versions with a
// restore button that brings the chosen bytes back on both devices.
// FERRY_SCREENSHOTS=DIR saves selection.png and versions.png there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Page } from 'playwright-core';
import { ControlClient } from '../../src/cli/client.js';
import type { SelectionReport } from '../../src/web/daemon-api.js';
import { DaemonProcess, shareBetween, waitFor } from '../helpers/daemon.js';
import { browserSuite, NO_BROWSER, PASSWORD, SHOTS } from './chromium.js';

const WAIT_MS = 60_000;

const suite = browserSuite('browser-select');
const { daemons } = suite;

async function content(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

async function login(page: Page, daemon: DaemonProcess): Promise<void> {
  const status = (await daemon.status()) as unknown as { web: string };
  await page.goto(`http://${status.web}/`);
  await page.locator('#setup-form #password').fill(PASSWORD);
  await page.locator('#setup-form #confirm').fill(PASSWORD);
  await page.locator('#setup-form button[type=submit]').click();
}

test('the tree deselects a subtree; the versions dialog restores a chosen version everywhere', { skip: NO_BROWSER, timeout: 240_000 }, async () => {
  const dirA = join(suite.root, 'a');
  const dirB = join(suite.root, 'b');
  for (const dir of ['photos/2019', 'photos/2020', 'docs']) await mkdir(join(dirA, dir), { recursive: true });
  await writeFile(join(dirA, 'photos/2019/beach.jpg'), Buffer.alloc(300_000, 1));
  await writeFile(join(dirA, 'photos/2020/snow.jpg'), Buffer.alloc(200_000, 2));
  await writeFile(join(dirA, 'docs/notes.txt'), 'first version\n');
  const a = new DaemonProcess(join(suite.root, 'home-a'));
  const b = new DaemonProcess(join(suite.root, 'home-b'));
  daemons.push(a, b);
  await Promise.all([a.ready(), b.ready()]);
  const { folderId } = await shareBetween(a, dirA, b, dirB);
  await waitFor(async () => (await content(join(dirB, 'docs/notes.txt'))) === 'first version\n', 'B to have the files', WAIT_MS);
  for (const text of ['second version\n', 'third version\n']) {
    await writeFile(join(dirA, 'docs/notes.txt'), text);
    await waitFor(async () => (await content(join(dirB, 'docs/notes.txt'))) === text, `B to have "${text.trim()}"`, WAIT_MS);
  }

  const page = await suite.browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(WAIT_MS);
  await login(page, b);
  const card = page.locator(`article[data-folder="${folderId}"]`);
  await card.locator('button.selection').click();
  const dialog = page.locator('#selection-dialog');
  const photos = dialog.locator('li[data-path="photos"]');
  await photos.waitFor();
  assert.match(await photos.innerText(), /photos\s+488 KiB, 2 files/);
  await photos.locator('button.tree-open').click();
  await photos.locator('li[data-path="photos/2019"]').waitFor();
  // Deselect photos/2019: it stays on disk here, and the API lists it.
  await photos.locator('li[data-path="photos/2019"] input[type=checkbox]').uncheck();
  await dialog.locator('#selection-message', { hasText: 'photos/2019 is no longer synced on this device' }).waitFor();
  await dialog.locator('#selection-summary', { hasText: 'Not synced here: photos/2019.' }).waitFor();
  const report = await new ControlClient(b.home).call<SelectionReport>('GET', `/folders/${folderId}/selection`);
  assert.deepEqual(report.excluded, ['photos/2019']);
  await dialog.locator('li[data-path="photos"] button.tree-open').click();
  await dialog.locator('li[data-path="photos/2019"]').waitFor();
  assert.equal(await dialog.locator('li[data-path="photos/2019"] input[type=checkbox]').isChecked(), false);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'selection.png') });
  await dialog.locator('button.close').click();

  await card.locator('button.versions').click();
  const versions = page.locator('#versions-dialog');
  await versions.locator('#archive-plan', { hasText: /Archive: 2 versions/ }).waitFor();
  await versions.locator('#versions-path').fill('docs/notes.txt');
  await versions.locator('button[type=submit]').click();
  await versions.locator('#versions-table tbody tr').nth(1).waitFor();
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'versions.png') });
  // The older of the two is the first version.
  await versions.locator('#versions-table tbody tr').nth(1).locator('button').click();
  await versions.locator('#versions-message', { hasText: 'Restored docs/notes.txt' }).waitFor();
  assert.equal(await content(join(dirB, 'docs/notes.txt')), 'first version\n');
  await waitFor(async () => (await content(join(dirA, 'docs/notes.txt'))) === 'first version\n', 'the restored bytes to reach A', WAIT_MS);
  await page.close();
});
