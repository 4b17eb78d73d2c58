// The grants dialog in real headless Chromium: issue invites in the page, see them with their expiry, revoke one, and check through `ferry grants`.
// FERRY_SCREENSHOTS=DIR also saves grants.png there.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { launchChromium, NO_BROWSER, PASSWORD, SHOTS } from './chromium.js';

const HOSTILE = '<img src=x onerror=alert(1)>';
const WAIT_MS = 60_000;

interface Listed {
  id: string;
  level: string;
  expiresAtMs: number;
  device?: string;
  status: string;
}

interface FullStatus {
  device: { id: string };
  listen: string;
  web: string;
  folders: Array<{ id: string; grant?: { id: string; status: string }; peers: Array<{ device: string; connected: boolean }> }>;
}

let root: string;
let browser: Browser;
const daemons: DaemonProcess[] = [];

async function run(daemon: DaemonProcess, args: string[]): Promise<string> {
  const result = await ferry([...args, '--home', daemon.home]);
  assert.equal(result.code, 0, `ferry ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function listed(daemon: DaemonProcess, folderId: string): Promise<Listed[]> {
  return (JSON.parse(await run(daemon, ['grants', folderId, '--json'])) as { grants: Listed[] }).grants;
}

async function status(daemon: DaemonProcess): Promise<FullStatus> {
  return (await daemon.status()) as unknown as FullStatus;
}

async function start(name: string): Promise<DaemonProcess> {
  const daemon = new DaemonProcess(join(root, `home-${name}`));
  daemons.push(daemon);
  await daemon.ready();
  return daemon;
}

before(async () => {
  root = await tempDir('browser-grants');
  if (NO_BROWSER) return;
  if (SHOTS) await mkdir(SHOTS, { recursive: true });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await Promise.all(daemons.map((daemon) => daemon.stop()));
  await removeDir(root);
});

/** Creates a grant with the dialog's form; returns the invite the page shows. */
async function createGrant(page: Page, level: 'ro' | 'rw', count: number, unit: 'm' | 'h' | 'd' | 'w', device = ''): Promise<{ id: string; invite: string }> {
  const dialog = page.locator('#grants-dialog');
  const shown = dialog.locator('#grant-invite input[data-invite]');
  const before = (await shown.count()) ? await shown.getAttribute('data-invite') : null;
  await dialog.locator(`#grant-level-${level}`).check();
  await dialog.locator('#grant-expires').fill(String(count));
  await dialog.locator('#grant-unit').selectOption(unit);
  await dialog.locator('#grant-device').fill(device);
  await dialog.locator('#grant-form button[type=submit]').click();
  await page.waitForFunction((old) => {
    const el = (globalThis as unknown as { document: { querySelector(s: string): { getAttribute(n: string): string | null } | null } }).document.querySelector(
      '#grant-invite input[data-invite]',
    );
    return el !== null && el.getAttribute('data-invite') !== old;
  }, before);
  return { id: (await shown.getAttribute('data-invite'))!, invite: await shown.inputValue() };
}

test('grants in the page: issue with expiry, list with status, revoke after a confirm, all as `ferry grants` sees them', { skip: NO_BROWSER, timeout: 120_000 }, async () => {
  const dir = join(root, `shared ${HOSTILE}`);
  await mkdir(dir, { recursive: true });
  const a = await start('a');
  const b = await start('b');
  const share = JSON.parse(await run(a, ['share', dir, '--json'])) as { folderId: string };
  // A grant from the CLI that expires at once: the page shows it expired.
  const shortLived = JSON.parse(await run(a, ['grant', share.folderId, '--ro', '--expires', '1s', '--json'])) as { id: string };

  const page = await browser.newPage({ viewport: { width: 1100, height: 1250 } });
  page.setDefaultTimeout(WAIT_MS);
  const unexpected: string[] = [];
  const confirms: string[] = [];
  page.on('dialog', (dialog) => {
    if (dialog.type() === 'confirm' && dialog.message().startsWith('Revoke the ')) {
      confirms.push(dialog.message());
      void dialog.accept();
    } else {
      unexpected.push(dialog.message());
      void dialog.dismiss();
    }
  });
  await page.goto(`http://${(await status(a)).web}/`);
  await page.locator('#setup-form #password').fill(PASSWORD);
  await page.locator('#setup-form #confirm').fill(PASSWORD);
  await page.locator('#setup-form button[type=submit]').click();
  await page.locator(`article[data-folder="${share.folderId}"] button.grants`).click();
  const dialog = page.locator('#grants-dialog');
  await dialog.locator(`tr[data-grant="${shortLived.id}"] .state`, { hasText: 'expired' }).waitFor();
  assert.equal(await dialog.locator('.dialog-path').textContent(), dir, 'the folder path is shown as text');
  assert.equal(await dialog.locator('img').count(), 0);
  assert.equal(await dialog.locator(`tr[data-grant="${shortLived.id}"] button[data-revoke]`).count(), 0, 'no revoke button on an expired grant');

  // A bad device ID is refused beside its field.
  await dialog.locator('#grant-device').fill('not-a-device');
  await dialog.locator('#grant-form button[type=submit]').click();
  await dialog.locator('#grant-form .field-error', { hasText: 'device' }).waitFor();

  // A read-write grant for device B, 3 hours: listed with its expiry, as the CLI lists it.
  const deviceB = (await status(b)).device.id;
  const forB = await createGrant(page, 'rw', 3, 'h', deviceB);
  assert.match(forB.invite, /^G[A-Z2-7]+$/);
  const rowB = dialog.locator(`tr[data-grant="${forB.id}"]`);
  await rowB.locator('.state', { hasText: 'active' }).waitFor();
  const cliB = (await listed(a, share.folderId)).find((g) => g.id === forB.id);
  assert.ok(cliB, 'ferry grants lists the grant made in the page');
  assert.equal(cliB.status, 'active');
  assert.equal(cliB.level, 'rw');
  assert.equal(cliB.device, deviceB);
  assert.equal(await rowB.getAttribute('data-expires'), String(cliB.expiresAtMs));
  assert.ok(Math.abs(cliB.expiresAtMs - Date.now() - 3 * 3_600_000) < 60_000, 'expires in about 3 hours');
  assert.equal(await rowB.locator('.relative').textContent(), 'in 3 hours');
  const absolute = await page.evaluate((ms) => new Date(ms).toLocaleString(), cliB.expiresAtMs);
  assert.equal(await rowB.locator('.absolute').textContent(), absolute);
  assert.equal(await rowB.locator('.device-id').textContent(), deviceB);

  // The invite works: B joins with it and connects to A.
  await run(b, ['join', forB.invite, join(root, 'at-b')]);
  await run(b, ['peers', 'add', (await status(a)).listen]);
  await waitFor(async () => {
    const s = await status(b);
    const folder = s.folders.find((f) => f.id === share.folderId);
    return folder?.grant?.id === forB.id && folder.peers.some((p) => p.connected);
  }, 'B to join with the invite from the page and connect', WAIT_MS);

  // Revoke it in the page (after the confirm): shown revoked, the CLI agrees, B is cut off.
  await rowB.locator('button[data-revoke]').click();
  await rowB.locator('.state', { hasText: 'revoked' }).waitFor();
  await dialog.locator('#grants-message', { hasText: 'Grant revoked' }).waitFor();
  assert.equal(confirms.length, 1);
  assert.match(confirms[0]!, new RegExp(`device ${deviceB}`));
  assert.equal(await rowB.locator('button[data-revoke]').count(), 0);
  assert.equal((await listed(a, share.folderId)).find((g) => g.id === forB.id)?.status, 'revoked');
  await waitFor(async () => {
    const folder = (await status(a)).folders.find((f) => f.id === share.folderId);
    return folder !== undefined && !folder.peers.some((p) => p.device === deviceB && p.connected);
  }, 'A to drop B once its grant is revoked', WAIT_MS);

  // A read-only bearer invite for a week: its copy button and QR code, and its row.
  const bearer = await createGrant(page, 'ro', 7, 'd');
  const rowBearer = dialog.locator(`tr[data-grant="${bearer.id}"]`);
  await rowBearer.locator('.relative', { hasText: 'in 7 days' }).waitFor();
  assert.equal(await rowBearer.locator('.grantee').textContent(), 'whoever holds the invite');
  assert.equal(await dialog.locator('#grant-invite canvas.qr').count(), 1, 'a QR code of the invite');
  assert.equal(await dialog.locator('#grant-invite button[data-copy=invite]').count(), 1);
  const all = await listed(a, share.folderId);
  assert.deepEqual(
    Object.fromEntries(all.map((g) => [g.id, g.status])),
    { [shortLived.id]: 'expired', [forB.id]: 'revoked', [bearer.id]: 'active' },
  );
  assert.match(await run(a, ['grants', share.folderId]), new RegExp(`${forB.id}\\s+rw\\s+revoked`));
  assert.equal(await dialog.locator('tbody tr[data-grant]').count(), 3);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'grants.png') });

  assert.deepEqual(unexpected, [], 'no other alert, confirm or prompt was opened');
  await page.close();
});
