// Conflicts made by two real daemons: listed by API and CLI on both devices, resolved each way, and the loser kept in the archive.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, shareBetween, tempDir, waitFor } from '../helpers/daemon.js';
import { describeTree } from '../helpers/tree.js';
import { parseConflictPath } from '../../src/sync/conflicts.js';
import { conflictPath } from '../../src/sync/paths.js';

interface Listing {
  folderId: string;
  total: number;
  conflicts: Array<{
    path: string;
    copyPath: string;
    original: { size: number; mtimeMs: number; device: string; deviceName?: string };
    copy: { size: number; mtimeMs: number; device: string; deviceName?: string };
  }>;
}

async function listConflicts(daemon: DaemonProcess, dir: string): Promise<Listing> {
  const result = await ferry(['conflicts', dir, '--json', '--home', daemon.home]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Listing;
}

async function conflictCount(daemon: DaemonProcess): Promise<number | undefined> {
  const status = (await daemon.status()) as unknown as { folders: Array<{ conflicts?: number }> };
  return status.folders[0]?.conflicts;
}

/** Every folder copy has the same tree and every daemon is idle with nothing to fetch. */
async function converge(daemons: DaemonProcess[], dirs: string[], what: string): Promise<void> {
  await waitFor(async () => {
    const trees = await Promise.all(dirs.map((d) => describeTree(d)));
    if (!trees.every((t) => JSON.stringify(t) === JSON.stringify(trees[0]))) return false;
    const statuses = await Promise.all(daemons.map((d) => d.status()));
    return statuses.every((s) => s.folders.every((f) => f.needFiles === 0 && f.state === 'idle'));
  }, what);
}

async function archived(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
      else out.set(`${rel}${e.name}`, await readFile(join(d, e.name), 'utf8'));
    }
  };
  await walk(join(dir, '.ferry', 'archive'), '');
  return out;
}

function archivedContents(archive: Map<string, string>, path: string): string[] {
  return [...archive].filter(([name]) => name.startsWith(`${path}~`)).map(([, content]) => content);
}

test('conflict copy names parse back to their original and device', () => {
  for (const path of ['doc.txt', 'a/b/report.final.pdf', 'README', '.bashrc', 'dir/x.']) {
    const copy = conflictPath(path, Date.UTC(2026, 11, 7, 1, 2, 3), 'K3F2J7QX2LMA');
    assert.deepEqual(parseConflictPath(copy), { original: path, device: 'K3F2J7QX2LMA' }, copy);
    assert.deepEqual(parseConflictPath(conflictPath(path, 0, 'K3F2J7QX2LMA-2')), { original: path, device: 'K3F2J7QX2LMA' });
  }
  assert.equal(parseConflictPath('notes.txt'), undefined);
  assert.equal(parseConflictPath('notes.conflict-2026-x.txt'), undefined);
});

