// ferry_<version>_<arch>.deb for Raspberry Pi OS and Debian: the executable (armv7: the Debian runtime tree in /usr/lib/ferry),
// a hardened systemd unit, /etc/ferry, maintainer scripts.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CACHE, DIST, ROOT, VERSION, VERSIONS, debianSuiteOf, log, run } from './lib.mjs';

const SRC = join(ROOT, 'packaging', 'raspberrypi');

function du(dir) {
  return Number(run('du', ['-sk', '--apparent-size', dir]).split(/\s/)[0]);
}

/** libstdc++6 (the GCC release) that first provides each GLIBCXX_3.4.x symbol version. */
const GLIBCXX_GCC = { 21: '5', 22: '6', 23: '7', 24: '7', 25: '8', 26: '9', 27: '9', 28: '10', 29: '11', 30: '12', 31: '13', 32: '14' };

/** Lintian's errors on the runtime tree in /usr/lib/ferry that are how it works, for the target's loader. */
function runtimeOverrides(loader) {
  return [
    '# The loader is run as a program (bin/ferry: <loader> --library-path lib lib/node ...).',
    `ferry: shared-library-is-executable 0755 [usr/lib/ferry/lib/${loader}]`,
    '# glibc, zlib: Debian\'s own packages, carried because the machine\'s may be older than libnode needs.',
    'ferry: embedded-library libm [usr/lib/ferry/lib/libm.so.6]',
    'ferry: embedded-library zlib [usr/lib/ferry/lib/libz.so.1]',
    '# The addon exactly as its npm package publishes it.',
    'ferry: unstripped-binary-or-object [usr/lib/ferry/lib/addons/lmdb.node]',
  ];
}

/**
 * Every folder below `dir` (itself included) mode 0755; shared libraries and addons 0644 but for the loader, which
 * is run; other files 0755 when executable, else 0644.
 */
function normaliseModes(dir, loader) {
  chmodSync(dir, 0o755);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) normaliseModes(path, loader);
    else if (name !== loader && /\.so(\.\d+)*$|\.node$/.test(name)) chmodSync(path, 0o644);
    else chmodSync(path, st.mode & 0o111 ? 0o755 : 0o644);
  }
}

/**
 * Floors per target: the highest GLIBC_ and GLIBCXX_ versions the executable or its embedded addons need. A target
 * on Debian's nodejs passes its runtime tree instead (it carries its own C libraries, so no floors).
 */
export async function buildDeb(targetName, glibcFloor, glibcxxFloor, runtimeTree = null) {
  const gcc = runtimeTree ? null : GLIBCXX_GCC[Number(glibcxxFloor.split('.')[2])];
  if (!runtimeTree && !gcc) throw new Error(`no libstdc++6 version known for GLIBCXX_${glibcxxFloor}`);
  const target = VERSIONS.targets[targetName];
  const root = join(CACHE, 'deb', targetName);
  rmSync(root, { recursive: true, force: true });
  const put = (rel, content, mode = 0o644) => {
    const path = join(root, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    if (typeof content === 'string' || Buffer.isBuffer(content)) writeFileSync(path, content);
    else copyFileSync(content.file, path);
    chmodSync(path, mode);
  };
  if (runtimeTree) {
    mkdirSync(join(root, 'usr', 'lib'), { recursive: true });
    run('cp', ['-a', runtimeTree, join(root, 'usr', 'lib', 'ferry')]);
    normaliseModes(join(root, 'usr', 'lib', 'ferry'), target.loader);
    chmodSync(join(root, 'usr', 'lib'), 0o755);
    mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
    symlinkSync('../lib/ferry/bin/ferry', join(root, 'usr', 'bin', 'ferry'));
  } else {
    put('usr/bin/ferry', { file: join(DIST, `ferry-linux-${targetName}`) }, 0o755);
  }
  put('lib/systemd/system/ferry.service', readFileSync(join(SRC, 'ferry.service')));
  put('etc/ferry/ferry.env', readFileSync(join(SRC, 'ferry.env')));
  put('usr/share/doc/ferry/copyright', readFileSync(join(SRC, 'copyright')));
  const date = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 1_790_000_000) * 1000).toUTCString().replace('GMT', '+0000');
  const changelog = `ferry (${VERSION}) stable; urgency=medium\n\n  * Release ${VERSION}.\n\n -- Ferry developers <ferry@example.invalid>  ${date}\n`;
  put('usr/share/doc/ferry/changelog.gz', gzipSync(changelog, { level: 9 }));
  put('usr/share/lintian/overrides/ferry', [
    ...(runtimeTree
      ? [
          `# Debian ${debianSuiteOf(targetName)}'s nodejs with the C libraries it needs, unchanged but for libnode's builtin paths`,
          '# (docs/packaging.md): one package for every Debian and Raspberry Pi OS release, whatever its own glibc and Node.',
          ...runtimeOverrides(target.loader),
        ]
      : [
          '# The official Node.js binary the executable is made of is linked without PIE.',
          'ferry: hardening-no-pie [usr/bin/ferry]',
          '# Node.js links its own zlib (with Chromium\'s optimisations) statically: one executable cannot use the system\'s.',
          'ferry: embedded-library zlib [usr/bin/ferry]',
        ]),
    '# The command documents itself (ferry --help); the README has the rest.',
    'ferry: no-manual-page [usr/bin/ferry]',
    '',
  ].join('\n'));
  for (const dir of ['usr', 'usr/bin', ...(runtimeTree ? ['usr/lib'] : []), 'usr/share', 'usr/share/doc', 'usr/share/doc/ferry', 'lib', 'lib/systemd', 'lib/systemd/system', 'etc', 'etc/ferry', 'usr/share/lintian', 'usr/share/lintian/overrides']) {
    chmodSync(join(root, dir), 0o755);
  }
  mkdirSync(join(root, 'DEBIAN'), { mode: 0o755 });
  const control = readFileSync(join(SRC, 'control.in'), 'utf8')
    .replace('@VERSION@', VERSION)
    .replace('@ARCH@', target.debianArch)
    .replace('@SIZE@', String(du(root)))
    .replace('@DEPENDS@', runtimeTree
      ? 'libc6'
      : [`libc6 (>= ${glibcFloor})`, `libstdc++6 (>= ${gcc})`, ...target.extraLibraries].join(', '))
    .replace('@BUILD@', runtimeTree
      ? `This package ships Ferry as one JavaScript bundle with its native addons,\n run by Debian ${debianSuiteOf(targetName)}'s Node.js ${target.node.version} and the libraries\n it needs, carried in /usr/lib/ferry.`
      : 'This package ships Ferry as one executable (Node.js single executable\n application with its native addons embedded).');
  put('DEBIAN/control', control);
  put('DEBIAN/conffiles', '/etc/ferry/ferry.env\n');
  for (const script of ['postinst', 'prerm', 'postrm']) put(`DEBIAN/${script}`, readFileSync(join(SRC, script)), 0o755);
  const out = join(DIST, `ferry_${VERSION}_${target.debianArch}.deb`);
  log(`dpkg-deb ${out}`);
  run('dpkg-deb', ['--root-owner-group', '-Zxz', '-z3', '--build', root, out]);
  return out;
}
