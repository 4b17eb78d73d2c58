// A WebDAV PUT onto a full disk (a 1 MiB tmpfs as the folder, mounted as root): the answer is 507, the
// old file stays intact under its name, no temp file is left and nothing is archived; once the write
// fits, the PUT replaces the file and the old version goes to the archive.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir } from '../helpers/daemon.js';
import { addAppPassword, davRequest, webOf, type DavTarget } from '../helpers/dav.js';
import { needs } from '../helpers/needs.js';

const OLD = 'the old version, which must survive a full disk\n';

describe('WebDAV on a full disk', { skip: needs.root(), timeout: 120_000 }, () => {
  let base: string;
  let dir: string;
  let mounted = false;
  let daemon: DaemonProcess | undefined;
  let folderId: string;
  let rw: DavTarget;

  before(async () => {
    base = await tempDir('dav-full');
    dir = join(base, 'disk');
    await mkdir(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    mounted = true;
    await writeFile(join(dir, 'doc.txt'), OLD);
    daemon = new DaemonProcess(join(base, 'home'));
    await daemon.ready();
    const shared = await ferry(['share', dir, '--json', '--home', daemon.home]);
    assert.equal(shared.code, 0, shared.stderr);
    folderId = (JSON.parse(shared.stdout) as { folderId: string }).folderId;
    rw = { web: await webOf(daemon), ...(await addAppPassword(daemon, 'laptop')) };
  });

  after(async () => {
    await daemon?.stop();
    if (mounted) execFileSync('umount', ['-l', dir]);
    await removeDir(base);
  });

  /** Names in the folder (root level) other than the marker. */
  async function names(): Promise<string[]> {
    return (await readdir(dir)).filter((name) => name !== '.ferry').sort();
  }

  async function archived(): Promise<string[]> {
    const entries = await readdir(join(dir, '.ferry', 'archive'), { recursive: true, withFileTypes: true }).catch(() => []);
    return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
  }

  test('a PUT over a file that does not fit: 507, the old file intact, no temp file, nothing archived', async () => {
    const answer = await davRequest(rw, 'PUT', `/dav/${folderId}/doc.txt`, { body: Buffer.alloc(2 * 1024 * 1024, 0x61) });
    assert.equal(answer.status, 507, answer.text);
    assert.match(answer.text, /disk is full/i);
    assert.equal(await readFile(join(dir, 'doc.txt'), 'utf8'), OLD);
    assert.deepEqual(await names(), ['doc.txt'], 'no temp file left beside it');
    assert.deepEqual(await archived(), []);
  });

  test('a PUT of a new file that does not fit: 507, no file under its name', async () => {
    const answer = await davRequest(rw, 'PUT', `/dav/${folderId}/big.bin`, { body: Buffer.alloc(2 * 1024 * 1024, 0x62) });
    assert.equal(answer.status, 507, answer.text);
    assert.deepEqual(await names(), ['doc.txt']);
  });

  test('once the write fits: the PUT replaces the file, the old version is in the archive', async () => {
    const answer = await davRequest(rw, 'PUT', `/dav/${folderId}/doc.txt`, { body: 'the new version\n' });
    assert.equal(answer.status, 204, answer.text);
    assert.equal(await readFile(join(dir, 'doc.txt'), 'utf8'), 'the new version\n');
    const kept = await archived();
    assert.equal(kept.length, 1);
    assert.match(kept[0]!, /^doc\.txt~/);
    assert.equal(await readFile(join(dir, '.ferry', 'archive', kept[0]!), 'utf8'), OLD);
  });
});
