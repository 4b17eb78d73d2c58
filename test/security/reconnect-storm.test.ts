// A key holder reconnecting under fresh device IDs must not make the daemon re-sign or re-seal the whole index each time (issue 25, item 7).

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dialTls } from '../../src/connections/dial.js';
import { FolderKeys, loadOrCreateDeviceIdentity } from '../../src/keys/index.js';
import type { FileRecord } from '../../src/index/records.js';
import { establishPeer } from '../../src/protocol/index.js';
import { parseAddress } from '../../src/util/address.js';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { listenAddress } from './hostile-peer.js';

const FILES = 200;
const RECONNECTS = 4;

/** Connects once as a brand-new device holding `key`, takes the daemon's full index of the folder, hangs up. */
async function takeIndex(dir: string, address: string, key: string, n: number): Promise<FileRecord[]> {
  const identity = await loadOrCreateDeviceIdentity(join(dir, `device-${n}`), { name: `visitor-${n}` });
  const keys = FolderKeys.parse(key);
  const socket = await dialTls(parseAddress(address), identity, { timeoutMs: 10_000 });
  const { connection } = await establishPeer(socket, { role: 'client', identity, softwareVersion: 'test', folders: [keys] });
  const records = new Map<string, FileRecord>();
  try {
    while (records.size < FILES) {
      const message = await connection.receive({ timeoutMs: 20_000 });
      if (message.type !== 'Index' && message.type !== 'IndexUpdate') continue;
      for (const record of message.records) if (record.type === 'file') records.set(record.path, record);
    }
  } finally {
    await connection.close('SHUTDOWN', 'done');
  }
  return [...records.values()];
}

/** The daemon's counters from its last "full index sent" line after `from` in its log. */
function lastCounts(log: string): { signed: number; sealed: number; hits: number } | undefined {
  const lines = log.split('\n').filter((line) => line.includes('full index sent'));
  const line = lines.at(-1);
  if (!line) return undefined;
  const field = (name: string): number => Number(new RegExp(`${name}=(\\d+)`).exec(line)?.[1] ?? NaN);
  return { signed: field('folderSigned'), sealed: field('folderSealed'), hits: field('folderCacheHits') };
}

describe('reconnect storm by a key holder', () => {
  let base: string;
  let daemon: DaemonProcess;
  let address: string;
  let keys: { ro: string; enc: string };

  before(async () => {
    base = await tempDir('sec-storm');
    daemon = new DaemonProcess(join(base, 'home'));
    await daemon.ready();
    const dir = join(base, 'folder');
    await mkdir(dir);
    for (let i = 0; i < FILES; i++) await writeFile(join(dir, `f${i}.txt`), `file ${i}\n`);
    const shared = await ferry(['share', dir, '--json', '--home', daemon.home]);
    assert.equal(shared.code, 0, shared.stderr);
    keys = JSON.parse(shared.stdout) as { ro: string; enc: string };
    await waitFor(async () => (await daemon.status()).folders[0]?.localFiles === FILES || undefined, 'the scan');
    address = await listenAddress(daemon);
  });

  after(async () => {
    await daemon.stop();
    await removeDir(base);
  });

  test('RO key under fresh device IDs: each record is signed once', async () => {
    for (let n = 0; n < RECONNECTS; n++) {
      const records = await takeIndex(base, address, keys.ro, n);
      assert.equal(records.length, FILES);
      assert.ok(records.every((record) => record.signature !== undefined));
    }
    const counts = await waitFor(async () => {
      const c = lastCounts(daemon.log);
      return c && c.hits >= (RECONNECTS - 1) * FILES ? c : undefined;
    }, 'the daemon to report its full index sends');
    assert.ok(counts.signed <= FILES + 1, `signed ${counts.signed} records for ${RECONNECTS} links of ${FILES} files`);
  });

  test('ENC key under fresh device IDs: each record is sealed once (the same sealed bytes every time)', async () => {
    const first = await takeIndex(base, address, keys.enc, 100);
    const second = await takeIndex(base, address, keys.enc, 101);
    const sealed = (records: FileRecord[]): Map<string, string> => new Map(records.map((r) => [r.path, Buffer.from(r.sealed!).toString('base64')]));
    const a = sealed(first);
    const b = sealed(second);
    assert.equal(a.size, FILES);
    for (const [path, bytes] of a) assert.equal(b.get(path), bytes, `${path} re-sealed for the second link`);
    const counts = await waitFor(async () => {
      const c = lastCounts(daemon.log);
      return c && c.sealed >= FILES ? c : undefined;
    }, 'the daemon to report its full index sends');
    assert.ok(counts.sealed <= FILES + 1, `sealed ${counts.sealed} records for 2 links of ${FILES} files`);
  });
});
