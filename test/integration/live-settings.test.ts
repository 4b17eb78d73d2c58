// Live settings: a setting saved through the API changes the running daemon, with no restart. An upload
// limit set after start holds back the next transfer between two real daemons; trackers switched on,
// moved and switched off start, move and stop the announcing (seen by a tracker on loopback).

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ControlClient } from '../../src/cli/client.js';
import { MAX_REQUEST_BYTES } from '../../src/sync/fetcher.js';
import type { SettingsReport } from '../../src/web/daemon-api.js';
import { DaemonProcess, daemonLaunch, ferry, removeDir, shareBetween, tempDir, trackDaemonLog, waitFor } from '../helpers/daemon.js';

let base: string;
before(async () => {
  base = await tempDir('live-settings');
});
after(async () => {
  await removeDir(base);
});

test('an upload limit saved after start limits the next transfer', async () => {
  const dirA = join(base, 'rate-a');
  const dirB = join(base, 'rate-b');
  await mkdir(dirA, { recursive: true });
  await mkdir(dirB, { recursive: true });
  const a = new DaemonProcess(join(base, 'rate-home-a'));
  const b = new DaemonProcess(join(base, 'rate-home-b'));
  try {
    await Promise.all([a.ready(), b.ready()]);
    await writeFile(join(dirA, 'warm-up.txt'), 'first\n');
    await shareBetween(a, dirA, b, dirB);
    // Unlimited at first: the first file arrives, so the link is up before the limit is set.
    await waitFor(async () => (await readFile(join(dirB, 'warm-up.txt'), 'utf8').catch(() => '')) === 'first\n', 'the first file to arrive');

    const limitKBps = 512;
    const report = await new ControlClient(a.home).call<SettingsReport>('PUT', '/settings', { uploadKBps: limitKBps });
    assert.equal(report.running.uploadKBps, limitKBps, 'the running daemon took the limit');
    assert.equal(report.restartRequired, false);

    const size = 6 * 1024 * 1024;
    const content = randomBytes(size);
    const started = performance.now();
    await writeFile(join(dirA, 'big.bin'), content);
    await waitFor(async () => {
      const got = await readFile(join(dirB, 'big.bin')).catch(() => null);
      return got !== null && got.equals(content);
    }, 'the big file to arrive', 90_000);
    const seconds = (performance.now() - started) / 1000;
    // A lower bound only: the bucket's one second's worth goes at once, and a request (up to
    // MAX_REQUEST_BYTES) that finds it full goes at once too, leaving a debt the last one never waits
    // for; the rest goes at the limit.
    const least = (size - MAX_REQUEST_BYTES) / (limitKBps * 1024) - 1;
    assert.ok(seconds >= least, `${size} bytes at ${limitKBps} KiB/s took ${seconds.toFixed(2)} s, less than the ${least.toFixed(2)} s the limit allows`);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

/** A daemon with trackers left to the settings (no --no-trackers), LAN, DHT, port mapping and STUN off. */
function trackerDaemon(home: string): { home: string; child: ChildProcess; log: string; stop: () => Promise<void> } {
  const { argv, env } = daemonLaunch([
    '--home', home, '--web', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--no-lan', '--no-nat', '--no-dht', '--no-stun', '--log-level', 'debug',
  ]);
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const node = { home, child, log: '', stop: async (): Promise<void> => undefined };
  child.stdout!.on('data', (d: Buffer) => (node.log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (node.log += d.toString()));
  const exited = new Promise((resolve) => child.on('close', resolve));
  trackDaemonLog(node, exited);
  node.stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return node;
}

/** An HTTP tracker on loopback that records each announce's path and event and answers with no peers. */
async function tracker(): Promise<{ server: Server; url: (path: string) => string; announces: Array<{ path: string; event: string }> }> {
  const announces: Array<{ path: string; event: string }> = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://tracker');
    announces.push({ path: url.pathname, event: url.searchParams.get('event') ?? 'none' });
    res.end('d8:intervali1800e5:peers0:e');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { server, url: (path) => `http://127.0.0.1:${port}${path}`, announces };
}

test('trackers saved, moved and switched off apply to the running daemon', async () => {
  const home = join(base, 'tracker-home');
  const dir = join(base, 'tracker-dir');
  await mkdir(dir, { recursive: true });
  const { server, url, announces } = await tracker();
  const node = trackerDaemon(home);
  try {
    const control = new ControlClient(home);
    await waitFor(() => control.call('GET', '/status').then(() => true), 'the daemon to start');
    assert.equal((await ferry(['share', dir, '--home', home])).code, 0);
    const status = async () => (await control.call<{ services: { discovery: { trackers: unknown } } }>('GET', '/status')).services.discovery.trackers;
    assert.deepEqual(await status(), { enabled: false }, 'trackers on, but no tracker named yet');

    await control.call('PUT', '/settings', { trackerUrls: [url('/one/announce')] });
    await waitFor(async () => announces.some((a) => a.path === '/one/announce'), 'an announce to the tracker just named');

    await control.call('PUT', '/settings', { trackerUrls: [url('/two/announce')] });
    await waitFor(async () => announces.some((a) => a.path === '/two/announce'), 'an announce to the new tracker');
    const jobs = (await status()) as Array<{ url: string }>;
    assert.deepEqual(jobs.map((job) => job.url), [url('/two/announce')], 'only the new tracker is announced to');

    const before = announces.length;
    const off = await control.call<SettingsReport>('PUT', '/settings', { trackers: false });
    assert.equal(off.running.trackers, false);
    assert.deepEqual(await status(), { enabled: false }, 'the tracker client stopped');
    // Nothing but the farewell (event=stopped) reaches the tracker once trackers are off.
    assert.ok(announces.slice(before).every((a) => a.event === 'stopped'), JSON.stringify(announces.slice(before)));
  } finally {
    await node.stop();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('ferry settings shows what runs and why; ferry settings set applies at once, with the page\'s checks', async () => {
  const daemon = new DaemonProcess(join(base, 'cli-home'));
  try {
    await daemon.ready();
    const set = await ferry(['settings', 'set', 'downloadKBps=100', 'deviceName=cli-nas', 'lan=on', 'trackerUrls=udp://127.0.0.1:6969/announce,http://127.0.0.1:1/announce', '--home', daemon.home]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^saved and applied: downloadKBps, deviceName, lan, trackerUrls\n/);
    assert.match(set.stdout, /\nlan: --no-lan decides this run; the saved value is used without it\n/);
    assert.equal((await daemon.status()).device.name, 'cli-nas', 'the running daemon took the name');

    const shown = await ferry(['settings', '--home', daemon.home]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^downloadKBps +100$/m);
    assert.match(shown.stdout, /^lan +off {3}\(set by --no-lan at start; saved: on\)$/m);
    assert.match(shown.stdout, /^trackerUrls +udp:\/\/127\.0\.0\.1:6969\/announce,http:\/\/127\.0\.0\.1:1\/announce$/m);
    const json = JSON.parse((await ferry(['settings', '--json', '--home', daemon.home])).stdout) as SettingsReport;
    assert.deepEqual([json.running.downloadKBps, json.settings.lan, json.running.lan], [100, true, false]);

    const refused: Array<[string, RegExp]> = [
      ['colour=red', /unknown setting 'colour'; the settings are /],
      ['uploadKBps=fast', /uploadKBps takes a whole number/],
      ['lan=maybe', /lan takes on or off/],
      ['archiveDays=99999', /archiveDays must be a whole number from 0 to 3650/],
      ['archiveDays', /write each setting as NAME=VALUE/],
    ];
    for (const [arg, message] of refused) {
      const result = await ferry(['settings', 'set', arg, '--home', daemon.home]);
      assert.equal(result.code, 2, `${arg}: ${result.stderr}`);
      assert.match(result.stderr, message, arg);
    }
  } finally {
    await daemon.stop();
  }
});
