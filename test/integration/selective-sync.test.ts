// Selective sync between three real daemons (issue 23): C takes two of five subtrees and ends with
// exactly those while A and B keep all five and nothing is deleted anywhere; a file made on C inside
// an unselected subtree is reported and stays on C only; deselecting keeps what C has, reselecting fetches.

import assert from 'node:assert/strict';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/cli/client.js';
import type { FolderReport, SelectionReport, StatusReport } from '../../src/web/daemon-api.js';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { describeTree } from '../helpers/tree.js';

const SUBTREES = ['s1', 's2', 's3', 's4', 's5'];
const EXCLUDED = ['s3', 's4', 's5'];

async function folderOf(daemon: DaemonProcess): Promise<FolderReport> {
  return (await new ControlClient(daemon.home).call<StatusReport>('GET', '/status')).folders[0]!;
}

async function cli(daemon: DaemonProcess, ...args: string[]): Promise<string> {
  const result = await ferry([...args, '--home', daemon.home]);
  assert.equal(result.code, 0, `ferry ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Paths of the tree, Ferry's own directory left out. */
async function pathsOf(dir: string): Promise<string[]> {
  return Object.keys(await describeTree(dir));
}

function fullTree(): string[] {
  return SUBTREES.flatMap((s) => [s, `${s}/a.txt`, `${s}/deep`, `${s}/deep/b.txt`]).sort();
}

describe('selective sync between three daemons', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let c: DaemonProcess;
  let dirA: string;
  let dirB: string;
  let dirC: string;
  let folderId: string;

  before(async () => {
    base = await tempDir('select3');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(join(base, 'home-b'));
    c = new DaemonProcess(join(base, 'home-c'));
    await Promise.all([a.ready(), b.ready(), c.ready()]);
    dirA = join(base, 'a');
    dirB = join(base, 'b');
    dirC = join(base, 'c');
    for (const s of SUBTREES) {
      await mkdir(join(dirA, s, 'deep'), { recursive: true });
      await writeFile(join(dirA, s, 'a.txt'), `${s} a\n`);
      await writeFile(join(dirA, s, 'deep', 'b.txt'), `${s} b\n`.repeat(100));
    }
    const keys = JSON.parse(await cli(a, 'share', dirA, '--json')) as { folderId: string; rw: string };
    folderId = keys.folderId;
    await cli(b, 'join', keys.rw, dirB);
    await cli(c, 'join', keys.rw, dirC);
    // C's selection is set before it meets any peer.
    for (const s of EXCLUDED) await cli(c, 'select', folderId, '--exclude', s);
    const listing = JSON.parse(await cli(c, 'select', folderId, '--json')) as SelectionReport;
    assert.deepEqual(listing.excluded, EXCLUDED);
    const { listen } = (await a.status()) as unknown as { listen: string };
    await cli(b, 'peers', 'add', listen);
    await cli(c, 'peers', 'add', listen);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await removeDir(base);
  });

  test('C with two of five subtrees selected ends with exactly those; A and B keep all five', async () => {
    await waitFor(async () => (await pathsOf(dirB)).join() === fullTree().join(), 'B to have all five subtrees', 60_000);
    const folderC = await waitFor(async () => {
      const folder = await folderOf(c);
      return folder.unselectedFiles === 6 && folder.state === 'idle' ? folder : undefined;
    }, 'C to leave the three unselected subtrees alone, idle', 60_000);
    assert.deepEqual(folderC.excluded, EXCLUDED);
    assert.deepEqual(await pathsOf(dirC), ['s1', 's1/a.txt', 's1/deep', 's1/deep/b.txt', 's2', 's2/a.txt', 's2/deep', 's2/deep/b.txt']);
    assert.deepEqual(await pathsOf(dirA), fullTree(), 'nothing deleted on A');
    assert.deepEqual(await pathsOf(dirB), fullTree(), 'nothing deleted on B');
    // The page's tree comes from the index: sizes of parts not on disk here, marked unselected.
    const tree = await new ControlClient(c.home).call<SelectionReport>('GET', `/folders/${folderId}/selection?dir=`);
    assert.deepEqual(tree.entries!.map((e) => [e.path, e.selected, e.present, e.files]), [
      ['s1', true, true, 2], ['s2', true, true, 2], ['s3', false, false, 2], ['s4', false, false, 2], ['s5', false, false, 2],
    ]);
    assert.equal(tree.entries![2]!.size, 's3 a\n'.length + 's3 b\n'.length * 100);
  });

  test('a file made on C inside an unselected subtree is reported, stays, and is not sent', async () => {
    await mkdir(join(dirC, 's3'), { recursive: true });
    await writeFile(join(dirC, 's3', 'mine.txt'), 'made on C\n');
    await cli(c, 'select', folderId); // listing checks the unselected subtrees afresh
    const listing = JSON.parse(await cli(c, 'select', folderId, '--json')) as SelectionReport;
    assert.deepEqual(listing.localUnselected, { count: 1, paths: ['s3/mine.txt'] });
    const folder = await folderOf(c);
    assert.ok(folder.failed.some((item) => item.path === 's3/mine.txt' && /local in unselected/.test(item.reason)), JSON.stringify(folder.failed));
    assert.match(await cli(c, 'select', folderId), /1 local file inside excluded subtrees[^\n]*\n {2}s3\/mine\.txt/);
    // A rescan of C, then a change from C that reaches A: anything C would send of s3 went before it.
    await new ControlClient(c.home).call('POST', `/folders/${folderId}/rescan`);
    await writeFile(join(dirC, 's2', 'from-c.txt'), 'from C\n');
    await waitFor(async () => exists(join(dirA, 's2', 'from-c.txt')), "C's change to reach A", 60_000);
    assert.equal(await exists(join(dirA, 's3', 'mine.txt')), false, 'not sent to A');
    assert.equal(await readFile(join(dirC, 's3', 'mine.txt'), 'utf8'), 'made on C\n', 'kept on C');
  });

  test('deselecting keeps what C has (no tombstones, nothing deleted anywhere); reselecting fetches', async () => {
    // Deleted on C inside a subtree deselected after C had it: no tombstone is made, A and B keep the file.
    await cli(c, 'select', folderId, '--exclude', 's2/deep');
    await rm(join(dirC, 's2', 'deep', 'b.txt'));
    await new ControlClient(c.home).call('POST', `/folders/${folderId}/rescan`);
    await writeFile(join(dirC, 's2', 'after-rm.txt'), 'after\n');
    await waitFor(async () => exists(join(dirA, 's2', 'after-rm.txt')), "C's later change to reach A", 60_000);
    await waitFor(async () => exists(join(dirB, 's2', 'after-rm.txt')), "C's later change to reach B", 60_000);
    assert.equal(await exists(join(dirA, 's2', 'deep', 'b.txt')), true, 'A keeps s2/deep/b.txt');
    assert.equal(await exists(join(dirB, 's2', 'deep', 'b.txt')), true, 'B keeps s2/deep/b.txt');

    // Changed on A inside C's deselected s1: not fetched by C, and C's s1 stays as it was.
    await cli(c, 'select', folderId, '--exclude', 's1');
    await writeFile(join(dirA, 's1', 'deep', 'b.txt'), 'changed on A\n');
    await waitFor(async () => (await readFile(join(dirB, 's1', 'deep', 'b.txt'), 'utf8').catch(() => '')) === 'changed on A\n', 'the change to reach B', 60_000);
    await writeFile(join(dirA, 's2', 'marker.txt'), 'marker\n');
    await waitFor(async () => exists(join(dirC, 's2', 'marker.txt')), 'a later change to reach C', 60_000);
    assert.equal(await readFile(join(dirC, 's1', 'deep', 'b.txt'), 'utf8'), 's1 b\n'.repeat(100), 'C keeps its s1 as it was');
    assert.equal(await exists(join(dirC, 's1', 'a.txt')), true);

    // Reselecting fetches: s4 (never here), s1 (A's change), s3 sends what C made there.
    const after = JSON.parse(await cli(c, 'select', folderId, '--include', 's4', '--json')) as SelectionReport;
    assert.deepEqual(after.excluded, ['s1', 's2/deep', 's3', 's5']);
    // One pull pass fetches both files of s4, in no set order: wait for both.
    await waitFor(async () => (await exists(join(dirC, 's4', 'deep', 'b.txt'))) && exists(join(dirC, 's4', 'a.txt')), 's4 to be fetched on C', 60_000);
    assert.equal(await readFile(join(dirC, 's4', 'a.txt'), 'utf8'), 's4 a\n');
    assert.equal(await readFile(join(dirC, 's4', 'deep', 'b.txt'), 'utf8'), 's4 b\n'.repeat(100));
    await cli(c, 'select', folderId, '--include', 's1');
    await waitFor(async () => (await readFile(join(dirC, 's1', 'deep', 'b.txt'), 'utf8').catch(() => '')) === 'changed on A\n', "A's s1 change to reach C once reselected", 60_000);
    await cli(c, 'select', folderId, '--include', 's3');
    await waitFor(async () => exists(join(dirA, 's3', 'mine.txt')), "C's file in s3 to reach A once reselected", 60_000);
    for (const dir of [dirA, dirB]) {
      const paths = new Set(await pathsOf(dir));
      assert.deepEqual(fullTree().filter((p) => !paths.has(p)), [], `nothing deleted in ${dir}`);
    }
  });
});
