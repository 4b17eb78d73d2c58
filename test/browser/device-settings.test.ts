// This device, live settings and peer removal on the page, in real headless Chromium (desktop and phone sizes):
// the Peers view's "This device" card shows the ID (copy, QR code), the name (renamed in place, applied at once),
// the sync address and the port mapping; the Settings view shows a flag-set value as running and locked, and a
// saved setting applies without a restart; an added address is removed with its button (issue 21).
// FERRY_SCREENSHOTS=DIR also saves the screenshots there (docs/screenshots/ holds the committed ones).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { AddedPeerReport, SettingsReport } from '../../src/web/daemon-api.js';
import { ControlClient } from '../../src/cli/client.js';
import { DaemonProcess, ferry, waitFor } from '../helpers/daemon.js';
import { browserSuite, NO_BROWSER, PASSWORD, SHOTS } from './chromium.js';

const WAIT_MS = 60_000;

const suite = browserSuite('browser-device');
const { daemons } = suite;

test('this device, live settings and removing a peer address, at desktop and phone sizes', { skip: NO_BROWSER, timeout: 180_000 }, async () => {
  const a = new DaemonProcess(join(suite.root, 'home-a'));
  daemons.push(a);
  await a.ready();
  const status = (await a.status()) as Awaited<ReturnType<DaemonProcess['status']>> & { listen: string; web: string };
  const control = new ControlClient(a.home);

  const page = await suite.browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(`http://${status.web}/`);
  await page.locator('#setup-form #password').fill(PASSWORD);
  await page.locator('#setup-form #confirm').fill(PASSWORD);
  await page.locator('#setup-form button[type=submit]').click();
  await page.locator('button.tab[data-view=peers]').click();

  // This device: the ID with its QR code, the sync address, the port mapping (off: the test daemon runs --no-nat).
  const card = page.locator('#this-device');
  await waitFor(async () => (await page.locator('#device-id').inputValue()) === status.device.id, 'the device ID in the card', WAIT_MS);
  await card.locator('canvas.qr').waitFor();
  assert.equal(await page.locator('#device-listen').innerText(), status.listen);
  assert.equal(await page.locator('#device-mapping').innerText(), 'off');
  assert.equal(await page.locator('#device-pinhole').innerText(), 'off');
  assert.equal(await page.locator('#device-external').innerText(), 'not known yet');
  assert.equal(await page.locator('#device-name').inputValue(), status.device.name);

  // Renamed in place: the running daemon takes the name at once (status, which peers' next handshake carries).
  await page.locator('#device-name').fill('attic-nas');
  await page.locator('#device-name-form button[type=submit]').click();
  await page.locator('#device-name-note', { hasText: 'Renamed' }).waitFor();
  assert.equal((await a.status()).device.name, 'attic-nas');

  // An added address, listed with a Remove button; removing it stops dialling it.
  await page.locator('#peer-address').fill('127.0.0.1:9');
  await page.locator('#peer-form button[type=submit]').click();
  const row = page.locator('#added-table tr', { hasText: '127.0.0.1:9' });
  await row.waitFor();
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'this-device.png') });
  await row.locator('button', { hasText: 'Remove' }).click();
  await row.waitFor({ state: 'detached' });
  await page.locator('#peers-known-empty, p.empty', { hasText: 'None' }).first().waitFor();
  const peers = await control.call<{ added: AddedPeerReport[] }>('GET', '/peers');
  assert.deepEqual(peers.added, []);
  assert.equal((await ferry(['peers', 'list', '--home', a.home])).stdout.split('\n')[0], 'no addresses added (ferry peers add HOST:PORT)');

  // Settings: --no-lan decides this run, so the box shows the running value, locked, and says why.
  await page.locator('button.tab[data-view=settings]').click();
  await page.locator('#setting-lan-flag', { hasText: 'Set by --no-lan at start' }).waitFor();
  assert.equal(await page.locator('#setting-lan').isDisabled(), true);
  assert.equal(await page.locator('#setting-lan').isChecked(), false);
  assert.equal(await page.locator('#setting-archiveDays').isDisabled(), false);
  // A limit saved in the page is the running daemon's at once: no restart, no "restart" note.
  await page.locator('#setting-uploadKBps').fill('300');
  await page.locator('#settings-form button[type=submit]').click();
  await page.locator('#settings-note', { hasText: 'Saved and applied' }).waitFor();
  assert.doesNotMatch(await page.locator('#settings-note').innerText(), /[Rr]estart/);
  const settings = await control.call<SettingsReport>('GET', '/settings');
  assert.deepEqual([settings.running.uploadKBps, settings.settings.uploadKBps, settings.running.deviceName], [300, 300, 'attic-nas']);
  assert.equal(settings.settings.lan, true, 'the locked box did not store the flag\'s value');
  if (SHOTS) {
    await page.locator('#setting-uploadKBps').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'settings-live.png') });
  }

  // Phone size: the card and its QR code fit the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.locator('button.tab[data-view=peers]').click();
  await card.waitFor();
  for (const what of ['#this-device', '#device-id', '#this-device canvas.qr']) {
    const box = await page.locator(what).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${what} fits a phone screen: ${JSON.stringify(box)}`);
  }
  if (SHOTS) {
    await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
    await page.screenshot({ path: join(SHOTS, 'phone-this-device.png') });
  }
  await page.close();
});
