// Real daemons as child processes on loopback: two and three peers keep a folder identical.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, symlink, utimes, writeFile, chmod, open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';
import { describeTree } from '../helpers/tree.js';

async function share(daemon: DaemonProcess, dir: string): Promise<{ folderId: string; rw: string; ro: string; enc: string }> {
  const result = await ferry(['share', dir, '--json', '--home', daemon.home]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

async function join_(daemon: DaemonProcess, key: string, dir: string): Promise<void> {
  const result = await ferry(['join', key, dir, '--home', daemon.home]);
  assert.equal(result.code, 0, result.stderr);
}

async function connect(from: DaemonProcess, to: DaemonProcess): Promise<void> {
  const { listen } = (await to.status()) as StatusJson & { listen: string };
  const result = await ferry(['peers', 'add', listen, '--home', from.home]);
  assert.equal(result.code, 0, result.stderr);
}

/** Waits until every folder copy has the same tree (the first one's) and every daemon is idle. */
async function converge(daemons: DaemonProcess[], dirs: string[], what: string, timeoutMs = 30_000): Promise<void> {
  let last = '';
  try {
    await waitFor(async () => {
      const trees = await Promise.all(dirs.map((d) => describeTree(d)));
      const first = JSON.stringify(trees[0]);
      last = trees.map((t) => JSON.stringify(t)).join('\n');
      if (!trees.every((t) => JSON.stringify(t) === first)) return false;
      const statuses = await Promise.all(daemons.map((d) => d.status()));
      return statuses.every((s) => s.folders.every((f) => f.needFiles === 0 && f.state === 'idle'));
    }, what, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\ntrees:\n${last}\n${daemons.map((d) => d.log.split('\n').slice(-30).join('\n')).join('\n---\n')}`);
  }
}

async function archived(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
      else out.push(`${rel}${e.name}`);
    }
  };
  await walk(join(dir, '.ferry', 'archive'), '');
  return out;
}

describe('two daemons', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let dirA: string;
  let dirB: string;

  before(async () => {
    base = await tempDir('sync2');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(join(base, 'home-b'));
    await Promise.all([a.ready(), b.ready()]);
    dirA = join(base, 'a');
    dirB = join(base, 'b');
    await mkdir(join(dirA, 'docs', 'deep', 'er'), { recursive: true });
    await mkdir(join(dirA, 'empty-dir'));
    await writeFile(join(dirA, 'docs', 'hello.txt'), 'hello world\n');
    await writeFile(join(dirA, 'docs', 'deep', 'er', 'big.bin'), Buffer.alloc(3 * 1024 * 1024 + 17, 'x'));
    await writeFile(join(dirA, 'empty.txt'), '');
    await writeFile(join(dirA, 'script.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(dirA, 'script.sh'), 0o755);
    await symlink('docs/hello.txt', join(dirA, 'link-to-hello'));
    await writeFile(join(dirA, 'caf\u00e9-nfc.txt'), 'nfc');
    await writeFile(join(dirA, 'cafe\u0301-nfd.txt'), 'nfd');
    const keys = await share(a, dirA);
    await join_(b, keys.rw, dirB);
    await connect(b, a);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('the joined copy becomes identical: dirs, empty dir and file, modes, symlink, Unicode names', async () => {
    await converge([a, b], [dirA, dirB], 'the first sync');
    const tree = await describeTree(dirB, { modes: true });
    assert.equal(tree['script.sh']?.mode, 0o755);
    assert.equal(tree['link-to-hello']?.type, 'symlink');
    assert.equal(tree['link-to-hello']?.target, 'docs/hello.txt');
    assert.equal(tree['empty-dir']?.type, 'dir');
    assert.ok(tree['caf\u00e9-nfc.txt'] && tree['caf\u00e9-nfd.txt'], 'both Unicode names arrive');
    const aId = (await a.status()).device.id;
    const peers = (await b.status()).folders[0]!.peers as Array<{ device: string; connected: boolean; address: string }>;
    assert.ok(peers.some((p) => p.connected && p.device === aId && /^127\.0\.0\.1:\d+$/.test(p.address)), JSON.stringify(peers));
  });

  test('create, modify, delete and rename travel both ways; deletions land in the archive', async () => {
    await writeFile(join(dirB, 'from-b.txt'), 'made on b');
    await writeFile(join(dirA, 'docs', 'hello.txt'), 'hello again\n');
    await converge([a, b], [dirA, dirB], 'create on b, modify on a');
    assert.equal(await readFile(join(dirA, 'from-b.txt'), 'utf8'), 'made on b');
    assert.ok((await archived(dirB)).some((p) => p.startsWith('docs/hello.txt~')), 'the replaced version is archived on b');

    await rm(join(dirA, 'from-b.txt'));
    await rename(join(dirB, 'docs', 'deep'), join(dirB, 'docs', 'moved'));
    await converge([a, b], [dirA, dirB], 'delete on a, rename a directory on b');
    assert.equal(existsSync(join(dirB, 'from-b.txt')), false);
    assert.ok((await archived(dirB)).some((p) => p.startsWith('from-b.txt~')), 'the deleted file is in b\'s archive');
    assert.ok(existsSync(join(dirA, 'docs', 'moved', 'er', 'big.bin')));
  });

  test('a case-only rename ends with just the new name', async () => {
    await writeFile(join(dirA, 'readme.md'), 'case');
    await converge([a, b], [dirA, dirB], 'readme.md');
    await rename(join(dirA, 'readme.md'), join(dirA, 'README.md'));
    await converge([a, b], [dirA, dirB], 'README.md');
    const names = await readdir(dirB);
    assert.ok(names.includes('README.md') && !names.includes('readme.md'));
  });

  test('a simultaneous edit keeps both versions: one wins the name, the other is a conflict copy', async () => {
    await writeFile(join(dirA, 'shared.txt'), 'base');
    await converge([a, b], [dirA, dirB], 'shared.txt');
    await b.stop();
    await writeFile(join(dirA, 'shared.txt'), 'edit on a');
    await writeFile(join(dirB, 'shared.txt'), 'edit on b, later');
    // B's edit is the later one by its time stamp (a minute after A's), not by waiting.
    const { mtime } = await stat(join(dirA, 'shared.txt'));
    await utimes(join(dirB, 'shared.txt'), mtime, new Date(mtime.getTime() + 60_000));
    b = new DaemonProcess(b.home);
    await b.ready();
    await converge([a, b], [dirA, dirB], 'the conflict to settle', 40_000);
    const names = await readdir(dirA);
    const conflicts = names.filter((n) => /^shared\.conflict-\d{8}-\d{6}-[A-Z2-7]+\.txt$/.test(n));
    assert.equal(conflicts.length, 1, `one conflict copy: ${names.join(', ')}`);
    const contents = [await readFile(join(dirA, 'shared.txt'), 'utf8'), await readFile(join(dirA, conflicts[0]!), 'utf8')].sort();
    assert.deepEqual(contents, ['edit on a', 'edit on b, later'], 'nothing lost');
    assert.equal(await readFile(join(dirA, 'shared.txt'), 'utf8'), 'edit on b, later', 'the newer edit wins the name');
  });
});

describe('three daemons, read-only access and wrong keys', () => {
  let base: string;
  const daemons: DaemonProcess[] = [];

  before(async () => {
    base = await tempDir('sync3');
  });

  after(async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    await removeDir(base);
  });

  test('three peers converge; a read-only peer receives all but its edits go nowhere; a wrong key is refused', async () => {
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => new DaemonProcess(join(base, `home-${n}`)));
    daemons.push(a!, b!, c!, d!);
    await Promise.all(daemons.map((x) => x.ready()));
    const [dirA, dirB, dirC] = ['a', 'b', 'c'].map((n) => join(base, n));
    await mkdir(dirA!);
    await writeFile(join(dirA!, 'one.txt'), 'one');
    const keys = await share(a!, dirA!);
    await join_(b!, keys.rw, dirB!);
    await join_(c!, keys.ro, dirC!);
    await connect(b!, a!);
    await connect(c!, b!);
    await converge([a!, b!, c!], [dirA!, dirB!, dirC!], 'three copies');

    await writeFile(join(dirB!, 'two.txt'), 'two from b');
    await converge([a!, b!, c!], [dirA!, dirB!, dirC!], 'b\'s file reaching a and c');

    // The read-only device's edit stays local and is reported, never accepted.
    await writeFile(join(dirC!, 'one.txt'), 'changed on the read-only copy');
    await writeFile(join(dirC!, 'ro-new.txt'), 'new on ro');
    await waitFor(async () => {
      const f = (await c!.status()).folders[0] as unknown as { localChanges?: number };
      return (f.localChanges ?? 0) >= 2;
    }, 'the RO device to report its local changes');
    // A later edit on the writable B reaching A and C bounds the wait: C's edits, had they been sent, went first.
    await writeFile(join(dirB!, 'after-ro-edit.txt'), 'marker');
    await waitFor(async () => existsSync(join(dirA!, 'after-ro-edit.txt')) && existsSync(join(dirC!, 'after-ro-edit.txt')), 'b\'s later file reaching a and c');
    assert.equal(await readFile(join(dirA!, 'one.txt'), 'utf8'), 'one');
    assert.equal(existsSync(join(dirA!, 'ro-new.txt')), false);
    assert.equal(existsSync(join(dirB!, 'ro-new.txt')), false);

    const reverted = await ferry(['revert', dirC!, '--home', c!.home]);
    assert.equal(reverted.code, 0, reverted.stderr);
    await waitFor(async () => (await readFile(join(dirC!, 'one.txt'), 'utf8')) === 'one', 'the revert');
    assert.ok((await archived(dirC!)).some((p) => p.startsWith('one.txt~')), 'the reverted edit is archived, not lost');

    // A device with another folder's key is refused: it learns nothing and gets nothing.
    const other = join(base, 'other');
    await mkdir(other);
    await share(d!, other);
    await connect(d!, a!);
    await waitFor(async () => /no folder in common/.test(d!.log + a!.log), 'the refusal of the device with another folder');
    const dStatus = await d!.status();
    assert.equal(dStatus.folders[0]!.peers.filter((p) => (p as { connected: boolean }).connected).length, 0);
    assert.deepEqual(await readdir(other), ['.ferry']);
    assert.match(d!.log + a!.log, /no folder in common/);
  });
});

describe('crash safety of the receiver', () => {
  test('SIGKILL during a large file, restart: it completes, and no partial file is ever at the target path', async () => {
    const base = await tempDir('synckill');
    const a = new DaemonProcess(join(base, 'home-a'));
    let b = new DaemonProcess(join(base, 'home-b'));
    try {
      await Promise.all([a.ready(), b.ready()]);
      const dirA = join(base, 'a');
      const dirB = join(base, 'b');
      await mkdir(dirA);
      const size = 400 * 1024 * 1024;
      const file = await open(join(dirA, 'large.bin'), 'w');
      const chunk = Buffer.alloc(4 * 1024 * 1024);
      for (let i = 0; i < size / chunk.length; i++) {
        chunk.fill(i % 251);
        chunk.writeUInt32LE(i, 0);
        await file.write(chunk);
      }
      await file.close();
      const keys = await share(a, dirA);
      await waitFor(async () => (await a.status()).folders[0]?.localFiles === 1, 'a to index the file');
      await join_(b, keys.rw, dirB);
      await connect(b, a);
      // Kill b once it has part of the file.
      await waitFor(async () => {
        const temp = (await readdir(dirB).catch(() => [])).find((n) => n.startsWith('.ferry-tmp-'));
        return temp ? (await stat(join(dirB, temp))).size > 0 : false;
      }, 'b to start receiving', 60_000);
      b.child.kill('SIGKILL');
      await b.exited();
      assert.equal(existsSync(join(dirB, 'large.bin')), false, 'no partial file at the target path');

      b = new DaemonProcess(b.home);
      await b.ready();
      await connect(b, a);
      await converge([a, b], [dirA, dirB], 'the large file to complete', 120_000);
      const hash = async (p: string): Promise<string> => createHash('sha256').update(await readFile(p)).digest('hex');
      assert.equal(await hash(join(dirB, 'large.bin')), await hash(join(dirA, 'large.bin')));
      assert.equal((await readdir(dirB)).filter((n) => n.startsWith('.ferry-tmp-')).length, 0, 'temp file gone');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await removeDir(base);
    }
  });
});
