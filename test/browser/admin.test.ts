// The admin page in real headless Chromium: password, login, share, a peer syncing to 100 %, archive restore, names as text.
// FERRY_SCREENSHOTS=DIR also saves screenshots of the main screens there (desktop and phone widths).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { ControlClient } from '../../src/cli/client.js';
import type { ArchiveListing } from '../../src/web/daemon-api.js';
import { DaemonProcess, MAIN, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { launchChromium, NO_BROWSER, PASSWORD, SHOTS } from './chromium.js';

const XSS_NAME = '<img src=x onerror=alert(1)>.txt';
const WAIT_MS = 60_000;

/** The little of the DOM the in-page functions below use (tests compile without the DOM library). */
interface PageNode {
  textContent: string | null;
  value?: string;
  querySelector(selector: string): PageNode | null;
}
interface PageGlobals {
  document: PageNode & { querySelectorAll(selector: string): { length: number }; getElementById(id: string): PageNode | null };
}

let root: string;
let browser: Browser;
const daemons: DaemonProcess[] = [];
const dialogs: string[] = [];

async function webUrl(daemon: DaemonProcess): Promise<string> {
  const status = (await daemon.status()) as unknown as { web: string };
  return `http://${status.web}/`;
}

async function newPage(width = 1200, height = 860): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height } });
  page.setDefaultTimeout(WAIT_MS);
  // Any alert, confirm or prompt means script ran that should not have: record and refuse it.
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

function setPasswordByCli(home: string, password: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'admin', 'set-password', '--home', home], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', resolve);
    child.stdin.end(`${password}\n`);
  });
}

async function login(page: Page, password: string): Promise<void> {
  await page.locator('#login-form #password').fill(password);
  await page.locator('#login-form button[type=submit]').click();
}

before(async () => {
  root = await tempDir('browser');
  if (NO_BROWSER) return;
  if (SHOTS) await mkdir(SHOTS, { recursive: true });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  await removeDir(root);
});

