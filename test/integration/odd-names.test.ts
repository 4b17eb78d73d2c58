// Real daemons on loopback sync a tree of every legal-but-odd Linux name byte for byte; names with
// control characters are refused, listed as failed items, and block nothing else (issues 26, 25, 28).

import assert from 'node:assert/strict';
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, shareBetween, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';
import { describeTree } from '../helpers/tree.js';

/** Legal on ext4 and between Linux devices with default settings: each must arrive as itself. */
const ODD_NAMES = [
  'system-systemd\\x2dcryptsetup.slice',
  'back\\slash.txt',
  'a:b.txt',
  'q?.txt',
  'star*.txt',
  '<angle>.txt',
  'pipe|x',
  '"quoted"',
  "it's",
  '-leading-dash',
  '--double-dash',
  'trailing.',
  'trailing ',
  ' leading space',
  'CON',
  'aux.txt',
  'nul',
  'com1.log',
  '#hash',
  '%percent%20',
  'tab-free but emoji 🐢',
  `${'n'.repeat(251)}.txt`, // 255 bytes
  `${'é'.repeat(127)}x`, // 255 bytes of two-byte characters
];
/** Refused everywhere (control characters): reported, not lost, and nothing else waits for them. */
const REFUSED_NAMES = ['new\nline.txt', 'esc\u001b[31mred.txt', 'bell\u0007'];

type FolderStatus = StatusJson['folders'][number] & {
  failedItems: number;
  failed: Array<{ path: string; reason: string; source: string }>;
  stalledReason?: string;
};
interface Status {
  folders: FolderStatus[];
}

