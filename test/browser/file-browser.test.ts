// The file browser and app passwords in real headless Chromium (issue 22): browse into a directory, download (a
// range too), upload a large file (FERRY_UPLOAD_MIB, 200 MiB by default) while the daemon's memory stays flat, new
// folder, rename, delete to the archive and restore from it; an app password made in Settings opens the WebDAV share.
// FERRY_SCREENSHOTS=DIR saves the file browser and the app passwords card there.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { type Browser } from 'playwright-core';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { davRequest, webOf } from '../helpers/dav.js';
import { launchChromium, NO_BROWSER, PASSWORD, SHOTS } from './chromium.js';

const WAIT_MS = 120_000;
const UPLOAD_MIB = Number(process.env.FERRY_UPLOAD_MIB ?? 200);

let root: string;
let browser: Browser;
let daemon: DaemonProcess;

before(async () => {
  root = await tempDir('browser-files');
  if (NO_BROWSER) return;
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await daemon?.stop();
  await removeDir(root);
});

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A zip's entries and their contents (stored or deflated), read from its central directory. */
function readZip(zip: Buffer): Record<string, string> {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  assert.ok(end >= 0, 'a zip has an end of central directory record');
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const out: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    assert.equal(zip.readUInt32LE(at), 0x02014b50);
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.subarray(at + 46, at + 46 + nameLength).toString('utf8');
    const dataAt = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(dataAt, dataAt + compressed);
    out[name] = (method === 8 ? inflateRawSync(data) : data).toString('utf8');
    at += 46 + nameLength + extraLength + commentLength;
  }
  return out;
}

