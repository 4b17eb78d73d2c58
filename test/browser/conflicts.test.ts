// Conflicts in real headless Chromium: the folder card's badge counts them, the dialog shows both versions side by side,
// one click keeps either or both (desktop and phone sizes), and the join form warns before merging into a non-empty folder.
// FERRY_SCREENSHOTS=DIR saves conflicts.png, phone-conflicts.png and join-merge.png there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Page } from 'playwright-core';
import { ControlClient } from '../../src/cli/client.js';
import type { StatusReport } from '../../src/web/daemon-api.js';
import { DaemonProcess, ferry, shareBetween, waitFor } from '../helpers/daemon.js';
import { describeTree } from '../helpers/tree.js';
import { browserSuite, NO_BROWSER, PASSWORD, SHOTS } from './chromium.js';

const WAIT_MS = 60_000;
const NAMES = ['budget.xlsx', 'notes/meeting.md', 'photos/cover.jpg'];

const suite = browserSuite('browser-conflicts');
const { daemons } = suite;

async function folderOf(daemon: DaemonProcess): Promise<StatusReport['folders'][number]> {
  return (await new ControlClient(daemon.home).call<StatusReport>('GET', '/status')).folders[0]!;
}

async function converged(a: DaemonProcess, dirA: string, b: DaemonProcess, dirB: string): Promise<boolean> {
  if (JSON.stringify(await describeTree(dirA)) !== JSON.stringify(await describeTree(dirB))) return false;
  const folders = [await folderOf(a), await folderOf(b)];
  return folders.every((f) => f.needFiles === 0 && f.state === 'idle');
}

async function login(page: Page, daemon: DaemonProcess): Promise<void> {
  const status = (await daemon.status()) as unknown as { web: string };
  await page.goto(`http://${status.web}/`);
  await page.locator('#setup-form #password').fill(PASSWORD);
  await page.locator('#setup-form #confirm').fill(PASSWORD);
  await page.locator('#setup-form button[type=submit]').click();
}