test('the admin page end to end: password, login, share, peer at 100 %, restore from the archive, names as text', { skip: NO_BROWSER, timeout: 180_000 }, async () => {
  const dirA = join(root, 'photos');
  await mkdir(join(dirA, 'trip'), { recursive: true });
  await writeFile(join(dirA, 'hello.txt'), 'hello from A\n');
  await writeFile(join(dirA, 'trip', 'beach.jpg'), randomBytes(3 * 1024 * 1024));
  await writeFile(join(dirA, XSS_NAME), 'not markup\n');
  await writeFile(join(dirA, 'refused\u001b[31mname.txt'), 'a control character: not indexed, listed as failed\n');
  const a = new DaemonProcess(join(root, 'home-a'));
  daemons.push(a);
  await a.ready();

  // First start: the page asks for a password.
  const page = await newPage();
  await page.goto(await webUrl(a));
  await page.locator('#setup-form').waitFor();
  await shot(page, 'setup');
  await page.locator('#setup-form #password').fill(PASSWORD);
  await page.locator('#setup-form #confirm').fill(PASSWORD);
  await page.locator('#setup-form button[type=submit]').click();
  await page.locator('#share-form').waitFor();

  // Log out; a wrong password is refused; the right one lets us in.
  await page.locator('#logout').click();
  await page.locator('#login-form').waitFor();
  await login(page, 'not the password');
  await page.locator('#login-error', { hasText: 'Wrong password.' }).waitFor();
  await shot(page, 'login-refused');
  assert.equal(await page.locator('#share-form').count(), 0);
  await login(page, PASSWORD);
  await page.locator('#share-form').waitFor();

  // Share a folder and read its keys from the dialog.
  await page.locator('#share-path').fill(dirA);
  await page.locator('#share-form button[type=submit]').click();
  await page.locator('#keys-dialog input[data-key=enc]').waitFor();
  const shown = {
    rw: await page.locator('#keys-dialog input[data-key=rw]').inputValue(),
    ro: await page.locator('#keys-dialog input[data-key=ro]').inputValue(),
    enc: await page.locator('#keys-dialog input[data-key=enc]').inputValue(),
  };
  const cli = JSON.parse((await ferry(['keys', dirA, '--json', '--home', a.home])).stdout) as { folderId: string; rw: string; ro: string; enc: string };
  assert.deepEqual(shown, { rw: cli.rw, ro: cli.ro, enc: cli.enc });
  assert.equal(await page.locator('#keys-dialog canvas.qr').count(), 3, 'a QR code per key');
  await shot(page, 'keys');
  await page.locator('#keys-dialog button.close').click();
  const cardA = page.locator(`article[data-folder="${cli.folderId}"]`);
  await cardA.locator('.detail', { hasText: '3 of 3 files' }).waitFor();
  // The refused name is listed on the card, its control character shown escaped.
  await cardA.locator('.folder-failed', { hasText: '1 item not synced' }).waitFor();
  assert.match((await cardA.locator('.folder-failed li').first().textContent()) ?? '', /refused\\u\{1b\}\[31mname\.txt — .*control character/);

  // A second daemon joins with the read-write key; its own page shows the folder reaching 100 %.
  const b = new DaemonProcess(join(root, 'home-b'));
  daemons.push(b);
  await b.ready();
  assert.equal(await setPasswordByCli(b.home, PASSWORD), 0);
  const dirB = join(root, 'photos-b');
  assert.equal((await ferry(['join', cli.rw, dirB, '--home', b.home])).code, 0);
  const listen = (await a.status()) as unknown as { listen: string };
  assert.equal((await ferry(['peers', 'add', listen.listen, '--home', b.home])).code, 0);

  const pageB = await newPage();
  await pageB.goto(await webUrl(b));
  await login(pageB, PASSWORD);
  const cardB = pageB.locator(`article[data-folder="${cli.folderId}"]`);
  await cardB.waitFor();
  await pageB.waitForFunction(
    (id) => {
      const card = (globalThis as unknown as PageGlobals).document.querySelector(`article[data-folder="${id}"]`);
      return card?.querySelector('.percent')?.textContent === '100 %' && /3 of 3 files/.test(card.querySelector('.detail')?.textContent ?? '');
    },
    cli.folderId,
    { timeout: WAIT_MS },
  );
  assert.equal(await cardB.locator('progress').evaluate((bar) => (bar as unknown as { value: number }).value), 100);
  assert.ok(await exists(join(dirB, 'trip', 'beach.jpg')));
  await shot(pageB, 'folders-synced');

  // Delete files on the peer: A archives them; restore one from A's page and it comes back on both sides.
  await rm(join(dirB, 'hello.txt'));
  await rm(join(dirB, XSS_NAME));
  const control = new ControlClient(a.home);
  await waitFor(async () => {
    const listing = await control.call<ArchiveListing>('GET', `/folders/${cli.folderId}/archive`);
    return listing.files.length === 2;
  }, 'A to archive the files deleted on B', WAIT_MS);
  await cardA.locator('button.archive').click();
  const archive = page.locator('#archive-dialog');
  await archive.locator('td.file', { hasText: 'hello.txt' }).waitFor();

  // The hostile name is shown as text: no element made from it, no script run.
  const names = await archive.locator('td.file').allTextContents();
  assert.ok(names.includes(XSS_NAME), `archive shows ${JSON.stringify(names)}`);
  assert.equal(await page.locator('#archive-dialog img').count(), 0);
  assert.equal(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.querySelectorAll('img:not([src="/favicon.svg"])').length), 0);
  await shot(page, 'archive');

  const row = archive.locator('tr', { has: page.locator('td.file', { hasText: /^hello\.txt$/ }) });
  await row.locator('button', { hasText: 'Restore' }).click();
  await archive.locator('#archive-message', { hasText: 'Restored hello.txt' }).waitFor();
  assert.ok(await exists(join(dirA, 'hello.txt')));
  await waitFor(() => exists(join(dirB, 'hello.txt')), 'the restored file to reach B', WAIT_MS);
  await page.locator('#archive-dialog button.close').click();

  // Settings: a bad value gets a message beside its field (the daemon's own check for tracker URLs).
  await page.locator('button.tab[data-view=settings]').click();
  await page.locator('#setting-deviceName').waitFor();
  await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.getElementById('setting-deviceName')?.value !== '');
  await page.locator('#setting-trackerUrls').fill('ftp://tracker.invalid/announce');
  await page.locator('#settings-form button[type=submit]').click();
  await page.locator('#settings-form .field-error', { hasText: 'http://, https:// or udp://' }).waitFor();
  await shot(page, 'settings-error');
  await page.locator('#setting-trackerUrls').fill('');
  await page.locator('#setting-archiveDays').fill('30');
  await page.locator('#settings-form button[type=submit]').click();
  await page.locator('#settings-note', { hasText: 'Saved and applied' }).waitFor();
  const stored = await control.call<{ settings: { archiveDays: number } }>('GET', '/settings');
  assert.equal(stored.settings.archiveDays, 30);
  await shot(page, 'settings');

  await pageB.locator('button.tab[data-view=peers]').click();
  await pageB.locator('#peer-table td', { hasText: 'address you added' }).waitFor();
  // Each link shows its path and IP version (4 or 6) as status has them: B dialled A's 127.0.0.1 over TCP.
  const peersB = await new ControlClient(b.home).call<{ peers: Array<{ path: string; ip: 4 | 6 }> }>('GET', '/peers');
  assert.deepEqual(peersB.peers.map((p) => [p.path, p.ip]), [['tcp', 4]]);
  const linkCell = pageB.locator('#peer-table td.link');
  assert.deepEqual([await linkCell.getAttribute('data-path'), await linkCell.getAttribute('data-ip')], ['tcp', '4']);
  assert.match((await linkCell.textContent()) ?? '', /^tcpIPv4$/);
  await shot(pageB, 'peers');

  if (SHOTS) {
    const phone = await newPage(390, 844);
    await phone.goto(await webUrl(a));
    await login(phone, PASSWORD);
    await phone.locator(`article[data-folder="${cli.folderId}"] .percent`, { hasText: '100 %' }).waitFor();
    await shot(phone, 'phone-folders');
    await phone.locator(`article[data-folder="${cli.folderId}"] button.keys`).click();
    await phone.locator('#keys-dialog canvas.qr').first().waitFor();
    await shot(phone, 'phone-keys');
    await phone.close();
  }

  assert.deepEqual(dialogs, [], 'no alert, confirm or prompt was opened');
});
