// Real daemons on loopback: case-only twins arrive as themselves on a case-sensitive disk and nothing
// new appears on the source (issue 28 item 1); the portable-names option set with the CLI keeps out
// and reports what Windows cannot hold (issue 25 item 9).

import assert from 'node:assert/strict';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, shareBetween, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';
import { describeTree } from '../helpers/tree.js';

type FolderStatus = StatusJson['folders'][number] & { failed?: Array<{ path: string; reason: string }>; portableNames?: boolean };

async function folderOf(daemon: DaemonProcess): Promise<FolderStatus> {
  return (await daemon.status()).folders[0] as FolderStatus;
}

describe('names between two daemons', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let dirA: string;
  let dirB: string;

  before(async () => {
    base = await tempDir('names2');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(join(base, 'home-b'));
    await Promise.all([a.ready(), b.ready()]);
    dirA = join(base, 'a');
    dirB = join(base, 'b');
    // One of each pair first; the twins follow once it is on b (arriving in the same pass hid the bug).
    await mkdir(join(dirA, 'man3'), { recursive: true });
    await mkdir(join(dirA, 'man7'));
    await writeFile(join(dirA, 'man3/nan.3.gz'), 'the real page');
    await writeFile(join(dirA, 'man7/pam.7.gz'), 'lower');
    await mkdir(join(dirA, 'dir'));
    await writeFile(join(dirA, 'dir/b.txt'), 'in dir');
    await shareBetween(a, dirA, b, dirB);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    if (base) await removeDir(base);
  });

  test('case twins (file/file, file/symlink, dir/dir) arrive as themselves; nothing new appears on the source', async () => {
    let last = '';
    const converged = async (what: string): Promise<string> => {
      const source = JSON.stringify(await describeTree(dirA));
      await waitFor(async () => {
        last = JSON.stringify(await describeTree(dirB));
        if (last !== source) return false;
        const [fa, fb] = await Promise.all([folderOf(a), folderOf(b)]);
        return fa.state === 'idle' && fb.state === 'idle' && fa.needFiles === 0 && fb.needFiles === 0;
      }, `${what}\nsource: ${source}\nb: ${last}`);
      return source;
    };
    await converged('the first of each pair on b');
    // file/symlink twins, as in /usr/share/man: nan.3.gz beside the symlink NAN.3.gz, and a link to the symlink
    await symlink('nan.3.gz', join(dirA, 'man3/NAN.3.gz'));
    await symlink('NAN.3.gz', join(dirA, 'man3/nanf.3.gz'));
    // file/file twins
    await writeFile(join(dirA, 'man7/PAM.7.gz'), 'upper');
    // dir/dir twins
    await mkdir(join(dirA, 'Dir'));
    await writeFile(join(dirA, 'Dir/a.txt'), 'in Dir');
    const source = await converged('the twins on b');
    const tree = await describeTree(dirB);
    assert.equal(tree['man3/NAN.3.gz']?.type, 'symlink');
    assert.equal(tree['man3/nan.3.gz']?.type, 'file');
    assert.equal(tree['Dir/a.txt']?.type, 'file');
    assert.equal(tree['dir/b.txt']?.type, 'file');
    assert.equal(JSON.stringify(await describeTree(dirA)), source, 'the source holds exactly what it held');
    assert.ok(!Object.keys(tree).some((path) => path.includes('.conflict-')), 'no conflict copies');
    assert.equal((await folderOf(a)).localFiles, (await folderOf(b)).localFiles);
    assert.equal((await folderOf(b)).failed?.length ?? 0, 0);
  });

  test('portable names set with the CLI keep out and report what Windows cannot hold; off, they sync', async () => {
    const on = await ferry(['folders', 'options', dirB, '--portable-names', 'on', '--home', b.home]);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /portable-names\s+on/);
    assert.equal((await folderOf(b)).portableNames, true);
    const bad = await ferry(['folders', 'options', dirB, '--portable-names', 'maybe', '--home', b.home]);
    assert.equal(bad.code, 2);

    await writeFile(join(dirA, 'a:b.txt'), 'colon');
    await writeFile(join(dirA, 'aux.txt'), 'device');
    await writeFile(join(dirA, 'portable-ok.txt'), 'fine');
    await waitFor(async () => {
      const tree = await describeTree(dirB);
      const failed = (await folderOf(b)).failed ?? [];
      return tree['portable-ok.txt'] !== undefined && ['a:b.txt', 'aux.txt'].every((p) => failed.some((f) => f.path === p));
    }, 'b to keep the Windows names out and report them');
    const tree = await describeTree(dirB);
    assert.equal(tree['a:b.txt'], undefined);
    assert.equal(tree['aux.txt'], undefined);

    const off = await ferry(['folders', 'options', dirB, '--portable-names', 'off', '--home', b.home]);
    assert.equal(off.code, 0, off.stderr);
    await waitFor(async () => {
      const now = await describeTree(dirB);
      return now['a:b.txt'] !== undefined && now['aux.txt'] !== undefined;
    }, 'the names to arrive byte for byte with the option off');
  });

  test("a local name with a control character is not indexed and shows in the folder's failed items", async () => {
    await writeFile(join(dirA, 'tab\there.txt'), 'local');
    await writeFile(join(dirA, 'after-tab.txt'), 'marker');
    await waitFor(async () => {
      const failed = (await folderOf(a)).failed ?? [];
      return (await describeTree(dirB))['after-tab.txt'] !== undefined && failed.some((f) => /control character/.test(f.reason));
    }, 'a to report the name and b to get the marker');
    assert.equal((await describeTree(dirB))['tab\there.txt'], undefined, 'never sent');
  });
});
