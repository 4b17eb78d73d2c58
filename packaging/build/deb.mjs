// ferry_<version>_<arch>.deb for Raspberry Pi OS and Debian: the executable, a hardened systemd unit, /etc/ferry, maintainer scripts.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CACHE, DIST, ROOT, VERSION, VERSIONS, log, run } from './lib.mjs';

const SRC = join(ROOT, 'packaging', 'raspberrypi');

function du(dir) {
  return Number(run('du', ['-sk', '--apparent-size', dir]).split(/\s/)[0]);
}

/** libstdc++6 (the GCC release) that first provides each GLIBCXX_3.4.x symbol version. */
const GLIBCXX_GCC = { 21: '5', 22: '6', 23: '7', 24: '7', 25: '8', 26: '9', 27: '9', 28: '10', 29: '11', 30: '12', 31: '13', 32: '14' };

/** Floors per target: the highest GLIBC_ and GLIBCXX_ versions the executable or its embedded addons need. */
export async function buildDeb(targetName, glibcFloor, glibcxxFloor) {
  const gcc = GLIBCXX_GCC[Number(glibcxxFloor.split('.')[2])];
  if (!gcc) throw new Error(`no libstdc++6 version known for GLIBCXX_${glibcxxFloor}`);
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
  put('usr/bin/ferry', { file: join(DIST, `ferry-linux-${targetName}`) }, 0o755);
  put('lib/systemd/system/ferry.service', readFileSync(join(SRC, 'ferry.service')));
  put('etc/ferry/ferry.env', readFileSync(join(SRC, 'ferry.env')));
  put('usr/share/doc/ferry/copyright', readFileSync(join(SRC, 'copyright')));
  const date = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 1_790_000_000) * 1000).toUTCString().replace('GMT', '+0000');
  const changelog = `ferry (${VERSION}) stable; urgency=medium\n\n  * Release ${VERSION}.\n\n -- Ferry developers <ferry@example.invalid>  ${date}\n`;
  put('usr/share/doc/ferry/changelog.gz', gzipSync(changelog, { level: 9 }));
  put('usr/share/lintian/overrides/ferry', [
    '# The official Node.js binary the executable is made of is linked without PIE.',
    'ferry: hardening-no-pie [usr/bin/ferry]',
    '# Node.js links its own zlib (with Chromium\'s optimisations) statically: one executable cannot use the system\'s.',
    'ferry: embedded-library zlib [usr/bin/ferry]',
    '# The command documents itself (ferry --help); the README has the rest.',
    'ferry: no-manual-page [usr/bin/ferry]',
    '',
  ].join('\n'));
  for (const dir of ['usr', 'usr/bin', 'usr/share', 'usr/share/doc', 'usr/share/doc/ferry', 'lib', 'lib/systemd', 'lib/systemd/system', 'etc', 'etc/ferry', 'usr/share/lintian', 'usr/share/lintian/overrides']) {
    chmodSync(join(root, dir), 0o755);
  }
  mkdirSync(join(root, 'DEBIAN'), { mode: 0o755 });
  const control = readFileSync(join(SRC, 'control.in'), 'utf8')
    .replace('@VERSION@', VERSION)
    .replace('@ARCH@', target.debianArch)
    .replace('@SIZE@', String(du(root)))
    .replace('@GLIBC@', glibcFloor)
    .replace('@GCC@', gcc)
    .replace('@DEPENDS@', target.extraLibraries.length ? `, ${target.extraLibraries.join(', ')}` : '');
  put('DEBIAN/control', control);
  put('DEBIAN/conffiles', '/etc/ferry/ferry.env\n');
  for (const script of ['postinst', 'prerm', 'postrm']) put(`DEBIAN/${script}`, readFileSync(join(SRC, script)), 0o755);
  const out = join(DIST, `ferry_${VERSION}_${target.debianArch}.deb`);
  log(`dpkg-deb ${out}`);
  run('dpkg-deb', ['--root-owner-group', '-Zxz', '-z3', '--build', root, out]);
  return out;
}
