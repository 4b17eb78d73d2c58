// Shared helpers of `make dist`: paths, the pinned versions, running commands, and fetching npm and Debian packages into a cache.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DIST = join(ROOT, 'dist');
/** Downloads and intermediate files; survives `rm -rf dist`, not `make clean`. */
export const CACHE = process.env.FERRY_DIST_CACHE || join(ROOT, 'build', 'dist-cache');
export const VERSIONS = JSON.parse(readFileSync(join(ROOT, 'packaging', 'versions.json'), 'utf8'));
export const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
export const VERSION = PACKAGE.version;
export const TARGETS = Object.keys(VERSIONS.targets);

export function log(message) {
  process.stderr.write(`dist: ${message}\n`);
}

/** Runs a command, inheriting stderr; throws with its output on failure. Returns stdout. */
export function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...options });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${result.status}:\n${result.stdout ?? ''}${result.stderr ?? ''}`);
  }
  return result.stdout;
}

export function sha256File(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export function fill(pattern, target) {
  return pattern.replace(/\{(\w+)\}/g, (_, key) => {
    if (!(key in target)) throw new Error(`versions.json: unknown field {${key}}`);
    return target[key];
  });
}

/** `npm pack name@version` into the cache, unpacked; returns the package folder. */
export function npmPackage(name, version) {
  const dir = join(CACHE, 'npm', `${name.replace('/', '+')}@${version}`);
  if (existsSync(join(dir, 'package', 'package.json'))) return join(dir, 'package');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  log(`npm pack ${name}@${version}`);
  const out = run('npm', ['pack', '--silent', `${name}@${version}`], { cwd: dir }).trim().split('\n').pop();
  run('tar', ['xzf', join(dir, out), '-C', dir]);
  rmSync(join(dir, out));
  return join(dir, 'package');
}

/** The Debian release's apt sources for all targets' architectures, taken from this machine's own apt setup. */
function debianSources() {
  const codename = VERSIONS.debianSuite;
  const archs = TARGETS.map((t) => VERSIONS.targets[t].debianArch).join(',');
  const lines = [];
  const dir = '/etc/apt/sources.list.d';
  const files = existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
  for (const file of ['/etc/apt/sources.list', ...files]) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name) => (stanza.match(new RegExp(`^${name}:\\s*(.+)$`, 'mi')) || [])[1]?.trim();
        const suites = (field('Suites') || '').split(/\s+/).filter((s) => s.startsWith(codename));
        if (!suites.length || !/debian-archive-keyring/.test(field('Signed-By') || '')) continue;
        for (const uri of (field('URIs') || '').split(/\s+/)) {
          for (const suite of suites) lines.push(`deb [arch=${archs}] ${uri} ${suite} ${field('Components') || 'main'}`);
        }
      }
    } else {
      for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$/gm)) {
        if (m[2].startsWith(codename) && /debian/.test(m[1])) lines.push(`deb [arch=${archs}] ${m[1]} ${m[2]} ${m[3]}`);
      }
    }
  }
  if (!lines.length) throw new Error(`no Debian ${codename} source in this machine's apt configuration`);
  return lines.join('\n') + '\n';
}

let aptReady = false;
function aptOptions() {
  const state = join(CACHE, 'apt');
  const options = [
    `-o`, `Dir::Etc::SourceList=${join(state, 'sources.list')}`,
    `-o`, `Dir::Etc::SourceParts=/dev/null`,
    `-o`, `Dir::State::Lists=${join(state, 'lists')}`,
    `-o`, `Dir::Cache::Archives=${join(state, 'archives')}`,
    `-o`, `Dir::State::Status=${join(state, 'status')}`,
    `-o`, `APT::Architectures=${TARGETS.map((t) => VERSIONS.targets[t].debianArch).join(',')}`,
    `-o`, `Debug::NoLocking=1`,
  ];
  if (!aptReady) {
    mkdirSync(join(state, 'lists', 'partial'), { recursive: true });
    mkdirSync(join(state, 'archives', 'partial'), { recursive: true });
    writeFileSync(join(state, 'sources.list'), debianSources());
    if (!existsSync(join(state, 'status'))) writeFileSync(join(state, 'status'), '');
    log('apt-get update (separate lists for the target architectures)');
    // A mirror caught mid-sync answers with a wrong size; try again a little later.
    for (let attempt = 1; ; attempt++) {
      try {
        run('apt-get', [...options, '-qq', 'update']);
        break;
      } catch (err) {
        if (attempt < 3) {
          log(`apt-get update failed (attempt ${attempt}); retrying`);
          spawnSync('sleep', [String(5 * attempt)]);
          continue;
        }
        // One stale index (often the security suite of one architecture) must not stop the build when the
        // release's main index is there for every architecture: apt then uses what it has.
        const lists = readdirSync(join(state, 'lists'));
        const missing = TARGETS.map((t) => VERSIONS.targets[t].debianArch).filter(
          (arch) => !lists.some((f) => f.includes(`_dists_${VERSIONS.debianSuite}_main_binary-${arch}_Packages`)),
        );
        if (missing.length) throw err;
        log(`warning: apt-get update was incomplete; using the indexes it has\n${String(err.message).split('\n').slice(1, 2).join('')}`);
        break;
      }
    }
    aptReady = true;
  }
  return options;
}

/**
 * Debian's C libraries for one target, unpacked into a sysroot folder (cached): the NAS packages carry
 * some of them, and the ARM smoke tests run under qemu-user with it as `-L`.
 */
export function debianSysroot(targetName) {
  const target = VERSIONS.targets[targetName];
  const names = [...VERSIONS.debianLibraries, ...target.extraLibraries];
  const dir = join(CACHE, 'sysroot', target.debianArch);
  const stamp = join(dir, '.packages');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === names.join(' ')) return dir;
  const options = aptOptions();
  const debs = join(CACHE, 'debs', target.debianArch);
  rmSync(debs, { recursive: true, force: true });
  mkdirSync(debs, { recursive: true });
  log(`apt-get download ${names.map((n) => `${n}:${target.debianArch}`).join(' ')}`);
  run('apt-get', [...options, '-qq', 'download', ...names.map((n) => `${n}:${target.debianArch}`)], { cwd: debs });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const deb of readdirSync(debs)) run('dpkg-deb', ['-x', join(debs, deb), dir]);
  writeFileSync(join(dir, '.versions'), readdirSync(debs).join('\n') + '\n');
  writeFileSync(stamp, names.join(' '));
  return dir;
}

/** Highest GLIBC_x.y symbol version an ELF file needs (from its dynamic symbol table), e.g. "2.28". */
export function highestGlibc(path, prefix = 'GLIBC_') {
  const text = execFileSync('readelf', ['--version-info', '--wide', path], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let best = null;
  for (const m of text.matchAll(new RegExp(`\\b${prefix}(\\d+(?:\\.\\d+)*)\\b`, 'g'))) {
    if (!best || compareVersions(m[1], best) > 0) best = m[1];
  }
  return best;
}

export function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  }
  return 0;
}

/** The daemon's V8 flags, read from src/daemon/runtime.ts so they are kept in one place. */
export function daemonV8Flags() {
  const text = readFileSync(join(ROOT, 'src', 'daemon', 'runtime.ts'), 'utf8');
  const list = text.match(/DAEMON_V8_FLAGS\s*=\s*\[([^\]]*)\]/);
  if (!list) throw new Error('src/daemon/runtime.ts: DAEMON_V8_FLAGS not found');
  return [...list[1].matchAll(/'([^']+)'/g)].map((m) => m[1]);
}

