// The mass-delete guard between two real daemons (issue 25, low item): one peer deleting all 200 files of a
// folder is held on the other, shown in `status` and `ferry deletions`, and the owner applies or restores it;
// bulk restore from the archive and archive paging beyond one page.

import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/cli/client.js';
import { TEMP_FILE_PREFIX } from '../../src/scan/ignore.js';
import type { ArchiveListing, FolderReport, StatusReport } from '../../src/web/daemon-api.js';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';

const FILES = 200;

/** The names in `dir`, without the puller's temp files (a file being fetched is not there yet). */
async function fileNames(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((name) => !name.startsWith(TEMP_FILE_PREFIX)).sort();
}

async function folderOf(daemon: DaemonProcess): Promise<FolderReport> {
  const report = await new ControlClient(daemon.home).call<StatusReport>('GET', '/status');
  return report.folders[0]!;
}

async function cli(daemon: DaemonProcess, ...args: string[]): Promise<string> {
  const result = await ferry([...args, '--home', daemon.home]);
  assert.equal(result.code, 0, `ferry ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

describe('mass delete by a peer, between two daemons', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let dirA: string;
  let dirB: string;
  let folderId: string;

  /** B's folder is paused while A deletes everything, so B hears of all 200 deletions at once. */
  async function deleteEverythingOnA(): Promise<void> {
    const control = new ControlClient(b.home);
    await control.call('POST', `/folders/${folderId}/pause`);
    await rm(join(dirA, 'f'), { recursive: true });
    await waitFor(async () => (await folderOf(a)).localFiles === 0, 'A to record the deletions');
    await control.call('POST', `/folders/${folderId}/resume`);
  }

  before(async () => {
    base = await tempDir('massdel');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(join(base, 'home-b'));
    await Promise.all([a.ready(), b.ready()]);
    dirA = join(base, 'a');
    dirB = join(base, 'b');
    await mkdir(join(dirA, 'f'), { recursive: true });
    for (let i = 0; i < FILES; i++) await writeFile(join(dirA, 'f', `file-${String(i).padStart(3, '0')}.txt`), `content ${i}\n`);
    const keys = JSON.parse(await cli(a, 'share', dirA, '--json')) as { folderId: string; rw: string };
    folderId = keys.folderId;
    await cli(b, 'join', keys.rw, dirB);
    const { listen } = (await a.status()) as unknown as { listen: string };
    await cli(b, 'peers', 'add', listen);
    await waitFor(async () => {
      const folder = await folderOf(b);
      return folder.localFiles === FILES && folder.needFiles === 0 && folder.state === 'idle';
    }, 'B to have all files', 60_000);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('all 200 deleted on A: held on B, shown in status and `ferry deletions`; restore brings them back on A', async () => {
    await deleteEverythingOnA();
    const held = await waitFor(async () => (await folderOf(b)).heldDeletions, 'B to hold the deletions', 60_000);
    assert.equal(held.files, FILES);
    assert.match(held.reason, /more than half/);
    assert.equal(held.devices.length, 1);
    assert.equal((await fileNames(join(dirB, 'f'))).length, FILES, 'nothing deleted on B');
    assert.match(await cli(b, 'status'), /HELD: 200 deletions/);
    const json = JSON.parse(await cli(b, 'status', '--json')) as StatusReport;
    assert.equal(json.folders[0]!.heldDeletions?.files, FILES);
    assert.match(await cli(b, 'deletions', dirB), /200 deletions held[\s\S]*--restore/);

    assert.match(await cli(b, 'deletions', dirB, '--restore'), /200 files kept/);
    await waitFor(async () => (await fileNames(join(dirA, 'f'))).length === FILES, 'A to get the files back', 60_000);
    assert.equal(await readFile(join(dirA, 'f', 'file-123.txt'), 'utf8'), 'content 123\n');
    await waitFor(async () => {
      const [fa, fb] = [await folderOf(a), await folderOf(b)];
      return fa.localFiles === FILES && fa.needFiles === 0 && fb.needFiles === 0 && !fb.heldDeletions;
    }, 'both idle with all files');
    assert.match(await cli(b, 'deletions', dirB), /no deletions are held/);
  });

  test('deleted on A again: apply deletes them on B into the archive; archive pages; bulk restore brings them back everywhere', async () => {
    await deleteEverythingOnA();
    await waitFor(async () => (await folderOf(b)).heldDeletions, 'B to hold the deletions', 60_000);
    assert.match(await cli(b, 'deletions', folderId, '--apply'), /200 held deletions applied/);
    await waitFor(async () => {
      const folder = await folderOf(b);
      return folder.localFiles === 0 && folder.needFiles === 0 && !folder.heldDeletions;
    }, 'B to apply the deletions', 60_000);
    assert.deepEqual(await fileNames(join(dirB, 'f')), []);

    const control = new ControlClient(b.home);
    const first = await control.call<ArchiveListing>('GET', `/folders/${folderId}/archive?limit=150`);
    assert.equal(first.files.length, 150);
    assert.equal(first.total, FILES);
    assert.equal(first.truncated, true);
    const second = await control.call<ArchiveListing>('GET', `/folders/${folderId}/archive?limit=150&offset=150`);
    assert.equal(second.files.length, 50);
    assert.equal(second.truncated, false);
    const paths = new Set([...first.files, ...second.files].map((f) => f.path));
    assert.equal(paths.size, FILES, 'the two pages hold every file once');

    assert.match(await cli(b, 'restore', dirB, 'f/file-007.txt'), /^1 files restored/);
    assert.match(await cli(b, 'restore', dirB, '--all'), /^199 files restored from the archive\n$/);
    await waitFor(async () => (await fileNames(join(dirA, 'f'))).length === FILES, 'A to get the restored files', 60_000);
    assert.equal(await readFile(join(dirA, 'f', 'file-007.txt'), 'utf8'), 'content 7\n');
    assert.equal((await fileNames(join(dirB, 'f'))).length, FILES);
  });
});
