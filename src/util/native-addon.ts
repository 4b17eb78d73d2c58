// Native addons of the bundled builds: a single executable writes each once to a cache file named by its content hash,
// checked on every start, then loads it; a bundle run by Debian's nodejs (armv7) loads the files its package holds.

import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { constants, homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FerryError } from '../errors.js';

/** One embedded addon, as the build records it (packaging/build/bundle.mjs). */
export interface NativeAddonEntry {
  /** SHA-256 of the addon's bytes, hex. */
  sha256: string;
  /** The SEA asset holding the bytes (Node ≥ 20.12). */
  asset?: string;
  /** The bytes themselves, base64, for a bundle without `sea.getAsset` that carries its addons inside. */
  base64?: string;
  /** A file beside the bundle, relative to it (the armv7 build, a bundle run by Debian's nodejs): loaded in place. */
  file?: string;
}

/** What the build embeds: the target it was made for and its addons by name. */
export interface NativeManifest {
  target: string;
  arch: string;
  addons: Record<string, NativeAddonEntry>;
}

/** The build defines this with esbuild; it is absent (typeof 'undefined') outside a single-file build. */
declare const FERRY_NATIVE_MANIFEST: NativeManifest | undefined;

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Where addons are cached: FERRY_NATIVE_CACHE, else the user's cache folder. Must allow exec (not a noexec /tmp). */
export function nativeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FERRY_NATIVE_CACHE) return env.FERRY_NATIVE_CACHE;
  const home = env.HOME || homedir();
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'ferry', 'native');
  if (home && home !== '/') return join(home, '.cache', 'ferry', 'native');
  return join(tmpdir(), `ferry-native-${process.getuid?.() ?? 0}`);
}

/** Creates the cache folder owner-only and refuses one others could write into (they could swap an addon). */
function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  const uid = process.getuid?.();
  if ((uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new FerryError('IO', `native addon cache ${dir} must be owned by this user and not group/world-writable`);
  }
}

/** True when `path` holds exactly the bytes whose hash is `sha256`. */
function holds(path: string, sha256: string): boolean {
  try {
    return sha256Hex(readFileSync(path)) === sha256;
  } catch {
    return false;
  }
}

export interface MaterialiseResult {
  path: string;
  /** 'written' on first use or after a corrupt file was replaced; 'cached' when the file was already right. */
  state: 'written' | 'cached';
}

/**
 * Makes sure `<cacheDir>/<name>-<sha256>.node` holds the addon: checks the file by its hash and (re)writes it
 * atomically (temp file, fsync, rename) when it is missing or corrupt. `bytes` is only called when writing.
 */
export function materialiseAddon(name: string, sha256: string, bytes: () => Uint8Array, cacheDir: string): MaterialiseResult {
  ensurePrivateDir(cacheDir);
  const path = join(cacheDir, `${name}-${sha256.slice(0, 32)}.node`);
  if (holds(path, sha256)) return { path, state: 'cached' };
  const data = bytes();
  if (sha256Hex(data) !== sha256) throw new FerryError('INTERNAL', `embedded native addon ${name} does not match its hash`);
  const temp = `${path}.${process.pid}.tmp`;
  const fd = openSync(temp, 'w', 0o644);
  try {
    for (let done = 0; done < data.byteLength; ) done += writeSync(fd, data, done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temp, path);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      /* already gone */
    }
    throw new FerryError('IO', `cannot write native addon ${path}: ${String(err)}`, { cause: err });
  }
  return { path, state: 'written' };
}

/** dlopen()s an addon file and returns its exports; a wrong-architecture file gives a clear error. */
export function loadAddonFile(path: string, arch = process.arch): unknown {
  const module = { exports: {} as unknown };
  try {
    process.dlopen(module, path, constants.dlopen.RTLD_NOW);
  } catch (err) {
    const text = String((err as Error)?.message ?? err);
    const hint = /wrong ELF class|cannot open shared object|invalid ELF header|ELF file|exec format/i.test(text)
      ? ` (is this executable built for this machine's architecture? it runs as ${arch})`
      : /noexec|failed to map segment|Operation not permitted/i.test(text)
        ? ' (is the cache on a noexec filesystem? set FERRY_NATIVE_CACHE to a folder that allows exec)'
        : '';
    throw new FerryError('INTERNAL', `cannot load native addon ${path}: ${text}${hint}`, { cause: err });
  }
  return module.exports;
}

function embeddedBytes(name: string, entry: NativeAddonEntry): Uint8Array {
  if (entry.base64) return Buffer.from(entry.base64, 'base64');
  if (entry.asset) {
    // node:sea exists only inside a single executable; require it lazily so ordinary builds never touch it.
    const sea = process.getBuiltinModule?.('node:sea') as typeof import('node:sea') | undefined;
    if (sea?.isSea()) return new Uint8Array(sea.getAsset(entry.asset));
  }
  throw new FerryError('INTERNAL', `native addon ${name} is not embedded in this executable`);
}

/** The manifest of this single-file build, or null when running from a checkout. */
export function buildManifest(): NativeManifest | null {
  return typeof FERRY_NATIVE_MANIFEST === 'object' && FERRY_NATIVE_MANIFEST ? FERRY_NATIVE_MANIFEST : null;
}

const loaded = new Map<string, unknown>();

/** Loads an addon embedded by the single-file build (the bundle's stand-ins for lmdb's and argon2's loaders call this). */
export function loadEmbeddedAddon(name: string, manifest: NativeManifest | null = buildManifest()): unknown {
  const cached = loaded.get(name);
  if (cached) return cached;
  const entry = manifest?.addons[name];
  if (!manifest || !entry) throw new FerryError('INTERNAL', `native addon ${name} is not embedded in this executable`);
  if (manifest.arch !== process.arch) {
    throw new FerryError('INTERNAL', `this executable is built for ${manifest.target}, but runs as ${process.arch}`);
  }
  // A file the package holds is loaded where it is (read-only, installed with the bundle): no cache copy.
  const path = entry.file
    ? fileURLToPath(new URL(entry.file, import.meta.url))
    : materialiseAddon(name, entry.sha256, () => embeddedBytes(name, entry), nativeCacheDir()).path;
  const exports = loadAddonFile(path);
  loaded.set(name, exports);
  return exports;
}
