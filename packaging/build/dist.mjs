// `make dist`: bundle, single executables, .deb, SPK and QPKG for every target in packaging/versions.json; writes dist/report.json.
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { bundleTarget } from './bundle.mjs';
import { buildDeb } from './deb.mjs';
import { DIST, TARGETS, VERSION, compareVersions, highestGlibc, log, sha256File } from './lib.mjs';
import { buildQpkg, buildSpk, stageNasTree } from './nas.mjs';
import { buildExecutable } from './sea.mjs';
import { validatePackage } from './validate.mjs';

const only = process.argv.slice(2).filter((a) => TARGETS.includes(a));
const targets = only.length ? only : TARGETS;
mkdirSync(DIST, { recursive: true });
const report = { version: VERSION, targets: {} };

for (const name of targets) {
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
  log(`${name}: executable ${(t.executable.bytes / 1e6).toFixed(1)} MB, GLIBC ${JSON.stringify(t.glibc)}, GLIBCXX ${JSON.stringify(t.glibcxx)}`);
}