/** The daemon's resident set and its peak so far, in MiB (Linux). */
async function memoryMiB(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

test('browse, download, upload, new folder, rename, delete and restore in the file browser; an app password from Settings opens WebDAV', { skip: NO_BROWSER, timeout: 600_000 }, async () => {
  const dir = join(root, 'share');
  await mkdir(join(dir, 'docs'), { recursive: true });
  await writeFile(join(dir, 'docs', 'readme.txt'), 'read me\n');
  const video = randomBytes(1024 * 1024);
  await writeFile(join(dir, 'video.bin'), video);
  // The large upload's source, written in chunks (never whole in this process's memory).
  const big = join(root, 'big.bin');
  const handle = await open(big, 'w');
  for (let i = 0; i < UPLOAD_MIB; i++) await handle.write(randomBytes(1024 * 1024));
  await handle.close();

  daemon = new DaemonProcess(join(root, 'home'));
  await daemon.ready();
  const shared = await ferry(['share', dir, '--json', '--home', daemon.home]);
  assert.equal(shared.code, 0, shared.stderr);
  const { folderId } = JSON.parse(shared.stdout) as { folderId: string };
  const web = await webOf(daemon);

  const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(`http://${web}/`);
  await page.locator('#setup-form #password').fill(PASSWORD);
  await page.locator('#setup-form #confirm').fill(PASSWORD);
  await page.locator('#setup-form button[type=submit]').click();
  await page.locator(`[data-folder="${folderId}"] button.files`).click();
  const dialog = page.locator('#files-dialog');
  await dialog.locator('[data-entry="video.bin"]').waitFor();
  assert.deepEqual(await dialog.locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-entry'))), ['docs', 'video.bin'],
    'directories first, then files; .ferry is not shown');

  // Download: the whole file by the link, and a range (what a video player's seek asks for).
  const [download] = await Promise.all([page.waitForEvent('download'), dialog.locator('a[data-file="video.bin"]').click()]);
  assert.ok((await readFile((await download.path())!)).equals(video));
  const range = await page.evaluate(async (url) => {
    const response = await fetch(url, { headers: { Range: 'bytes=1000-1009' } });
    return { status: response.status, bytes: [...new Uint8Array(await response.arrayBuffer())] };
  }, `/dav/${folderId}/video.bin`);
  assert.equal(range.status, 206);
  assert.deepEqual(range.bytes, [...video.subarray(1000, 1010)]);

  // A directory as a zip stream: the entries and their bytes.
  await mkdir(join(dir, 'docs', 'sub'));
  await writeFile(join(dir, 'docs', 'sub', 'deep.txt'), 'deep\n');
  await page.locator('#files-crumbs button[data-path=""]').click();
  const [zipped] = await Promise.all([page.waitForEvent('download'), dialog.locator('a[data-zip="docs"]').click()]);
  assert.equal(zipped.suggestedFilename(), 'docs.zip');
  assert.deepEqual(readZip(await readFile((await zipped.path())!)), { 'readme.txt': 'read me\n', 'sub/': '', 'sub/deep.txt': 'deep\n' });

  // Browse into a directory and back.
  await dialog.locator('button[data-dir="docs"]').click();
  await dialog.locator('[data-entry="readme.txt"]').waitFor();
  await dialog.locator('#files-crumbs button[data-path=""]').click();
  await dialog.locator('[data-entry="video.bin"]').waitFor();

  // Upload a large file: streamed, renamed into place when complete; the daemon's memory stays flat.
  const before = await memoryMiB(daemon.child.pid!);
  let peakDuring = before.rss;
  const sampler = setInterval(() => {
    void memoryMiB(daemon.child.pid!).then((m) => (peakDuring = Math.max(peakDuring, m.rss))).catch(() => undefined);
  }, 200);
  const started = Date.now();
  try {
    await dialog.locator('#files-upload').setInputFiles(big);
    await dialog.locator('[data-entry="big.bin"]').waitFor();
  } finally {
    clearInterval(sampler);
  }
  const seconds = (Date.now() - started) / 1000;
  const afterUpload = await memoryMiB(daemon.child.pid!);
  console.log(`upload ${UPLOAD_MIB} MiB in ${seconds.toFixed(1)} s; daemon RSS ${before.rss.toFixed(0)} → peak ${Math.max(peakDuring, afterUpload.rss).toFixed(0)} MiB`);
  assert.equal(await sha256(join(dir, 'big.bin')), await sha256(big));
  assert.ok(Math.max(peakDuring, afterUpload.rss) - before.rss < Math.min(96, UPLOAD_MIB / 2 + 32), 'the daemon does not hold the upload in memory');
  assert.ok(!(await readdir(dir)).some((name) => name.startsWith('.ferry-tmp-')), 'no temp file is left');
  if (SHOTS) await page.screenshot({ path: join(SHOTS, 'file-browser.png') });

  // New folder, rename, delete (to the archive).
  page.once('dialog', (d) => void d.accept('new folder'));
  await dialog.locator('#files-mkdir').click();
  await dialog.locator('[data-entry="new folder"]').waitFor();
  page.once('dialog', (d) => void d.accept('clip.bin'));
  await dialog.locator('button[data-rename="video.bin"]').click();
  await dialog.locator('[data-entry="clip.bin"]').waitFor();
  assert.ok((await readFile(join(dir, 'clip.bin'))).equals(video));
  page.once('dialog', (d) => void d.accept());
  await dialog.locator('button[data-delete="clip.bin"]').click();
  await dialog.locator('[data-entry="clip.bin"]').waitFor({ state: 'detached' });
  assert.deepEqual((await readdir(dir)).sort(), ['.ferry', 'big.bin', 'docs', 'new folder']);
  await dialog.locator('button.close').click();

  // Restore from the archive: the file is back.
  await page.locator(`[data-folder="${folderId}"] button.archive`).click();
  const archive = page.locator('#archive-dialog');
  await archive.locator('td.file', { hasText: 'clip.bin' }).waitFor();
  await archive.locator('button[data-archive-path^="clip.bin~"]').click();
  await waitFor(async () => (await readFile(join(dir, 'clip.bin')).catch(() => undefined))?.equals(video), 'clip.bin restored', WAIT_MS);
  await archive.locator('button.close').click();

  // An app password made in Settings opens the WebDAV share, and only that.
  await page.locator('button.tab[data-view="settings"]').click();
  await page.locator('#app-password-name').fill('phone');
  await page.locator('#app-password-folder').selectOption(folderId);
  await page.locator('#app-password-ro').check();
  await page.locator('#app-password-form button[type=submit]').click();
  const password = await page.locator('#issued-password').innerText();
  await page.locator('[data-app-password="phone"]').waitFor();
  if (SHOTS) await page.locator('#app-passwords').screenshot({ path: join(SHOTS, 'app-passwords.png') });
  const target = { web, user: 'phone', password };
  assert.equal((await davRequest(target, 'PROPFIND', `/dav/${folderId}/`, { headers: { Depth: '1' } })).status, 207);
  assert.equal((await davRequest(target, 'PUT', `/dav/${folderId}/x.txt`, { body: 'x' })).status, 403, 'read-only');
  page.once('dialog', (d) => void d.accept());
  await page.locator('button[data-revoke="phone"]').click();
  await page.locator('[data-app-password="phone"]').waitFor({ state: 'detached' });
  assert.equal((await davRequest(target, 'PROPFIND', `/dav/${folderId}/`, { headers: { Depth: '1' } })).status, 401);
  await page.close();
});
