// A file's versions in the archive and restoring one (issue 23), between two real daemons: the
// restore on B is an edit that syncs, so A ends with the chosen bytes too; the replaced version is archived.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/cli/client.js';
import type { ArchivePlanReport, VersionsReport } from '../../src/web/daemon-api.js';
import { controlStatus, DaemonProcess, ferry, removeDir, shareBetween, tempDir, waitFor } from '../helpers/daemon.js';

async function cli(daemon: DaemonProcess, ...args: string[]): Promise<string> {
  const result = await ferry([...args, '--home', daemon.home]);
  assert.equal(result.code, 0, `ferry ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function content(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

describe('versions and restore --at between two daemons', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let dirA: string;
  let dirB: string;
  let folderId: string;

  before(async () => {
    base = await tempDir('versions2');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(join(base, 'home-b'));
    await Promise.all([a.ready(), b.ready()]);
    dirA = join(base, 'a');
    dirB = join(base, 'b');
    await mkdir(join(dirA, 'docs'), { recursive: true });
    await writeFile(join(dirA, 'docs', 'notes.txt'), 'first version\n');
    folderId = (await shareBetween(a, dirA, b, dirB)).folderId;
    await waitFor(async () => (await content(join(dirB, 'docs', 'notes.txt'))) === 'first version\n', 'B to have the first version', 60_000);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('B lists the versions it replaced; restoring one brings its bytes back on both devices', async () => {
    for (const text of ['second version, longer\n', 'third\n']) {
      await writeFile(join(dirA, 'docs', 'notes.txt'), text);
      await waitFor(async () => (await content(join(dirB, 'docs', 'notes.txt'))) === text, `B to have "${text.trim()}"`, 60_000);
    }
    const listed = JSON.parse(await cli(b, 'versions', folderId, 'docs/notes.txt', '--json')) as VersionsReport;
    assert.deepEqual(listed.versions.map((v) => v.size), ['second version, longer\n'.length, 'first version\n'.length], 'newest first');
    // Each made by A (the version B replaced was A's).
    const idA = (await a.status()).device.id;
    assert.ok(listed.versions.every((v) => v.device !== undefined && idA.startsWith(v.device)), JSON.stringify(listed.versions));
    assert.match(await cli(b, 'versions', folderId, 'docs/notes.txt'), new RegExp(`2 archived versions of docs/notes\\.txt[^]*by [^\\n]*${idA.slice(0, 7)}`));
    const first = listed.versions[1]!;
    const out = await cli(b, 'restore', folderId, 'docs/notes.txt', '--at', first.at);
    assert.match(out, /restored to its version of/);
    assert.equal(await content(join(dirB, 'docs', 'notes.txt')), 'first version\n');
    await waitFor(async () => (await content(join(dirA, 'docs', 'notes.txt'))) === 'first version\n', 'the restored bytes to reach A', 60_000);
    // The version it replaced ("third") is in B's archive now; the restored one left it.
    const after = JSON.parse(await cli(b, 'versions', folderId, 'docs/notes.txt', '--json')) as VersionsReport;
    assert.deepEqual(after.versions.map((v) => v.size).sort(), ['third\n'.length, 'second version, longer\n'.length].sort());
    // Status measures the archive (two versions of notes.txt, nothing to purge under the 14-day default), and a
    // small archive again within seconds of the restore, not up to a minute later (archivePlanMaxAgeMs).
    const measured = await waitFor(async () => {
      const status = await controlStatus<{ folders: Array<{ archive?: { files: number; bytes: number; purgeBytes: number } }> }>(b.home);
      const archive = status.folders[0]!.archive;
      return archive && archive.files === 2 ? archive : undefined;
    }, "status to measure B's archive after the restore", 30_000);
    assert.equal(measured.bytes, 'third\n'.length + 'second version, longer\n'.length);
    assert.equal(measured.purgeBytes, 0);
    // A staggered policy with a cap of 10 bytes: the folder restarts with it and purges, the oldest first.
    const options = await cli(b, 'folders', 'options', folderId, '--versions', 'staggered:30', '--archive-cap', '10');
    assert.match(options, /versions\s+staggered up to 30 days, at most 10 B/);
    const left = await waitFor(async () => {
      const listing = JSON.parse(await cli(b, 'versions', folderId, 'docs/notes.txt', '--json')) as VersionsReport;
      return listing.versions.length === 1 ? listing.versions : undefined;
    }, 'the purge under the cap', 60_000);
    assert.equal(left[0]!.size, 'third\n'.length, 'the newest stays');
    const plan = await new ControlClient(b.home).call<ArchivePlanReport>('GET', `/folders/${folderId}/archive/plan`);
    assert.deepEqual([plan.policy.kind, plan.files, plan.purgeFiles], ['staggered', 1, 0]);
    // The bulk restore still takes a prefix (unchanged), and --at wants one path.
    const noPath = await ferry(['restore', folderId, '--all', '--at', first.at, '--home', b.home]);
    assert.equal(noPath.code, 2);
  });
});
