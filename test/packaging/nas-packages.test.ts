// The SPK and QPKG formats and our validator, on a stand-in executable (fast): layout, keys, modes, shellcheck, wrong-CPU message,
// and the armv7 launcher's start of Debian's node.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from '../helpers/needs.js';
import { BUILTINS_FD, runtimeArgv } from './dist-helpers.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
const BUILD = join(ROOT, 'packaging', 'build');

interface Nas {
  buildSpk(target: string, tree: string, outDir: string): string;
  buildQpkg(target: string, tree: string, outDir: string): string;
}
interface Validate {
  packageProblems(file: string): string[];
}
const load = <T>(file: string): Promise<T> => import(join(BUILD, file)) as Promise<T>;

/** A package tree like stageNasTree's, with a shell script standing in for the executable and empty libraries. */
function fakeTree(dir: string, uname: string): string {
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'bin'), { recursive: true });
  mkdirSync(join(tree, 'lib'));
  writeFileSync(join(tree, 'bin', 'ferry'), '#!/bin/sh\necho 0.0.0-test\n', { mode: 0o755 });
  const launcher = readFileSync(join(ROOT, 'packaging', 'nas', 'ferry-launch'), 'utf8')
    .replaceAll('@TARGET@', 'linux-test')
    .replaceAll('@UNAME@', uname)
    .replaceAll('@LOADER@', 'ld-test.so')
    .replaceAll('@RUNTIME@', 'sea')
    .replaceAll('@V8_FLAGS@', '')
    .replaceAll('@BUILTINS_FD@', '9');
  writeFileSync(join(tree, 'bin', 'ferry-launch'), launcher, { mode: 0o755 });
  for (const lib of ['ld-test.so', 'libc.so.6', 'libstdc++.so.6', 'libgcc_s.so.1', 'libm.so.6']) {
    writeFileSync(join(tree, 'lib', lib), '', { mode: 0o755 });
  }
  // The stand-in "loader" runs the script it is given, as ld.so runs the executable.
  writeFileSync(join(tree, 'lib', 'ld-test.so'), '#!/bin/sh\nshift 2\nexec "$@"\n', { mode: 0o755 });
  return tree;
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-nas-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const machine = spawnSync('uname', ['-m'], { encoding: 'utf8' }).stdout.trim();

test('the SPK and QPKG built from the package sources pass our validator', { skip: needs.command('shellcheck') }, async (t) => {
  const dir = tempDir(t);
  const { buildSpk, buildQpkg } = await load<Nas>('nas.mjs');
  const { packageProblems } = await load<Validate>('validate.mjs');
  const tree = fakeTree(dir, machine);
  const spk = buildSpk('x64', tree, dir);
  const qpkg = buildQpkg('x64', tree, dir);
  assert.deepEqual(packageProblems(spk), []);
  assert.deepEqual(packageProblems(qpkg), []);
});

test('the validator reports a missing script, a bad mode and a wrong checksum', async (t) => {
  const dir = tempDir(t);
  const { buildSpk } = await load<Nas>('nas.mjs');
  const { packageProblems } = await load<Validate>('validate.mjs');
  const tree = fakeTree(dir, machine);
  chmodSync(join(tree, 'bin', 'ferry'), 0o644);
  const spk = buildSpk('x64', tree, dir);
  const unpacked = join(dir, 'unpacked');
  mkdirSync(unpacked);
  spawnSync('tar', ['xf', spk, '-C', unpacked]);
  rmSync(join(unpacked, 'scripts', 'postupgrade'));
  writeFileSync(join(unpacked, 'INFO'), readFileSync(join(unpacked, 'INFO'), 'utf8').replace(/checksum="\w+"/, 'checksum="0"'));
  spawnSync('tar', ['--owner=0', '--group=0', '-cf', spk, '-C', unpacked, '.']);
  const problems = packageProblems(spk).join('\n');
  assert.match(problems, /scripts\/postupgrade is missing/);
  assert.match(problems, /bin\/ferry has mode -rw-r--r--/);
  assert.match(problems, /INFO checksum does not match/);
});

test('the launcher runs the executable on its CPU and names both CPUs on another', (t) => {
  const dir = tempDir(t);
  const right = fakeTree(join(dir, 'right'), `${machine} other`);
  const ok = spawnSync(join(right, 'bin', 'ferry-launch'), ['--version'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout, '0.0.0-test\n');
  const wrong = fakeTree(join(dir, 'wrong'), 'armv7l');
  const refused = spawnSync(join(wrong, 'bin', 'ferry-launch'), ['--version'], { encoding: 'utf8' });
  assert.equal(refused.status, 1);
  assert.equal(
    refused.stderr,
    `ferry: this package is built for linux-test (armv7l), but this machine is ${machine}: install the package for ${machine}\n`,
  );
});

test('the armv7 launcher starts Debian\'s node as the dist checks do, with the builtins fd open, also through a link', async (t) => {
  const dir = realpathSync(tempDir(t));
  const { launcherText } = await load<{ launcherText(target: string): string }>('nas.mjs');
  const tree = join(dir, 'usr', 'lib', 'ferry');
  mkdirSync(join(tree, 'bin'), { recursive: true });
  mkdirSync(join(tree, 'lib', 'nodejs'), { recursive: true });
  writeFileSync(join(tree, 'bin', 'ferry'), launcherText('armv7'), { mode: 0o755 });
  // The stand-in loader prints what it was given and where fd 9 points.
  writeFileSync(join(tree, 'lib', 'ld-linux-armhf.so.3'), `#!/bin/sh\nprintf '%s\\n' "$0" "$@"\nreadlink /proc/self/fd/${BUILTINS_FD}\n`, { mode: 0o755 });
  mkdirSync(join(dir, 'usr', 'bin'));
  symlinkSync('../lib/ferry/bin/ferry', join(dir, 'usr', 'bin', 'ferry'));
  // This machine passes for an armv7 one.
  const fake = join(dir, 'fake-bin');
  mkdirSync(fake);
  writeFileSync(join(fake, 'uname'), '#!/bin/sh\necho armv7l\n', { mode: 0o755 });
  const env = { ...process.env, PATH: `${fake}:${process.env.PATH}` };
  for (const entry of [join(tree, 'bin', 'ferry'), join(dir, 'usr', 'bin', 'ferry')]) {
    const r = spawnSync(entry, ['--version', 'two words'], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [...runtimeArgv('armv7', tree), '--version', 'two words', join(tree, 'lib', 'nodejs')], entry);
  }
});