test('the card counts conflicts; the dialog resolves them in one click each, at desktop and phone sizes', { skip: NO_BROWSER, timeout: 240_000 }, async () => {
  const dirA = join(suite.root, 'a');
  const dirB = join(suite.root, 'b');
  await mkdir(join(dirA, 'notes'), { recursive: true });
  await mkdir(join(dirA, 'photos'), { recursive: true });
  for (const name of NAMES) await writeFile(join(dirA, name), `first version of ${name}\n`);
  for (let i = 0; i < 5; i++) await writeFile(join(dirA, `other-${i}.txt`), `other ${i}\n`);
  const a = new DaemonProcess(join(suite.root, 'home-a'));
  let b = new DaemonProcess(join(suite.root, 'home-b'));
  daemons.push(a, b);
  await Promise.all([a.ready(), b.ready()]);
  await new ControlClient(a.home).call('PUT', '/settings', { deviceName: 'office-nas' });
  await new ControlClient(b.home).call('PUT', '/settings', { deviceName: 'laptop' });
  const keys = await shareBetween(a, dirA, b, dirB);
  await waitFor(() => converged(a, dirA, b, dirB), 'the first sync', WAIT_MS);

  // Both edit the same files while B is down; B's edits are an hour later and keep the names.
  await b.stop();
  for (const name of NAMES) {
    await writeFile(join(dirA, name), `office edit of ${name}\n`);
    await writeFile(join(dirB, name), `laptop edit of ${name}, a longer one\n`);
    const { mtime } = await stat(join(dirA, name));
    await utimes(join(dirB, name), mtime, new Date(mtime.getTime() + 3_600_000));
  }
  b = new DaemonProcess(b.home);
  daemons.push(b);
  await b.ready();
  await waitFor(async () => (await converged(a, dirA, b, dirB)) && (await folderOf(a)).conflicts === 3, 'three conflicts on A', WAIT_MS);

  const page = await suite.browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(WAIT_MS);
  await login(page, a);
  const card = page.locator(`article[data-folder="${keys.folderId}"]`);
  const badge = card.locator('button.badge.conflicts');
  await badge.filter({ hasText: '3 conflicts' }).waitFor();
  await badge.click();
  const dialog = page.locator('#conflicts-dialog');
  await dialog.locator('article.conflict').nth(2).waitFor();
  assert.equal(await dialog.locator('article.conflict').count(), 3);
  const budget = dialog.locator('article.conflict[data-path="budget.xlsx"]');
  const sides = budget.locator('.conflict-side');
  assert.match(await sides.nth(0).innerText(), /Has the name now[\s\S]*budget\.xlsx[\s\S]*By\s+laptop/);
  assert.match(await sides.nth(1).innerText(), /Conflict copy[\s\S]*budget\.conflict-\d{8}-\d{6}-[A-Z2-7]+\.xlsx[\s\S]*By\s+office-nas/);
  assert.match(await sides.nth(0).innerText(), /newer/);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'conflicts.png') });

  // Keep the copy (the office's version) of budget.xlsx: one click.
  await budget.locator('button.keep-copy').click();
  await dialog.locator('#conflicts-message', { hasText: 'Kept the copy as budget.xlsx' }).waitFor();
  await waitFor(async () => (await dialog.locator('article.conflict').count()) === 2, 'two conflicts left in the dialog');
  await badge.filter({ hasText: '2 conflicts' }).waitFor();
  await page.close();

  // At a phone's size: the two versions stack; keep the original of one and both of the other.
  const phone = await suite.browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  phone.setDefaultTimeout(WAIT_MS);
  const status = (await a.status()) as unknown as { web: string };
  await phone.goto(`http://${status.web}/`);
  await phone.locator('#login-form #password, #setup-form #password').first().waitFor();
  if (await phone.locator('#login-form').count()) {
    await phone.locator('#login-form #password').fill(PASSWORD);
    await phone.locator('#login-form button[type=submit]').click();
  }
  const phoneCard = phone.locator(`article[data-folder="${keys.folderId}"]`);
  await phoneCard.locator('button.badge.conflicts', { hasText: '2 conflicts' }).click();
  const phoneDialog = phone.locator('#conflicts-dialog');
  const notes = phoneDialog.locator('article.conflict[data-path="notes/meeting.md"]');
  await notes.waitFor();
  const [first, second] = [await notes.locator('.conflict-side').nth(0).boundingBox(), await notes.locator('.conflict-side').nth(1).boundingBox()];
  assert.ok(first && second && second.y >= first.y + first.height - 1, 'stacked on a phone');
  if (SHOTS) await phone.screenshot({ path: join(SHOTS, 'phone-conflicts.png') });
  await notes.locator('button.keep-original').click();
  await phoneDialog.locator('#conflicts-message', { hasText: 'Kept the original notes/meeting.md' }).waitFor();
  const cover = phoneDialog.locator('article.conflict[data-path="photos/cover.jpg"]');
  await cover.locator('input.both-name').fill('cover (office).jpg');
  await cover.locator('button.keep-both').click();
  await phoneDialog.locator('p.empty', { hasText: 'No conflicts.' }).waitFor();
  await phoneCard.locator('button.badge.conflicts').waitFor({ state: 'hidden' });
  await phone.close();

  // Both devices end with the same bytes and no conflicts; the losers are in the archive.
  await waitFor(async () => (await converged(a, dirA, b, dirB)) && (await folderOf(b)).conflicts === 0, 'the choices to reach B', WAIT_MS);
  for (const dir of [dirA, dirB]) {
    assert.equal(await readFile(join(dir, 'budget.xlsx'), 'utf8'), 'office edit of budget.xlsx\n');
    assert.equal(await readFile(join(dir, 'notes/meeting.md'), 'utf8'), 'laptop edit of notes/meeting.md, a longer one\n');
    assert.equal(await readFile(join(dir, 'photos/cover.jpg'), 'utf8'), 'laptop edit of photos/cover.jpg, a longer one\n');
    assert.equal(await readFile(join(dir, 'photos/cover (office).jpg'), 'utf8'), 'office edit of photos/cover.jpg\n');
    assert.ok(existsSync(join(dir, '.ferry', 'archive', 'notes')), `the losing notes copy is archived in ${dir}`);
  }
});

test('the join form warns before merging into a folder that has files, then merges on confirm', { skip: NO_BROWSER, timeout: 120_000 }, async () => {
  const a = new DaemonProcess(join(suite.root, 'home-join'));
  daemons.push(a);
  await a.ready();
  const other = new DaemonProcess(join(suite.root, 'home-join-other'));
  daemons.push(other);
  await other.ready();
  await mkdir(join(suite.root, 'shared-elsewhere'));
  const shared = await ferry(['share', join(suite.root, 'shared-elsewhere'), '--json', '--home', other.home]);
  assert.equal(shared.code, 0, shared.stderr);
  const rw = (JSON.parse(shared.stdout) as { rw: string }).rw;
  const target = join(suite.root, 'photos-here');
  await mkdir(join(target, '2024'), { recursive: true });
  await writeFile(join(target, '2024', 'beach.jpg'), Buffer.alloc(300_000, 1));
  await writeFile(join(target, 'list.txt'), 'mine\n');

  const page = await suite.browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(WAIT_MS);
  await login(page, a);
  await page.locator('#join-key').fill(rw);
  await page.locator('#join-path').fill(target);
  await page.locator('#join-form button[type=submit]').click();
  const warning = page.locator('#join-warning');
  await warning.locator('strong', { hasText: 'already holds 2 files (293 KiB)' }).waitFor();
  assert.match(await warning.innerText(), /conflict copy/);
  assert.equal((await a.status()).folders.length, 0, 'not joined before the confirm');
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'join-merge.png') });
  await page.locator('#join-form button[type=submit]', { hasText: 'Merge and join' }).click();
  await page.locator('article.folder .path', { hasText: target }).waitFor();
  assert.equal((await a.status()).folders.length, 1);
  await page.close();
});
