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

/** The Debian release a target's C libraries (and, for a Debian runtime, its Node) come from. */
export function debianSuiteOf(targetName) {
  return VERSIONS.targets[targetName].debianSuite ?? VERSIONS.debianSuite;
}

/** True when the target runs Debian's `nodejs` from its archive (bundle + libraries), not a single executable. */
export function isDebianRuntime(targetName) {
  return Boolean(VERSIONS.targets[targetName].node.debian);
}

/** Debian architectures of the targets whose libraries come from one suite. */
function suiteArchs(codename) {
  return TARGETS.filter((t) => debianSuiteOf(t) === codename).map((t) => VERSIONS.targets[t].debianArch).join(',');
}

/**
 * The Debian release's apt sources for its targets' architectures, taken from this machine's own apt setup: its
 * Debian mirrors and keyring, with the machine's release swapped for the one wanted (a bookworm machine fetches
 * trixie's armhf packages from the same mirror, `trixie`, `trixie-updates` and `trixie-security`). apt checks
 * every index against the signed InRelease and every package against the index's SHA-256.
 */
function debianSources(codename) {
  const archs = suiteArchs(codename);
  const lines = new Set();
  const dir = '/etc/apt/sources.list.d';
  const files = existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
  const RELEASE = /^(buster|bullseye|bookworm|trixie|forky|duke)(-[a-z-]+)?$/;
  const suiteFor = (suite) => {
    const m = suite.match(RELEASE);
    return m ? `${codename}${m[2] ?? ''}` : null;
  };
  for (const file of ['/etc/apt/sources.list', ...files]) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name) => (stanza.match(new RegExp(`^${name}:\\s*(.+)$`, 'mi')) || [])[1]?.trim();
        const keyring = field('Signed-By') || '';
        if (!/debian-archive-keyring/.test(keyring)) continue;
        const suites = (field('Suites') || '').split(/\s+/).map(suiteFor).filter(Boolean);
        for (const uri of (field('URIs') || '').split(/\s+/)) {
          for (const suite of suites) lines.add(`deb [arch=${archs} signed-by=${keyring}] ${uri} ${suite} ${field('Components') || 'main'}`);
        }
      }
    } else {
      for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)$/gm)) {
        const suite = suiteFor(m[2]);
        if (suite && /debian/.test(m[1])) lines.add(`deb [arch=${archs}] ${m[1]} ${suite} ${m[3]}`);
      }
    }
  }
  if (!lines.size) throw new Error(`no Debian source in this machine's apt configuration to fetch ${codename} from`);
  return [...lines].join('\n') + '\n';
}

const aptReady = new Set();
/** apt options with a private state folder per suite (lists, archives, status) in the cache; `apt-get update` once per run. */
function aptOptions(codename) {
  const state = join(CACHE, 'apt', codename);
  const archs = suiteArchs(codename).split(',');
  const options = [
    `-o`, `Dir::Etc::SourceList=${join(state, 'sources.list')}`,
    `-o`, `Dir::Etc::SourceParts=/dev/null`,
    `-o`, `Dir::State::Lists=${join(state, 'lists')}`,
    `-o`, `Dir::Cache::Archives=${join(state, 'archives')}`,
    `-o`, `Dir::State::Status=${join(state, 'status')}`,
    `-o`, `APT::Architecture=${archs[0]}`,
    `-o`, `APT::Architectures=${archs.join(',')}`,
    `-o`, `Debug::NoLocking=1`,
  ];
  if (!aptReady.has(codename)) {
    mkdirSync(join(state, 'lists', 'partial'), { recursive: true });
    mkdirSync(join(state, 'archives', 'partial'), { recursive: true });
    writeFileSync(join(state, 'sources.list'), debianSources(codename));
    if (!existsSync(join(state, 'status'))) writeFileSync(join(state, 'status'), '');
    log(`apt-get update (${codename}, separate lists for ${archs.join(', ')})`);
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
        const missing = archs.filter((arch) => !lists.some((f) => f.includes(`_dists_${codename}_main_binary-${arch}_Packages`)));
        if (missing.length) throw err;
        log(`warning: apt-get update was incomplete; using the indexes it has\n${String(err.message).split('\n').slice(1, 2).join('')}`);
        break;
      }
    }
    aptReady.add(codename);
  }
  return options;
}

/** Every version of a package the suite's indexes offer (its main, -updates and -security parts), newest first. */
export function debianVersions(codename, name) {
  const text = run('apt-cache', [...aptOptions(codename), 'madison', name]);
  const versions = [...new Set(text.split('\n').map((l) => l.split('|')[1]?.trim()).filter(Boolean))];
  return versions.sort((a, b) => (spawnSync('dpkg', ['--compare-versions', a, 'gt', b]).status === 0 ? -1 : 1));
}

/**
 * The Debian packages of one target: its C libraries (debianLibraries, extraLibraries) at the suite's newest
 * version, and for a Debian runtime Node's packages at exactly the version versions.json pins. A pin that is
 * no longer the newest the suite offers (Debian published a security update) stops the build: bump it.
 */
function debianPackages(targetName) {
  const target = VERSIONS.targets[targetName];
  const arch = target.debianArch;
  const names = [...VERSIONS.debianLibraries, ...target.extraLibraries].map((n) => `${n}:${arch}`);
  if (target.node.debian) {
    const codename = debianSuiteOf(targetName);
    const newest = debianVersions(codename, `${target.node.debian}:${arch}`)[0];
    if (newest !== target.node.version) {
      throw new Error(
        `packaging/versions.json pins ${target.node.debian} ${target.node.version} for ${targetName}, but Debian ${codename} ` +
          `offers ${newest ?? 'no such version'}: set targets.${targetName}.node.version to it (a Debian security update) and rebuild`,
      );
    }
    for (const name of [target.node.debian, ...(target.node.pinned ?? [])]) names.push(`${name}:${arch}=${target.node.version}`);
    for (const name of target.node.builtins ?? []) names.push(name);
  }
  return names;
}

/**
 * Debian's packages for one target, unpacked into a sysroot folder (cached): the NAS packages carry its C libraries
 * (and, for a Debian runtime, Node with its libraries), and the ARM smoke tests run under qemu-user with it as `-L`.
 */
export function debianSysroot(targetName) {
  const target = VERSIONS.targets[targetName];
  const codename = debianSuiteOf(targetName);
  const key = JSON.stringify({ codename, libraries: [...VERSIONS.debianLibraries, ...target.extraLibraries], node: target.node.debian ? target.node : null });
  const dir = join(CACHE, 'sysroot', target.debianArch);
  const stamp = join(dir, '.packages');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === key) return dir;
  const names = debianPackages(targetName);
  const options = aptOptions(codename);
  const debs = join(CACHE, 'debs', target.debianArch);
  rmSync(debs, { recursive: true, force: true });
  mkdirSync(debs, { recursive: true });
  log(`apt-get download (${codename}) ${names.join(' ')}`);
  run('apt-get', [...options, '-qq', 'download', ...names], { cwd: debs });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = readdirSync(debs).sort();
  for (const deb of files) run('dpkg-deb', ['-x', join(debs, deb), dir]);
  writeFileSync(join(dir, '.versions'), files.map((f) => `${sha256File(join(debs, f))}  ${decodeURIComponent(f)}`).join('\n') + '\n');
  writeFileSync(stamp, key);
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

