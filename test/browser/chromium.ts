// What every browser test shares: Debian's Chromium started headless as this machine allows it
// (no sandbox as root, no background networking: the closed network refuses it), the admin
// password the tests set, and where FERRY_SCREENSHOTS=DIR saves screenshots.

import { after, before } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { DaemonProcess, removeDir, tempDir } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';

export const CHROMIUM = '/usr/bin/chromium';
/** The skip reason when Chromium is missing (a failure under CI=true: it is on scripts/debian-packages). */
export const NO_BROWSER = needs.file(CHROMIUM, 'chromium');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
export const PASSWORD = 'ferry admin 1234';
/** Also save the screenshots there (docs/screenshots/ holds the committed ones). */
export const SHOTS = process.env.FERRY_SCREENSHOTS;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** A browser test file's shared state: its temp directory, Chromium, and the daemons it starts. */
export interface BrowserSuite {
  root: string;
  browser: Browser;
  daemons: DaemonProcess[];
}

/**
 * Registers the file's before/after: a temp directory, Chromium (when it is there; without it the
 * tests skip, or fail under CI), and at the end the daemons stopped and the directory removed.
 */
export function browserSuite(name: string): BrowserSuite {
  const suite = { root: '', browser: undefined as unknown as Browser, daemons: [] as DaemonProcess[] };
  before(async () => {
    suite.root = await tempDir(name);
    if (!NO_BROWSER) suite.browser = await launchChromium();
  });
  after(async () => {
    await suite.browser?.close();
    await Promise.all(suite.daemons.map((daemon) => daemon.stop()));
    await removeDir(suite.root);
  });
  return suite;
}
