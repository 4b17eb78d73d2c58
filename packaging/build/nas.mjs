// The NAS packages: one tree per target (executable, launcher, Debian's loader and C libraries), wrapped as a DSM 7 SPK and a QPKG.
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { CACHE, DIST, ROOT, VERSION, VERSIONS, daemonV8Flags, debianSysroot, isDebianRuntime, log, run } from './lib.mjs';

const PKG = join(ROOT, 'packaging');
/** Libraries the executable and its addons link (readelf NEEDED), plus the NSS modules glibc loads for user and host look-ups. */
export const LIBRARIES = [
  'libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'librt.so.1', 'libgcc_s.so.1', 'libstdc++.so.6',
  'libresolv.so.2', 'libnss_files.so.2', 'libnss_dns.so.2',
];

/** Where a library (or file) of that name is in a sysroot: lib/, usr/lib/ or one folder below (the multiarch one). */
export function findIn(sysroot, name) {
  for (const dir of ['lib', 'usr/lib']) {
    const base = join(sysroot, dir);
    if (!existsSync(base)) continue;
    for (const sub of ['', ...readdirSync(base)]) {
      const path = join(base, sub, name);
      if (existsSync(path) && statSync(path).isFile()) return path;
    }
  }
  throw new Error(`${name} is not in the sysroot ${sysroot}`);
}

/** File descriptor through which a Debian runtime's libnode reads its builtins (runtime.mjs), opened by the launcher. */
export const BUILTINS_FD = 9;

/** bin/ferry-launch for one target: its CPU names and loader, and how it starts (single executable or Debian's node). */
export function launcherText(targetName) {
  const target = VERSIONS.targets[targetName];
  return readFileSync(join(PKG, 'nas', 'ferry-launch'), 'utf8')
    .replaceAll('@TARGET@', `linux-${targetName}`)
    .replaceAll('@UNAME@', target.uname.join(' '))
    .replaceAll('@LOADER@', target.loader)
    .replaceAll('@RUNTIME@', isDebianRuntime(targetName) ? 'debian' : 'sea')
    .replaceAll('@V8_FLAGS@', daemonV8Flags().join(' '))
    .replaceAll('@BUILTINS_FD@', String(BUILTINS_FD));
}

/** Stages bin/ferry (the single executable), bin/ferry-launch and lib/ for one target; returns the folder. */
export function stageNasTree(targetName) {
  const target = VERSIONS.targets[targetName];
  const sysroot = debianSysroot(targetName);
  const dir = join(CACHE, 'nas', targetName, 'tree');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(dir, 'lib'), { recursive: true });
  copyFileSync(join(DIST, `ferry-linux-${targetName}`), join(dir, 'bin', 'ferry'));
  chmodSync(join(dir, 'bin', 'ferry'), 0o755);
  const names = [target.loader, ...LIBRARIES, ...(target.extraLibraries.includes('libatomic1') ? ['libatomic.so.1'] : [])];
  for (const name of names) {
    const to = join(dir, 'lib', name);
    copyFileSync(findIn(sysroot, name), to); // copyFileSync follows the symlinks to the real files
    chmodSync(to, 0o755);
  }
  run('strip', ['--strip-unneeded', ...names.filter((n) => n.startsWith('libstdc++')).map((n) => join(dir, 'lib', n))]);
  writeFileSync(join(dir, 'bin', 'ferry-launch'), launcherText(targetName), { mode: 0o755 });
  writeFileSync(join(dir, 'lib', 'DEBIAN-PACKAGES'), readFileSync(join(sysroot, '.versions')));
  return dir;
}

/** A small PNG icon (a ferry-blue rounded square with two white arrows), made here: no image tools needed. */
export function iconPng(size) {
  const rows = [];
  const r = size * 0.18;
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 4);
    for (let x = 0; x < size; x++) {
      const cx = Math.min(x, size - 1 - x);
      const cy = Math.min(y, size - 1 - y);
      const inside = cx >= r || cy >= r || (r - cx) ** 2 + (r - cy) ** 2 <= r * r;
      const u = x / size;
      const v = y / size;
      const arrow = (v > 0.34 && v < 0.42 && u > 0.22 && u < 0.72) || (v > 0.58 && v < 0.66 && u > 0.28 && u < 0.78) ||
        (u >= 0.66 && u < 0.8 && Math.abs(v - 0.38) < (0.8 - u) * 0.8) || (u > 0.2 && u <= 0.34 && Math.abs(v - 0.62) < (u - 0.2) * 0.8);
      const [cr, cg, cb] = arrow ? [255, 255, 255] : [23, 105, 170];
      row.set([cr, cg, cb, inside ? 255 : 0], 1 + x * 4);
    }
    rows.push(row);
  }
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0)),
  ]);
}