describe('conflicts between two daemons', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let dirA: string;
  let dirB: string;
  const names = ['keep-original.txt', 'keep-copy.txt', 'docs/keep-both.txt'];

  before(async () => {
    base = await tempDir('conflicts');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(join(base, 'home-b'));
    await Promise.all([a.ready(), b.ready()]);
    dirA = join(base, 'a');
    dirB = join(base, 'b');
    await mkdir(join(dirA, 'docs'), { recursive: true });
    for (const name of names) await writeFile(join(dirA, name), 'base');
    for (let i = 0; i < 6; i++) await writeFile(join(dirA, `other-${i}.txt`), `other ${i}`);
    await shareBetween(a, dirA, b, dirB);
    await converge([a, b], [dirA, dirB], 'the first sync');

    // Both edit the same files while B is down; B's edits are a minute later, so B's keep the names.
    await b.stop();
    for (const name of names) {
      await writeFile(join(dirA, name), `edit on a: ${name}`);
      await writeFile(join(dirB, name), `edit on b, later and longer: ${name}`);
      const { mtime } = await stat(join(dirA, name));
      await utimes(join(dirB, name), mtime, new Date(mtime.getTime() + 60_000));
    }
    b = new DaemonProcess(b.home);
    await b.ready();
    await converge([a, b], [dirA, dirB], 'the conflicts to settle');
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('both devices list the same conflicts, with both versions and who made them', async () => {
    const aId = (await a.status()).device;
    const bId = (await b.status()).device;
    for (const [daemon, dir] of [[a, dirA], [b, dirB]] as const) {
      const listing = await waitFor(async () => {
        const l = await listConflicts(daemon, dir);
        return l.total === 3 ? l : undefined;
      }, 'three conflicts listed');
      assert.deepEqual(listing.conflicts.map((c) => c.path), [...names].sort());
      for (const conflict of listing.conflicts) {
        assert.equal(conflict.original.device, bId.id.slice(0, 12), 'B made the version that kept the name');
        assert.equal(conflict.copy.device, aId.id.slice(0, 12), 'A made the copy\'s version');
        assert.equal(conflict.original.deviceName, bId.name);
        assert.equal(conflict.copy.deviceName, aId.name);
        assert.equal(conflict.original.size, `edit on b, later and longer: ${conflict.path}`.length);
        assert.equal(conflict.copy.size, `edit on a: ${conflict.path}`.length);
        assert.ok(conflict.original.mtimeMs > conflict.copy.mtimeMs);
        assert.equal(await readFile(join(dir, conflict.copyPath), 'utf8'), `edit on a: ${conflict.path}`);
      }
      assert.equal(await conflictCount(daemon), 3, 'status --json counts them');
      const human = await ferry(['status', '--home', daemon.home]);
      assert.match(human.stdout, /\n {2}3 conflicts: files changed on two devices at once \('ferry conflicts [0-9a-f]{40}' lists them/);
      const text = await ferry(['conflicts', dir, '--home', daemon.home]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^3 conflicts:/);
      assert.match(text.stdout, /keep-copy\.txt\n {2}original .* by .*\n {2}copy .*keep-copy\.conflict-\d{8}-\d{6}-[A-Z2-7]+\.txt/);
    }
    // Found from the index: a restarted daemon lists them again.
    await b.stop();
    b = new DaemonProcess(b.home);
    await b.ready();
    await waitFor(async () => (await conflictCount(b)) === 3, 'counted again after a restart');
    assert.equal((await listConflicts(b, dirB)).total, 3);
    await waitFor(async () => (await b.status()).folders[0]!.peers.some((p) => (p as { connected: boolean }).connected), 'B and A connected again');
  });

  test('resolving each way syncs: same bytes on both, no conflicts left, the loser in the archive', async () => {
    const onA = await listConflicts(a, dirA);
    const copyOf = (path: string): string => onA.conflicts.find((c) => c.path === path)!.copyPath;
    const copyKeepOriginal = copyOf('keep-original.txt');
    const copyKeepCopy = copyOf('keep-copy.txt');
    const copyKeepBoth = copyOf('docs/keep-both.txt');

    // Keep the original, on A, by the copy's path.
    const r1 = await ferry(['resolve', dirA, copyKeepOriginal, '--keep', 'original', '--home', a.home]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, /kept the original keep-original\.txt/);
    // Keep the copy, on B, by the original's path (it has one copy).
    const r2 = await ferry(['resolve', dirB, 'keep-copy.txt', '--keep', 'copy', '--home', b.home]);
    assert.equal(r2.code, 0, r2.stderr);
    // Keep both, on A, with a chosen name.
    const r3 = await ferry(['resolve', dirA, copyKeepBoth, '--keep', 'both', '--name', 'keep-both (from a).txt', '--home', a.home]);
    assert.equal(r3.code, 0, r3.stderr);
    assert.match(r3.stdout, /docs\/keep-both \(from a\)\.txt/);

    await converge([a, b], [dirA, dirB], 'the resolutions to sync');
    await waitFor(async () => (await conflictCount(a)) === 0 && (await conflictCount(b)) === 0, 'no conflicts counted on either device');
    for (const [daemon, dir] of [[a, dirA], [b, dirB]] as const) {
      assert.equal((await listConflicts(daemon, dir)).total, 0);
      assert.equal(await readFile(join(dir, 'keep-original.txt'), 'utf8'), 'edit on b, later and longer: keep-original.txt');
      assert.equal(await readFile(join(dir, 'keep-copy.txt'), 'utf8'), 'edit on a: keep-copy.txt');
      assert.equal(await readFile(join(dir, 'docs/keep-both.txt'), 'utf8'), 'edit on b, later and longer: docs/keep-both.txt');
      assert.equal(await readFile(join(dir, 'docs/keep-both (from a).txt'), 'utf8'), 'edit on a: docs/keep-both.txt');
      for (const copy of [copyKeepOriginal, copyKeepCopy, copyKeepBoth]) assert.equal(existsSync(join(dir, copy)), false, `${copy} is gone from ${dir}`);
      const archive = await archived(dir);
      // The losers: the copy kept aside, and the original replaced by the copy.
      assert.deepEqual(archivedContents(archive, copyKeepOriginal), ['edit on a: keep-original.txt'], `${dir}: ${[...archive.keys()].join(', ')}`);
      assert.ok(archivedContents(archive, 'keep-copy.txt').includes('edit on b, later and longer: keep-copy.txt'), `${dir}: ${[...archive.keys()].join(', ')}`);
    }
  });

  test('an unknown conflict and a bad choice are refused clearly', async () => {
    const unknown = await ferry(['resolve', dirA, 'other-1.txt', '--keep', 'copy', '--home', a.home]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no current conflict at "other-1\.txt"/);
    const bad = await ferry(['resolve', dirA, 'other-1.txt', '--keep', 'mine', '--home', a.home]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--keep takes original, copy or both/);
  });
});
