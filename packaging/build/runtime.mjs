// A target that runs Debian's nodejs (armv7): one tree of Debian's node, libnode and every library they and the addons
// link, Debian's loader, the JavaScript builtins Debian keeps apart, the bundle and its addons; packed as
// dist/ferry-linux-<target>.tar.gz and carried as it is by the SPK, QPKG and .deb.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ADDON_DIR } from './bundle.mjs';
import { CACHE, DIST, VERSIONS, debianSysroot, log, run } from './lib.mjs';
import { BUILTINS_FD, LIBRARIES, findIn, launcherText } from './nas.mjs';

/**
 * Debian builds nodejs with its JavaScript dependencies (cjs-module-lexer, undici, acorn, minimatch) outside libnode,
 * read at start-up from these absolute paths: a NAS has no /usr/share/nodejs, and libnode aborts without them. The
 * build rewrites each path, in place and at the same length, to the same file under /proc/self/fd/<BUILTINS_FD>/,
 * which the launcher opens on lib/nodejs/: the files are found wherever the package is installed.
 */
const DEBIAN_BUILTINS = '/usr/share/nodejs/';
const FD_BUILTINS = `/proc/self/fd/${BUILTINS_FD}/`.padEnd(DEBIAN_BUILTINS.length, '/');

/** The shared libraries an ELF file links (readelf -d NEEDED). */
function needed(file) {
  const text = run('readelf', ['-d', '--wide', file]);
  return [...text.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
}

/**
 * Rewrites libnode's builtin paths (C strings starting with DEBIAN_BUILTINS; the build configuration text that
 * mentions them too is left alone) and returns the paths below DEBIAN_BUILTINS that it reads.
 */
function patchBuiltinPaths(libnode) {
  const bytes = readFileSync(libnode);
  const from = Buffer.from(`\0${DEBIAN_BUILTINS}`);
  const to = Buffer.from(`\0${FD_BUILTINS}`);
  if (to.length !== from.length) throw new Error('the builtin path prefix must keep its length');
  const paths = [];
  for (let at = bytes.indexOf(from); at >= 0; at = bytes.indexOf(from, at + 1)) {
    const end = bytes.indexOf(0, at + 1);
    paths.push(bytes.subarray(at + from.length, end).toString('latin1'));
    to.copy(bytes, at);
  }
  if (bytes.includes(from)) throw new Error(`${libnode}: a builtin path was not rewritten`);
  writeFileSync(libnode, bytes);
  return paths;
}

/** Stages the runtime tree of one Debian-runtime target from its sysroot and bundle; returns the folder. */
export function stageDebianRuntime(targetName, bundle) {
  const target = VERSIONS.targets[targetName];
  const sysroot = debianSysroot(targetName);
  const dir = join(CACHE, 'nas', targetName, 'tree');
  const lib = join(dir, 'lib');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'bin'), { recursive: true });
  mkdirSync(join(lib, ADDON_DIR), { recursive: true });

  const put = (from, to, mode = 0o644) => {
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to); // follows symlinks to the real files
    chmodSync(to, mode);
  };
  put(join(sysroot, 'usr', 'bin', 'node'), join(lib, 'node'), 0o755);
  put(bundle.file, join(lib, 'ferry.cjs'));
  for (const addon of bundle.addons) put(addon.file, join(lib, ADDON_DIR, `${addon.name}.node`), 0o755);

  // Every library node, libnode and the addons link, to the end of the chain; the loader; glibc's NSS modules.
  const copied = new Set();
  const queue = [join(lib, 'node'), ...bundle.addons.map((a) => join(lib, ADDON_DIR, `${a.name}.node`))];
  const copy = (name) => {
    if (copied.has(name)) return;
    copied.add(name);
    put(findIn(sysroot, name), join(lib, name), 0o755);
    queue.push(join(lib, name));
  };
  for (const name of [target.loader, ...LIBRARIES]) copy(name);
  while (queue.length) for (const name of needed(queue.shift())) copy(name);

  const libnode = [...copied].find((n) => n.startsWith('libnode.so.'));
  if (!libnode) throw new Error(`${targetName}: Debian's node links no libnode`);
  const builtins = patchBuiltinPaths(join(lib, libnode));
  for (const rel of builtins) {
    const from = join(sysroot, DEBIAN_BUILTINS, rel);
    if (!existsSync(from)) {
      throw new Error(`${libnode} reads ${DEBIAN_BUILTINS}${rel}, which no package of node.builtins in packaging/versions.json holds`);
    }
    put(from, join(lib, 'nodejs', rel));
  }
  log(`${targetName}: Debian's node with ${copied.size} libraries and ${builtins.length} builtins (${builtins.join(', ')})`);

  const launcher = launcherText(targetName);
  writeFileSync(join(dir, 'bin', 'ferry-launch'), launcher, { mode: 0o755 });
  // The same launcher as the command a user runs from the unpacked tarball (and /usr/bin/ferry's link target).
  writeFileSync(join(dir, 'bin', 'ferry'), launcher, { mode: 0o755 });
  writeFileSync(join(lib, 'DEBIAN-PACKAGES'), readFileSync(join(sysroot, '.versions')));
  return dir;
}

/** Reproducible tar options: root-owned, sorted, fixed times (as nas.mjs). */
const TAR = ['--owner=0', '--group=0', '--numeric-owner', '--sort=name', '--mtime=@1790000000', '--format=gnu'];

/** dist/ferry-linux-<target>.tar.gz: the tree under the folder ferry-linux-<target>/ (run bin/ferry). */
export function packRuntime(targetName, tree) {
  const work = join(CACHE, 'nas', targetName, 'tarball');
  const top = `ferry-linux-${targetName}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  run('cp', ['-a', tree, join(work, top)]);
  const out = join(DIST, `${top}.tar.gz`);
  run('tar', [...TAR, '-czf', out, '-C', work, top]);
  log(`${targetName}: ${out} ${(statSync(out).size / 1e6).toFixed(1)} MB (unpacked ${run('du', ['-sh', '--apparent-size', tree]).split('\t')[0]})`);
  return out;
}
