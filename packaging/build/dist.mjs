// `make dist`: bundle, single executables (or, for armv7, Debian's nodejs in a tarball), .deb, SPK and QPKG for every target in
// packaging/versions.json; writes dist/report.json.
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { bundleTarget } from './bundle.mjs';
import { buildDeb } from './deb.mjs';
import { DIST, TARGETS, VERSION, VERSIONS, compareVersions, debianSuiteOf, highestGlibc, isDebianRuntime, log, run, sha256File } from './lib.mjs';
import { buildQpkg, buildSpk, stageNasTree } from './nas.mjs';
import { packRuntime, stageDebianRuntime } from './runtime.mjs';
import { buildExecutable } from './sea.mjs';
import { validatePackage } from './validate.mjs';

const only = process.argv.slice(2).filter((a) => TARGETS.includes(a));
const targets = only.length ? only : TARGETS;
mkdirSync(DIST, { recursive: true });
const report = { version: VERSION, targets: {} };

/** A Debian-runtime target: its tree, tarball, .deb, SPK and QPKG; its report entry. */
async function debianRuntimeTarget(name) {
  const bundle = await bundleTarget(name);
  const tree = stageDebianRuntime(name, bundle);
  const tarball = packRuntime(name, tree);
  const deb = await buildDeb(name, null, null, tree);
  const spk = buildSpk(name, tree);
  const qpkg = buildQpkg(name, tree);
  for (const pkg of [spk, qpkg]) validatePackage(pkg);
  const node = VERSIONS.targets[name].node;
  return {
    runtime: `Debian ${debianSuiteOf(name)} ${node.debian} ${node.version}`,
    executable: { file: basename(tarball), bytes: statSync(tarball).size, unpackedBytes: Number(run('du', ['-sb', '--apparent-size', tree]).split('\t')[0]) },
    glibc: { carried: highestGlibc(join(tree, 'lib', 'libc.so.6'), 'GLIBC_') },
    debianPackages: readFileSync(join(tree, 'lib', 'DEBIAN-PACKAGES'), 'utf8').trim().split('\n').map((l) => l.split(/\s+/)[1]),
    addons: bundle.addons.map((a) => `${a.prebuild}@${a.version}`),
    packages: Object.fromEntries([deb, spk, qpkg].map((f) => [basename(f), statSync(f).size])),
  };
}

for (const name of targets) {
  if (isDebianRuntime(name)) {
    report.targets[name] = await debianRuntimeTarget(name);
    continue;
  }
  const bundle = await bundleTarget(name);
  const exe = await buildExecutable(name, bundle);
  // The floor of the executable alone and with each embedded addon: the .deb depends on the highest.
  const files = { node: exe, ...Object.fromEntries(bundle.addons.map((a) => [a.name, a.file])) };
  const highest = (prefix) => {
    const each = Object.fromEntries(Object.entries(files).map(([k, f]) => [k, highestGlibc(f, prefix)]).filter(([, v]) => v));
    return { ...each, floor: Object.values(each).reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b)) };
  };
  const glibc = highest('GLIBC_');
  const glibcxx = highest('GLIBCXX_');
  const deb = await buildDeb(name, glibc.floor, glibcxx.floor);
  const tree = stageNasTree(name);
  const spk = buildSpk(name, tree);
  const qpkg = buildQpkg(name, tree);
  for (const pkg of [spk, qpkg]) validatePackage(pkg);
  report.targets[name] = {
    executable: { file: basename(exe), bytes: statSync(exe).size },
    glibc,
    glibcxx,
    addons: bundle.addons.map((a) => `${a.prebuild}@${a.version}`),
    packages: Object.fromEntries([deb, spk, qpkg].map((f) => [basename(f), statSync(f).size])),
  };
}

const sums = readdirSync(DIST).filter((f) => /^ferry[-_]/.test(f)).sort().map((f) => `${sha256File(join(DIST, f))}  ${f}`);
writeFileSync(join(DIST, 'SHA256SUMS'), sums.join('\n') + '\n');
writeFileSync(join(DIST, 'report.json'), JSON.stringify(report, null, 2) + '\n');
for (const [name, t] of Object.entries(report.targets)) {
  if (t.runtime) log(`${name}: ${t.runtime}, ${t.executable.file} ${(t.executable.bytes / 1e6).toFixed(1)} MB (unpacked ${(t.executable.unpackedBytes / 1e6).toFixed(1)} MB)`);
  else log(`${name}: executable ${(t.executable.bytes / 1e6).toFixed(1)} MB, GLIBC ${JSON.stringify(t.glibc)}, GLIBCXX ${JSON.stringify(t.glibcxx)}`);
}
