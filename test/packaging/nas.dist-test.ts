// The SPKs and QPKGs of dist/ (make dist-check, as root): our validator, start-up in a chroot holding only the package, DSM and QTS life cycles.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../helpers/needs.js';
import { DIST, TARGETS, VERSION, VERSIONS, ROOT, isDebianRuntime, needsEmulator, ok, runSync, runtimeArgv, tempDir, until, withBuiltinsFd } from './dist-helpers.js';

const LOOPBACK_ARGS = '--listen 127.0.0.1:0 --web 127.0.0.1:0 --no-lan --no-nat --no-dht --no-trackers';

function spkOf(target: string): string {
  return join(DIST, `ferry-${VERSION}-${VERSIONS.targets[target]!.synologyArch.split(' ')[0]}.spk`);
}
function qpkgOf(target: string): string {
  return join(DIST, `ferry_${VERSION}_${VERSIONS.targets[target]!.qnapArch}.qpkg`);
}

test('every SPK and QPKG passes our validator', { skip: needs.command('shellcheck') }, () => {
  const files = TARGETS.flatMap((t) => [spkOf(t), qpkgOf(t)]);
  const result = runSync(process.execPath, [join(ROOT, 'packaging', 'build', 'validate.mjs'), ...files]);
  assert.equal(result.status, 0, result.stdout);
});

/** Unpacks an SPK's package.tgz into `<dir>/pkg`. */
function unpackSpk(target: string, dir: string): string {
  const spk = join(dir, 'spk');
  mkdirSync(spk, { recursive: true });
  ok(runSync('tar', ['xf', spkOf(target), '-C', spk]), 'tar spk');
  const pkg = join(dir, 'pkg');
  mkdirSync(pkg);
  ok(runSync('tar', ['xzf', join(spk, 'package.tgz'), '-C', pkg]), 'tar package.tgz');
  return spk;
}

for (const target of TARGETS) {
  test(`the ${target} NAS package starts in a chroot holding nothing but the package`, { skip: needs.all(needs.root(), needsEmulator(target)) }, async (t) => {
    // One hook, in this order: stop the daemon, unmount /proc (Debian runtime), then remove the folder (never
    // while /proc is mounted in it).
    const root = mkdtempSync(join(tmpdir(), 'ferry-chroot-'));
    let daemon: ChildProcess | undefined;
    let procMounted = false;
    t.after(async () => {
      if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
        const exited = new Promise((r) => daemon!.once('exit', r));
        daemon.kill('SIGTERM');
        await exited;
      }
      if (procMounted) procMounted = runSync('umount', [join(root, 'proc')]).status !== 0;
      if (!procMounted) rmSync(root, { recursive: true, force: true });
    });
    unpackSpk(target, root);
    const spec = VERSIONS.targets[target]!;
    // ARM: the static qemu-user binary is the one extra file, standing in for the NAS's CPU.
    const prefix: string[] = [];
    if (spec.qemu) {
      copyFileSync(`/usr/bin/${spec.qemu}`, join(root, 'qemu'));
      runSync('chmod', ['755', join(root, 'qemu')]);
      prefix.push('/qemu');
    }
    const debian = isDebianRuntime(target);
    if (debian) {
      // Debian's libnode reads its builtins through /proc/self/fd (packaging/build/runtime.mjs): a NAS has /proc.
      mkdirSync(join(root, 'proc'));
      ok(runSync('mount', ['-t', 'proc', 'proc', join(root, 'proc')]), 'mount proc');
      procMounted = true;
    }
    // Debian's node: the launcher's exec line, with its fd opened (on the package's lib/nodejs) before chroot runs it.
    const ferry = [...prefix, ...(debian ? runtimeArgv(target, '/pkg') : [`/pkg/lib/${spec.loader}`, '--library-path', '/pkg/lib', '/pkg/bin/ferry'])];
    const chroot = (args: string[]): [string, string[]] =>
      debian ? withBuiltinsFd(join(root, 'pkg', 'lib', 'nodejs'), ['/usr/sbin/chroot', root, ...ferry, ...args]) : ['/usr/sbin/chroot', [root, ...ferry, ...args]];
    const env = { FERRY_NATIVE_CACHE: '/home/native', HOME: '/home', PATH: '/pkg/bin' };
    const inChroot = (args: string[]) => runSync(...chroot(args), { env, cleanEnv: true });
    assert.equal(ok(inChroot(['--version']), '--version in chroot'), `${VERSION}\n`);
    // Nothing beside the package (and the addon cache under /home, which --version, loading no
    // daemon module, no longer writes): the executable needs no file of the host.
    assert.deepEqual(readdirSync(root).filter((name) => name !== 'home').sort(), ['pkg', 'spk', ...(spec.qemu ? ['qemu'] : []), ...(debian ? ['proc'] : [])].sort());

    daemon = spawn(...chroot(['run', '--home', '/home/ferry', ...LOOPBACK_ARGS.split(' ')]), {
      env,
      stdio: 'ignore',
    });
    const status = await until('the daemon in the chroot answers', () => {
      const r = inChroot(['status', '--json', '--home', '/home/ferry']);
      return r.status === 0 ? (JSON.parse(r.stdout) as { device: { id: string } }) : undefined;
    });
    assert.match(status.device.id, /^[A-Z2-7]{52}$/);
  });
}

