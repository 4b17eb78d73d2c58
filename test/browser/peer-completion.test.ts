// Per-peer completion on the page, in real headless Chromium (desktop and phone sizes): the sharer's folder card
// says how complete each peer is, "peer NAME: 20 % · 2 files to fetch", then "100 % · up to date" once it caught
// up (issue 21). FERRY_SCREENSHOTS=DIR also saves both cards there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonProcess, ferry, waitFor } from '../helpers/daemon.js';
import { browserSuite, NO_BROWSER, PASSWORD, SHOTS } from './chromium.js';

const WAIT_MS = 60_000;

const suite = browserSuite('browser-completion');
const { daemons } = suite;

async function cli(daemon: DaemonProcess, ...args: string[]): Promise<string> {
  const result = await ferry([...args, '--home', daemon.home]);
  assert.equal(result.code, 0, `ferry ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

interface Peer {
  device: string;
  connected: boolean;
  completion?: number;
  needFiles?: number;
}

async function peerOf(daemon: DaemonProcess, device: string): Promise<Peer | undefined> {
  return ((await daemon.status()).folders[0]?.peers as Peer[] | undefined)?.find((p) => p.device === device);
}

test("the sharer's folder card shows each peer's completion and what it still needs", { skip: NO_BROWSER, timeout: 180_000 }, async () => {
  const dirA = join(suite.root, 'a');
  const dirB = join(suite.root, 'b');
  await mkdir(dirA);
  await writeFile(join(dirA, 'one.bin'), Buffer.alloc(100_000, 1));
  const a = new DaemonProcess(join(suite.root, 'home-a'));
  let b = new DaemonProcess(join(suite.root, 'home-b'));
  daemons.push(a, b);
  await Promise.all([a.ready(), b.ready()]);
  const bId = (await b.status()).device.id;
  const keys = JSON.parse(await cli(a, 'share', dirA, '--json')) as { folderId: string; rw: string };
  await cli(b, 'join', keys.rw, dirB);
  await cli(b, 'peers', 'add', ((await a.status()) as unknown as { listen: string }).listen);
  await waitFor(async () => (await peerOf(a, bId))?.completion === 100, 'B complete', WAIT_MS);

  // B goes away; A gets files B has not got.
  await b.stop();
  await writeFile(join(dirA, 'two.bin'), Buffer.alloc(300_000, 2));
  await writeFile(join(dirA, 'three.bin'), Buffer.alloc(100_000, 3));
  await waitFor(async () => (await peerOf(a, bId))?.needFiles === 2, 'A to see what B misses', WAIT_MS);

  const bName = (await a.status()).folders[0]!.peers.map((p) => p as { device: string; name?: string }).find((p) => p.device === bId)!.name;
  const page = await suite.browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(`http://${((await a.status()) as unknown as { web: string }).web}/`);
  await page.locator('#setup-form #password').fill(PASSWORD);
  await page.locator('#setup-form #confirm').fill(PASSWORD);
  await page.locator('#setup-form button[type=submit]').click();
  const peers = page.locator(`article[data-folder="${keys.folderId}"] .folder-peers`);
  await peers.locator('li', { hasText: `peer ${bName}: 20 % · 2 files to fetch` }).waitFor();
  assert.match(await peers.innerText(), /not connected/);
  if (SHOTS) await page.locator(`article[data-folder="${keys.folderId}"]`).screenshot({ path: join(SHOTS, 'peer-completion.png') });

  // B comes back and catches up: the same card says so without a reload.
  b = new DaemonProcess(b.home);
  daemons.push(b);
  await b.ready();
  await peers.locator('li', { hasText: `peer ${bName}: 100 % · up to date` }).waitFor();
  assert.doesNotMatch(await peers.innerText(), /not connected/);

  await page.setViewportSize({ width: 390, height: 844 });
  const line = peers.locator('li').first();
  const box = await line.boundingBox();
  assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the peer line fits a phone screen: ${JSON.stringify(box)}`);
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'phone-peer-completion.png') });
  await page.close();
});
