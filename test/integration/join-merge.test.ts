// `ferry join` into a directory that already has files: refused with the counts (not a terminal) unless --merge; an empty or new one joins as before.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir } from '../helpers/daemon.js';

describe('joining into a non-empty directory', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let rw: string;

  before(async () => {
    base = await tempDir('join-merge');
    a = new DaemonProcess(join(base, 'home-a'));
    b = new DaemonProcess(join(base, 'home-b'));
    await Promise.all([a.ready(), b.ready()]);
    await mkdir(join(base, 'shared'));
    const shared = await ferry(['share', join(base, 'shared'), '--json', '--home', a.home]);
    assert.equal(shared.code, 0, shared.stderr);
    rw = (JSON.parse(shared.stdout) as { rw: string }).rw;
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('without --merge it is refused with how many files and bytes are there and what a merge does', async () => {
    const dir = join(base, 'full');
    await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
    await mkdir(join(dir, 'empty-dir'));
    await writeFile(join(dir, 'one.txt'), 'x'.repeat(1000));
    await writeFile(join(dir, 'sub', 'two.txt'), 'y'.repeat(24));
    await writeFile(join(dir, 'sub', 'deeper', 'three.bin'), Buffer.alloc(2048));
    const refused = await ferry(['join', rw, dir, '--home', b.home]);
    assert.equal(refused.code, 1, refused.stdout);
    assert.match(refused.stderr, /already holds 3 files \(3\.0 KiB\)/, b.log.split('\n').slice(-15).join('\n'));
    assert.match(refused.stderr, /conflict copy/);
    assert.match(refused.stderr, /--merge/);
    assert.equal((await b.status()).folders.length, 0, 'nothing joined');

    const merged = await ferry(['join', rw, dir, '--merge', '--home', b.home]);
    assert.equal(merged.code, 0, merged.stderr);
    assert.match(merged.stdout, /joined folder/);
    assert.equal((await b.status()).folders.length, 1);
    await ferry(['folders', 'remove', dir, '--home', b.home]);
  });

  test('an empty directory (folders alone count for nothing) and a new one join as before', async () => {
    const empty = join(base, 'empty');
    await mkdir(join(empty, 'only-dirs'), { recursive: true });
    const joined = await ferry(['join', rw, empty, '--home', b.home]);
    assert.equal(joined.code, 0, joined.stderr);
    await ferry(['folders', 'remove', empty, '--home', b.home]);
    const fresh = await ferry(['join', rw, join(base, 'new', 'dir'), '--home', b.home]);
    assert.equal(fresh.code, 0, fresh.stderr);
  });
});
