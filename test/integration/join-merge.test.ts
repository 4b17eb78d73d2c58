// `ferry join` into a directory that already has files: refused with the counts (not a terminal) unless --merge; an empty or new one joins as before.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { DaemonProcess, ferry, MAIN, removeDir, tempDir } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';

/** `script` gives the command a terminal: `ferry join` then asks instead of refusing. */
const NO_SCRIPT = needs.file('/usr/bin/script', 'bsdutils');

/** Runs `ferry ARGS` on a pseudo-terminal, typing `answer`; resolves with the exit code and what the terminal showed. */
function onTerminal(args: string[], answer: string): Promise<{ code: number | null; screen: string }> {
  return new Promise((done, fail) => {
    const command = [process.execPath, MAIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
    const child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => {
      screen += d.toString();
      if (screen.includes('[y/N]')) child.stdin.end(`${answer}\n`);
    });
    child.stderr.on('data', (d: Buffer) => (screen += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, screen });
    });
  });
}

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
    await ferry(['folders', 'remove', join(base, 'new', 'dir'), '--home', b.home]);
  });

  test('on a terminal it asks: no leaves the directory alone, yes merges', { skip: NO_SCRIPT }, async () => {
    const dir = join(base, 'asked');
    await mkdir(dir);
    await writeFile(join(dir, 'mine.txt'), 'mine');
    const no = await onTerminal(['join', rw, dir, '--home', b.home], 'n');
    assert.equal(no.code, 1, no.screen);
    assert.match(no.screen, /already holds 1 file \(4 B\)/);
    assert.match(no.screen, /Merge them into the shared folder\? \[y\/N\]/);
    assert.match(no.screen, /not joined/);
    assert.doesNotMatch(no.screen, /--merge to go ahead/, 'on a terminal the question replaces the flag');
    assert.ok(!(await b.status()).folders.some((f) => f.path === dir));
    const yes = await onTerminal(['join', rw, dir, '--home', b.home], 'y');
    assert.equal(yes.code, 0, yes.screen);
    assert.match(yes.screen, /joined folder/);
    assert.ok((await b.status()).folders.some((f) => f.path === dir));
  });
});