describe('odd names between two daemons', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let dirA: string;
  let dirB: string;

  before(async () => {
    base = await tempDir('odd-names');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(join(base, 'home-b'));
    await Promise.all([a.ready(), b.ready()]);
    dirA = join(base, 'a');
    dirB = join(base, 'b');
    await mkdir(dirA);
    for (const name of ODD_NAMES) await writeFile(join(dirA, name), `content of ${name}`);
    // Odd names as directories too, with files inside.
    await mkdir(join(dirA, 'dir\\with:odd?chars*'));
    await writeFile(join(dirA, 'dir\\with:odd?chars*', 'inner|file.'), 'inner');
    // Deep nesting: 60 levels.
    const deep = Array.from({ length: 60 }, (_, i) => `level-${i}`).join('/');
    await mkdir(join(dirA, deep), { recursive: true });
    await writeFile(join(dirA, deep, 'bottom.txt'), 'deep');
    // A 4,005-byte path (Linux allows 4095): 16 nested 249-byte names, longer than an index key.
    const long = Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, '0')}${'L'.repeat(247)}`).join('/');
    await mkdir(join(dirA, long), { recursive: true });
    await writeFile(join(dirA, long, 'f.txt'), 'at the bottom of 4,000 bytes');
    await writeFile(join(dirA, long.slice(0, long.lastIndexOf('/')), 'g.txt'), 'one level up');
    // An NFD name (macOS, SMB clients) next to ordinary ones.
    await writeFile(join(dirA, 'cafe\u0301-nfd.txt'), 'nfd');
    for (const name of REFUSED_NAMES) await writeFile(join(dirA, name), 'refused');
    // Case-only twins on a case-sensitive disk: file/file, file/symlink, dir/dir.
    await mkdir(join(dirA, 'twins'));
    await writeFile(join(dirA, 'twins', 'readme.txt'), 'lower');
    await writeFile(join(dirA, 'twins', 'README.txt'), 'upper');
    await writeFile(join(dirA, 'twins', 'nan.3.gz'), 'page');
    await symlink('nanf.3.gz', join(dirA, 'twins', 'NAN.3.gz'));
    await mkdir(join(dirA, 'twins', 'Dir'));
    await mkdir(join(dirA, 'twins', 'dir'));
    await writeFile(join(dirA, 'twins', 'Dir', 'x'), 'in Dir');
    await writeFile(join(dirA, 'twins', 'dir', 'x'), 'in dir');

    await shareBetween(a, dirA, b, dirB);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('every legal name arrives byte for byte; control-character names are listed as failed and block nothing', async () => {
    const expected = await describeTree(dirA);
    for (const name of REFUSED_NAMES) delete expected[name];
    assert.ok(Object.keys(expected).some((path) => Buffer.byteLength(path) > 4000), 'the tree holds a path over 4,000 bytes');
    let last = '';
    try {
      await waitFor(async () => {
        const got = await describeTree(dirB);
        last = JSON.stringify(Object.keys(expected).filter((k) => JSON.stringify(got[k]) !== JSON.stringify(expected[k])).slice(0, 20).map((k) => k.slice(0, 120)));
        if (JSON.stringify(got) !== JSON.stringify(expected)) return false;
        const statuses = (await Promise.all([a.status(), b.status()])) as unknown as Status[];
        return statuses.every((s) => s.folders.every((f) => f.needFiles === 0 && f.state === 'idle'));
      }, 'the odd tree to arrive on b', 60_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nmissing or different on b: ${last}\n${b.log.split('\n').filter((l) => /warn|error/i.test(l)).slice(-20).join('\n')}`);
    }
    // The refused names are reported (by the scanner on a, or as refused records on b), shown escaped.
    const statuses = (await Promise.all([a.status(), b.status()])) as unknown as Status[];
    const failed = statuses.flatMap((s) => s.folders.flatMap((f) => f.failed));
    for (const name of REFUSED_NAMES) {
      const shown = name.replace(/[\u0000-\u001f]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
      const item = failed.find((f) => f.path === shown);
      assert.ok(item, `${JSON.stringify(name)} is listed as failed: ${JSON.stringify(failed)}`);
      assert.match(item.reason, /control character/);
    }
    assert.ok(statuses[0]!.folders[0]!.failedItems >= REFUSED_NAMES.length);
    // `ferry status` shows them without a raw control character.
    const text = await ferry(['status', '--home', a.home]);
    assert.match(text.stdout, /items? not synced/);
    assert.doesNotMatch(text.stdout, /[\u0000-\u0008\u000b-\u001f]/);
    // And the link is still up: nothing closed it.
    const peers = (statuses[1]!.folders[0]!.peers as Array<{ connected: boolean; lastClose?: string }>);
    assert.ok(peers.some((p) => p.connected), JSON.stringify(peers));
  });

  test('case-only twins arrive as themselves and nothing new appears on the source', async () => {
    const want = await describeTree(join(dirA, 'twins'));
    await waitFor(async () => JSON.stringify(await describeTree(join(dirB, 'twins'))) === JSON.stringify(want), 'the twins to arrive', 30_000);
    assert.deepEqual((await readdir(join(dirA, 'twins'))).sort(), ['Dir', 'NAN.3.gz', 'README.txt', 'dir', 'nan.3.gz', 'readme.txt']);
  });

  test('a deleted 4,000-byte-deep tree is deleted on the peer too', async () => {
    const top = (await readdir(dirA)).find((name) => name.startsWith('00LLL'))!;
    assert.ok((await readdir(dirB)).includes(top));
    await rm(join(dirA, top), { recursive: true });
    await waitFor(async () => !(await readdir(dirB)).includes(top), 'the long tree to be deleted on b', 30_000);
  });

  test('an edit after all that still travels (nothing is wedged)', async () => {
    await writeFile(join(dirA, 'back\\slash.txt'), 'edited');
    await waitFor(async () => {
      const got = await describeTree(dirB);
      const want = await describeTree(dirA);
      return JSON.stringify(got['back\\slash.txt']) === JSON.stringify(want['back\\slash.txt']);
    }, 'the edit to arrive', 30_000);
  });
});