test('the x64 SPK goes through DSM\'s install, start, wizard password, upgrade and stop, keeping the home', async (t) => {
  // Stop the daemon before the folder goes (hooks run in the order they were added).
  const dir = mkdtempSync(join(tmpdir(), 'ferry-spk-'));
  t.after(() => {
    control('stop');
    rmSync(dir, { recursive: true, force: true });
  });
  const spk = unpackSpk('x64', dir);
  const env = {
    SYNOPKG_PKGNAME: 'ferry',
    SYNOPKG_PKGDEST: join(dir, 'pkg'),
    SYNOPKG_PKGVAR: join(dir, 'var'),
    SYNOPKG_PKGINST_TEMP_DIR: join(dir, 'pkg'),
    FERRY_RUN_ARGS: LOOPBACK_ARGS,
    wizard_admin_password: 'a fine password',
    wizard_shared_folder: 'ferry',
  };
  const script = (name: string, ...args: string[]) => ok(runSync(join(spk, 'scripts', name), args, { env }), name);
  const control = (...args: string[]) => runSync(join(spk, 'scripts', 'start-stop-status'), args, { env });
  const cli = (...args: string[]) =>
    runSync(join(dir, 'pkg', 'bin', 'ferry-launch'), [...args, '--home', env.SYNOPKG_PKGVAR], { env: { ...env, FERRY_NATIVE_CACHE: join(env.SYNOPKG_PKGVAR, '.cache', 'native') } });
  script('preinst');
  script('postinst');
  assert.ok(existsSync(join(env.SYNOPKG_PKGVAR, 'admin-password.pending')));
  script('start-stop-status', 'start');
  assert.equal(control('status').status, 0);
  assert.ok(!existsSync(join(env.SYNOPKG_PKGVAR, 'admin-password.pending')), 'the wizard password was set');
  const folder = join(dir, 'volume1', 'ferry');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'x.txt'), 'x');
  ok(cli('share', folder), 'share');
  const before = JSON.parse(ok(cli('status', '--json'), 'status')) as { device: { id: string }; folders: Array<{ path: string }> };

  script('preupgrade');
  assert.equal(control('status').status, 3, 'stopped for the upgrade');
  unpackSpk('x64', join(dir, 'next')); // DSM replaces target/ with the new package; var/ stays
  ok(runSync('rm', ['-rf', env.SYNOPKG_PKGDEST]), 'rm target');
  ok(runSync('mv', [join(dir, 'next', 'pkg'), env.SYNOPKG_PKGDEST]), 'mv target');
  script('postupgrade');
  script('start-stop-status', 'start');
  await until('the upgraded daemon answers', () => (cli('status').status === 0 ? true : undefined));
  const after = JSON.parse(ok(cli('status', '--json'), 'status')) as typeof before;
  assert.equal(after.device.id, before.device.id);
  assert.deepEqual(after.folders.map((f) => f.path), [folder]);
  script('preuninst');
  assert.equal(control('status').status, 3);
  assert.match(readFileSync(join(env.SYNOPKG_PKGVAR, 'ferry.log'), 'utf8'), /running on home/);
});

test('the x64 QPKG installs with sh, starts, and an upgrade over it keeps the home', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-qpkg-'));
  const qpkgDir = join(dir, '.qpkg', 'ferry');
  const env = { QPKG_DIR: qpkgDir, QPKG_ROOT: qpkgDir, FERRY_RUN_ARGS: LOOPBACK_ARGS };
  const service = (...args: string[]) => runSync(join(qpkgDir, 'ferry.sh'), args, { env });
  const cli = (...args: string[]) =>
    runSync(join(qpkgDir, 'bin', 'ferry-launch'), [...args, '--home', join(qpkgDir, 'var')], { env: { FERRY_NATIVE_CACHE: join(qpkgDir, 'var', '.cache', 'native') } });
  t.after(() => {
    if (existsSync(join(qpkgDir, 'ferry.sh'))) service('stop');
    rmSync(dir, { recursive: true, force: true });
  });
  ok(runSync('sh', [qpkgOf('x64')], { env }), 'qpkg install');
  await until('the daemon answers', () => (cli('status').status === 0 ? true : undefined));
  const before = JSON.parse(ok(cli('status', '--json'), 'status')) as { device: { id: string } };
  ok(runSync('sh', [qpkgOf('x64')], { env }), 'qpkg upgrade');
  await until('the upgraded daemon answers', () => (cli('status').status === 0 ? true : undefined));
  const after = JSON.parse(ok(cli('status', '--json'), 'status')) as typeof before;
  assert.equal(after.device.id, before.device.id);
  assert.equal(service('status').status, 0);
  ok(service('stop'), 'stop');
  assert.equal(service('status').status, 3);
});

test('an ARM NAS package on this x86_64 machine names both CPUs instead of failing obscurely', (t) => {
  const dir = tempDir(t, 'ferry-wrongarch-');
  const qpkgDir = join(dir, 'ferry');
  const result = runSync('sh', [qpkgOf('arm64')], { env: { QPKG_DIR: qpkgDir } });
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /this package is built for linux-arm64 \(aarch64 arm64 armv8\), but this machine is x86_64/);
  assert.ok(!existsSync(join(qpkgDir, 'bin')), 'nothing was installed');
});