function crc32(buf) {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/** Reproducible tar options: root-owned, sorted, fixed times. */
const TAR = ['--owner=0', '--group=0', '--numeric-owner', '--sort=name', '--mtime=@1790000000', '--format=gnu'];

/** ferry-<version>-<arch>.spk: an uncompressed tar of INFO, package.tgz, scripts/, conf/, the wizard and icons. */
export function buildSpk(targetName, tree, outDir = DIST) {
  const target = VERSIONS.targets[targetName];
  const src = join(PKG, 'synology');
  const work = join(outDir === DIST ? join(CACHE, 'nas', targetName) : outDir, 'spk-work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'payload', 'app'), { recursive: true });
  cpSync(tree, join(work, 'payload'), { recursive: true });
  copyFileSync(join(src, 'ferry.sc'), join(work, 'payload', 'app', 'ferry.sc'));
  const spk = join(work, 'spk');
  mkdirSync(spk);
  run('tar', [...TAR, '-czf', join(spk, 'package.tgz'), '-C', join(work, 'payload'), '.']);
  const checksum = createHash('md5').update(readFileSync(join(spk, 'package.tgz'))).digest('hex');
  const info = readFileSync(join(src, 'INFO.in'), 'utf8')
    .replace('@VERSION@', VERSION)
    .replace('@ARCH@', target.synologyArch) + `checksum="${checksum}"\n`;
  writeFileSync(join(spk, 'INFO'), info);
  cpSync(join(src, 'scripts'), join(spk, 'scripts'), { recursive: true });
  for (const f of readdirSync(join(spk, 'scripts'))) chmodSync(join(spk, 'scripts', f), 0o755);
  cpSync(join(src, 'conf'), join(spk, 'conf'), { recursive: true });
  cpSync(join(src, 'WIZARD_UIFILES'), join(spk, 'WIZARD_UIFILES'), { recursive: true });
  writeFileSync(join(spk, 'PACKAGE_ICON.PNG'), iconPng(64));
  writeFileSync(join(spk, 'PACKAGE_ICON_256.PNG'), iconPng(256));
  writeFileSync(join(spk, 'LICENSE'), readFileSync(join(PKG, 'raspberrypi', 'copyright')));
  const out = join(outDir, `ferry-${VERSION}-${target.synologyArch.split(' ')[0]}.spk`);
  log(`spk ${basename(out)}`);
  run('tar', [...TAR, '-cf', out, '-C', spk, ...readdirSync(spk).sort()]);
  return out;
}

/**
 * <name>_<version>_<arch>.qpkg in QDK's layout: a shell installer, then control.tar.gz (qpkg.cfg, package_routines)
 * and data.tar.gz (the package folder). `sh file.qpkg` installs it (QPKG_DIR, default /share/CACHEDEV1_DATA/.qpkg/ferry).
 */
export function buildQpkg(targetName, tree, outDir = DIST) {
  const target = VERSIONS.targets[targetName];
  const src = join(PKG, 'qnap');
  const version = VERSION;
  const work = join(outDir === DIST ? join(CACHE, 'nas', targetName) : outDir, 'qpkg-work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, 'control'), { recursive: true });
  mkdirSync(join(work, 'data'), { recursive: true });
  cpSync(tree, join(work, 'data'), { recursive: true });
  copyFileSync(join(src, 'shared', 'ferry.sh'), join(work, 'data', 'ferry.sh'));
  chmodSync(join(work, 'data', 'ferry.sh'), 0o755);
  writeFileSync(join(work, 'data', 'ferry.png'), iconPng(64));
  const cfg = readFileSync(join(src, 'qpkg.cfg.in'), 'utf8').replace('@VERSION@', version).replace('@ARCH@', target.qnapArch);
  writeFileSync(join(work, 'control', 'qpkg.cfg'), cfg);
  copyFileSync(join(src, 'package_routines'), join(work, 'control', 'package_routines'));
  run('tar', [...TAR, '-czf', join(work, 'control.tar.gz'), '-C', join(work, 'control'), '.']);
  run('tar', [...TAR, '-czf', join(work, 'data.tar.gz'), '-C', join(work, 'data'), '.']);
  const control = readFileSync(join(work, 'control.tar.gz'));
  const data = readFileSync(join(work, 'data.tar.gz'));
  const header = readFileSync(join(src, 'qinstall.sh'), 'utf8');
  // The header is padded to a fixed size so it can name its own length.
  const HEADER_BYTES = 8192;
  let script = header.replace('@CONTROL_BYTES@', String(control.length)).replace('@DATA_BYTES@', String(data.length))
    .replace('@HEADER_BYTES@', String(HEADER_BYTES));
  if (Buffer.byteLength(script) > HEADER_BYTES - 2) throw new Error('qinstall.sh is larger than its slot');
  script += '#'.repeat(HEADER_BYTES - 1 - Buffer.byteLength(script)) + '\n';
  const out = join(outDir, `ferry_${version}_${target.qnapArch}.qpkg`);
  log(`qpkg ${basename(out)}`);
  writeFileSync(out, Buffer.concat([Buffer.from(script), control, data]), { mode: 0o644 });
  return out;
}
