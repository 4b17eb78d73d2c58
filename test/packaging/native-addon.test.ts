// The single executables' native addon cache: written once by hash, a corrupt file detected and rewritten, wrong-arch addons refused clearly.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isFerryError } from '../../src/errors.js';
import { loadAddonFile, loadEmbeddedAddon, materialiseAddon, nativeCacheDir } from '../../src/util/native-addon.js';

const require = createRequire(import.meta.url);
/** The lmdb prebuild npm installed for this machine: a real Node-API addon to load. */
const LMDB_ADDON = join(dirname(require.resolve(`@lmdb/lmdb-linux-${process.arch}/package.json`)), 'node.napi.glibc.node');

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-native-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('an addon is written once, then found by its hash without reading the embedded copy', (t) => {
  const cache = join(tempDir(t), 'native');
  const bytes = readFileSync(LMDB_ADDON);
  const hash = sha256(bytes);
  let reads = 0;
  const source = (): Uint8Array => {
    reads++;
    return bytes;
  };
  const first = materialiseAddon('lmdb', hash, source, cache);
  assert.equal(first.state, 'written');
  assert.equal(sha256(readFileSync(first.path)), hash);
  assert.equal(statSync(cache).mode & 0o777, 0o700);
  const second = materialiseAddon('lmdb', hash, source, cache);
  assert.deepEqual(second, { path: first.path, state: 'cached' });
  assert.equal(reads, 1);
  const addon = loadAddonFile(second.path) as Record<string, unknown>;
  assert.equal(typeof addon.setGlobalBuffer, 'function', 'the loaded file is lmdb\'s addon');
});

test('a corrupt or truncated cache file is detected by its hash and rewritten', (t) => {
  const cache = join(tempDir(t), 'native');
  const bytes = readFileSync(LMDB_ADDON);
  const hash = sha256(bytes);
  const { path } = materialiseAddon('lmdb', hash, () => bytes, cache);
  const corrupt = Buffer.from(bytes);
  corrupt[1000] ^= 0xff;
  writeFileSync(path, corrupt);
  assert.deepEqual(materialiseAddon('lmdb', hash, () => bytes, cache), { path, state: 'written' });
  assert.equal(sha256(readFileSync(path)), hash);
  writeFileSync(path, bytes.subarray(0, 100));
  assert.equal(materialiseAddon('lmdb', hash, () => bytes, cache).state, 'written');
  assert.equal(sha256(readFileSync(path)), hash);
});

test('embedded bytes that do not match the recorded hash are refused, not cached', (t) => {
  const cache = join(tempDir(t), 'native');
  assert.throws(
    () => materialiseAddon('argon2', sha256(Buffer.from('expected')), () => Buffer.from('something else'), cache),
    (err) => isFerryError(err, 'INTERNAL') && /does not match its hash/.test(err.message),
  );
});

test('a cache folder others can write to is refused (they could swap an addon)', (t) => {
  const cache = join(tempDir(t), 'native');
  materialiseAddon('x', sha256(Buffer.from('x')), () => Buffer.from('x'), cache);
  chmodSync(cache, 0o777);
  assert.throws(
    () => materialiseAddon('x', sha256(Buffer.from('x')), () => Buffer.from('x'), cache),
    (err) => isFerryError(err, 'IO') && /not group\/world-writable/.test(err.message),
  );
});

test('an addon for another architecture fails with a message naming the architecture', (t) => {
  const dir = tempDir(t);
  const bytes = Buffer.from(readFileSync(LMDB_ADDON));
  bytes.writeUInt16LE(process.arch === 'arm64' ? 0x3e : 0xb7, 18); // e_machine: x86-64 ↔ AArch64
  const path = join(dir, 'foreign.node');
  writeFileSync(path, bytes);
  assert.throws(
    () => loadAddonFile(path),
    (err) => isFerryError(err, 'INTERNAL') && err.message.includes(`runs as ${process.arch}`),
  );
});

test('a build for another architecture says so before touching the cache', () => {
  const manifest = { target: 'linux-other', arch: process.arch === 'arm' ? 'x64' : 'arm', addons: { lmdb: { sha256: 'ab' } } };
  assert.throws(
    () => loadEmbeddedAddon('lmdb', manifest),
    (err) => isFerryError(err, 'INTERNAL') && /built for linux-other, but runs as/.test(err.message),
  );
  assert.throws(() => loadEmbeddedAddon('lmdb', null), /not embedded in this executable/);
});

test('an addon the package holds as a file beside the bundle is loaded in place, without the cache', (t) => {
  const dir = tempDir(t);
  const addon = join(dir, 'addons', 'lmdb.node');
  mkdirSync(dirname(addon));
  copyFileSync(LMDB_ADDON, addon);
  // Relative to the module that loads it (in a bundle: the bundle file), as packaging/build/bundle.mjs records it.
  const moduleDir = dirname(fileURLToPath(new URL('../../src/util/native-addon.js', import.meta.url)));
  const manifest = { target: 'linux-test', arch: process.arch, addons: { 'lmdb-file': { sha256: sha256(readFileSync(addon)), file: relative(moduleDir, addon) } } };
  const cache = join(dir, 'cache');
  const before = process.env.FERRY_NATIVE_CACHE;
  process.env.FERRY_NATIVE_CACHE = cache;
  t.after(() => (before === undefined ? delete process.env.FERRY_NATIVE_CACHE : (process.env.FERRY_NATIVE_CACHE = before)));
  const loaded = loadEmbeddedAddon('lmdb-file', manifest) as Record<string, unknown>;
  assert.equal(typeof loaded.setGlobalBuffer, 'function', 'the file is lmdb\'s addon');
  assert.ok(!existsSync(cache), 'nothing was written to the cache');
  const gone = join(dir, 'addons', 'gone.node');
  const missing = { ...manifest, addons: { 'lmdb-gone': { sha256: 'ab', file: relative(moduleDir, gone) } } };
  assert.throws(() => loadEmbeddedAddon('lmdb-gone', missing), (err) => isFerryError(err, 'INTERNAL') && err.message.includes(gone));
});

test('the cache lives in FERRY_NATIVE_CACHE, else the user cache folder', () => {
  assert.equal(nativeCacheDir({ FERRY_NATIVE_CACHE: '/var/cache/ferry/native' }), '/var/cache/ferry/native');
  assert.equal(nativeCacheDir({ HOME: '/home/pi' }), '/home/pi/.cache/ferry/native');
  assert.equal(nativeCacheDir({ HOME: '/h', XDG_CACHE_HOME: '/c' }), '/c/ferry/native');
});
