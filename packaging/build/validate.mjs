// Our validator of SPK and QPKG files: required files and keys, tar layout, owners and modes, scripts passing shellcheck.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { run } from './lib.mjs';

/** `tar -tv` as { path, mode, owner } rows. */
function listTar(args) {
  return run('tar', ['--numeric-owner', '-tv', ...args]).trim().split('\n').filter(Boolean).map((line) => {
    const [perm, owner, , , , ...rest] = line.split(/\s+/);
    return { perm, owner, path: rest.join(' ').replace(/ -> .*$/, '').replace(/^\.\//, '') };
  });
}

function checkLayout(entries, label, problems) {
  for (const e of entries) {
    if (e.path.startsWith('/') || e.path.split('/').includes('..')) problems.push(`${label}: unsafe path ${e.path}`);
    if (e.owner !== '0/0') problems.push(`${label}: ${e.path} is owned by ${e.owner}, not root`);
    if (/[wW]/.test(e.perm[8]) || (e.perm[0] !== 'l' && e.perm[8] === 'w')) problems.push(`${label}: ${e.path} is world-writable`);
  }
}

function needExec(entries, path, label, problems) {
  const e = entries.find((x) => x.path === path);
  if (!e) problems.push(`${label}: ${path} is missing`);
  else if (e.perm[0] !== '-' || e.perm.slice(1, 10) !== 'rwxr-xr-x') problems.push(`${label}: ${path} has mode ${e.perm}, want -rwxr-xr-x`);
}

function keyValues(text) {
  return Object.fromEntries([...text.matchAll(/^([A-Za-z_]+)="([^"]*)"\s*$/gm)].map((m) => [m[1], m[2]]));
}

let shellcheckMissingSaid = false;

function shellcheck(files, cwd, label, problems) {
  try {
    run('shellcheck', ['-x', '-s', 'sh', ...files], { cwd });
  } catch (err) {
    // Not installed (a non-root `make dist`, which cannot install it): say so once and go on; CI must check.
    if (err.code === 'ENOENT' && ['', '0', 'false'].includes(process.env.CI ?? '')) {
      if (!shellcheckMissingSaid) console.error('validate: shellcheck is not installed, so the packages\' scripts are not checked (sudo make system-deps)');
      shellcheckMissingSaid = true;
      return;
    }
    problems.push(`${label}: shellcheck:\n${err.message}`);
  }
}

function pngSize(buf) {
  if (buf.subarray(1, 4).toString() !== 'PNG') return null;
  return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
}

function checkPayload(dir, entries, label, problems) {
  for (const path of ['bin/ferry', 'bin/ferry-launch']) needExec(entries, path, label, problems);
  const launcher = readFileSync(join(dir, 'bin', 'ferry-launch'), 'utf8');
  const loader = launcher.match(/^loader="([^"]+)"/m)?.[1];
  if (!loader || !entries.some((e) => e.path === `lib/${loader}`)) problems.push(`${label}: the loader lib/${loader} is missing`);
  for (const lib of ['libc.so.6', 'libstdc++.so.6', 'libgcc_s.so.1', 'libm.so.6']) {
    if (!entries.some((e) => e.path === `lib/${lib}`)) problems.push(`${label}: lib/${lib} is missing`);
  }
  if (/@[A-Z0-9_]+@/.test(launcher)) problems.push(`${label}: bin/ferry-launch has unfilled placeholders`);
  // Debian's node (runtime.mjs): the launcher starts lib/node with the bundle; libnode reads lib/nodejs/.
  if (launcher.match(/^runtime="([^"]+)"/m)?.[1] === 'debian') {
    for (const path of ['lib/node', 'lib/ferry.cjs']) if (!entries.some((e) => e.path === path)) problems.push(`${label}: ${path} is missing`);
    if (!entries.some((e) => e.path.startsWith('lib/nodejs/') && e.perm[0] === '-')) problems.push(`${label}: lib/nodejs/ (Debian's builtins) is empty`);
    if (!entries.some((e) => /^lib\/libnode\.so\.\d+$/.test(e.path))) problems.push(`${label}: lib/libnode.so.* is missing`);
  }
  shellcheck(['bin/ferry-launch'], dir, label, problems);
}

function validateSpk(file, work, problems) {
  const label = basename(file);
  const head = readFileSync(file).subarray(0, 512);
  if (head.subarray(257, 262).toString() !== 'ustar') problems.push(`${label}: not an uncompressed tar`);
  const entries = listTar(['-f', file]);
  checkLayout(entries, label, problems);
  const required = ['INFO', 'package.tgz', 'conf/privilege', 'conf/resource', 'PACKAGE_ICON.PNG', 'PACKAGE_ICON_256.PNG', 'WIZARD_UIFILES/install_uifile'];
  const scripts = ['start-stop-status', 'preinst', 'postinst', 'preuninst', 'postuninst', 'preupgrade', 'postupgrade'];
  for (const path of required) if (!entries.some((e) => e.path === path)) problems.push(`${label}: ${path} is missing`);
  for (const s of scripts) needExec(entries, `scripts/${s}`, label, problems);
  run('tar', ['xf', file, '-C', work]);
  const info = keyValues(readFileSync(join(work, 'INFO'), 'utf8'));
  for (const key of ['package', 'version', 'os_min_ver', 'description', 'arch', 'maintainer', 'displayname', 'adminport', 'checksum']) {
    if (!info[key]) problems.push(`${label}: INFO has no ${key}`);
  }
  if (!/^\d+\.\d+\.\d+-\d+$/.test(info.version ?? '')) problems.push(`${label}: INFO version ${info.version} is not x.y.z-build`);
  if (!/^7\./.test(info.os_min_ver ?? '')) problems.push(`${label}: os_min_ver ${info.os_min_ver} is not DSM 7`);
  const md5 = createHash('md5').update(readFileSync(join(work, 'package.tgz'))).digest('hex');
  if (info.checksum !== md5) problems.push(`${label}: INFO checksum does not match package.tgz`);
  const privilege = JSON.parse(readFileSync(join(work, 'conf', 'privilege'), 'utf8'));
  if (privilege.defaults?.['run-as'] !== 'package') problems.push(`${label}: conf/privilege does not run as the package user`);
  const resource = JSON.parse(readFileSync(join(work, 'conf', 'resource'), 'utf8'));
  JSON.parse(readFileSync(join(work, 'WIZARD_UIFILES', 'install_uifile'), 'utf8'));
  for (const [icon, size] of [['PACKAGE_ICON.PNG', 64], ['PACKAGE_ICON_256.PNG', 256]]) {
    const dims = pngSize(readFileSync(join(work, icon)));
    if (!dims || dims[0] !== size || dims[1] !== size) problems.push(`${label}: ${icon} is not a ${size}×${size} PNG`);
  }
  const payload = join(work, 'payload');
  mkdirSync(payload);
  const inner = listTar(['-zf', join(work, 'package.tgz')]);
  checkLayout(inner, `${label}:package.tgz`, problems);
  run('tar', ['xzf', join(work, 'package.tgz'), '-C', payload]);
  checkPayload(payload, inner, `${label}:package.tgz`, problems);
  const sc = resource['port-config']?.['protocol-file'];
  const scText = sc ? readFileSync(join(payload, sc), 'utf8') : '';
  for (const port of ['8888', '22100']) if (!scText.includes(`${port}/`)) problems.push(`${label}: port ${port} is not opened by conf/resource`);
  shellcheck(scripts, join(work, 'scripts'), label, problems);
}

function validateQpkg(file, work, problems) {
  const label = basename(file);
  const bytes = readFileSync(file);
  const headerText = bytes.subarray(0, 8192).toString('latin1');
  const num = (name) => Number(headerText.match(new RegExp(`^${name}=(\\d+)$`, 'm'))?.[1]);
  const [header, control, data] = [num('header_bytes'), num('control_bytes'), num('data_bytes')];
  if (!header || !control || !data || header + control + data !== bytes.length) {
    problems.push(`${label}: header sizes do not add up to the file (${header}+${control}+${data} vs ${bytes.length})`);
    return;
  }
  writeFileSync(join(work, 'qinstall.sh'), bytes.subarray(0, header));
  writeFileSync(join(work, 'control.tar.gz'), bytes.subarray(header, header + control));
  writeFileSync(join(work, 'data.tar.gz'), bytes.subarray(header + control));
  for (const part of ['control', 'data']) {
    mkdirSync(join(work, part));
    const entries = listTar(['-zf', join(work, `${part}.tar.gz`)]);
    checkLayout(entries, `${label}:${part}`, problems);
    run('tar', ['xzf', join(work, `${part}.tar.gz`), '-C', join(work, part)]);
    if (part === 'data') {
      checkPayload(join(work, 'data'), entries, `${label}:data`, problems);
      needExec(entries, 'ferry.sh', `${label}:data`, problems);
    }
  }
  const cfg = keyValues(readFileSync(join(work, 'control', 'qpkg.cfg'), 'utf8'));
  for (const key of ['QPKG_NAME', 'QPKG_VER', 'QPKG_AUTHOR', 'QPKG_SERVICE_PROGRAM', 'QPKG_WEB_PORT', 'QPKG_WEBUI', 'QPKG_PLATFORM']) {
    if (!cfg[key]) problems.push(`${label}: qpkg.cfg has no ${key}`);
  }
  if (cfg.QPKG_WEB_PORT !== '8888') problems.push(`${label}: web port ${cfg.QPKG_WEB_PORT} is not 8888`);
  writeFileSync(join(work, 'control', 'qinstall.sh'), bytes.subarray(0, header));
  shellcheck(['qinstall.sh', 'package_routines'], join(work, 'control'), label, problems);
  shellcheck(['ferry.sh'], join(work, 'data'), label, problems);
}

/** Checks one SPK or QPKG; returns the problems found (empty when valid). */
export function packageProblems(file) {
  const work = mkdtempSync(join(tmpdir(), 'ferry-validate-'));
  const problems = [];
  try {
    if (file.endsWith('.spk')) validateSpk(file, work, problems);
    else if (file.endsWith('.qpkg')) validateQpkg(file, work, problems);
    else problems.push(`${basename(file)}: not an .spk or .qpkg`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return problems;
}

/** Throws with every problem found. */
export function validatePackage(file) {
  const problems = packageProblems(file);
  if (problems.length) throw new Error(`invalid package ${file}:\n${problems.join('\n')}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  let bad = 0;
  for (const file of process.argv.slice(2)) {
    const problems = packageProblems(file);
    console.log(problems.length ? `✗ ${file}\n  ${problems.join('\n  ')}` : `✓ ${file}`);
    if (problems.length) bad++;
  }
  process.exit(bad ? 1 : 0);
}
