// Smoke tests of dist/'s executables (ARM ones under qemu-user with Debian's libraries; armv7: Debian's nodejs from its tarball):
// CLI, daemon, web admin, addon cache, figures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs } from '../helpers/needs.js';
import { DIST, DistDaemon, TARGETS, VERSION, command, executable, isDebianRuntime, needsEmulator, ok, runSync, runtimeTree, tempDir, until } from './dist-helpers.js';

/** Figures for docs/packaging.md, written to dist/measurements.json. */
const figures: Record<string, Record<string, unknown>> = {};

function highestGlibc(path: string): string {
  const text = ok(runSync('readelf', ['--version-info', '--wide', path]), 'readelf');
  const versions = [...text.matchAll(/GLIBC_(\d+\.\d+(?:\.\d+)?)/g)].map((m) => m[1]!);
  return versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop()!;
}

async function login(web: string, password: string): Promise<number> {
  const res = await fetch(`http://${web}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ password }),
  });
  await res.arrayBuffer();
  return res.status;
}

for (const target of TARGETS) {
  test(`ferry-linux-${target}: version, daemon, share, admin password, web page, addon cache`, { skip: needs.all(needsEmulator(target), needs.command('readelf', 'binutils-multiarch')) }, async (t) => {
    const dir = tempDir(t);
    const env = { FERRY_NATIVE_CACHE: join(dir, 'native') };
    const [cmd, args] = command(target, ['--version']);
    const first = runSync(cmd, args, { env });
    assert.equal(ok(first, '--version'), `${VERSION}\n`);
    const started = process.hrtime.bigint();
    ok(runSync(cmd, args, { env }), '--version');
    const startupMs = Number(process.hrtime.bigint() - started) / 1e6;

    const home = join(dir, 'home');
    const folder = join(dir, 'photos');
    mkdirSync(folder);
    writeFileSync(join(folder, 'a.txt'), 'hello from ' + target);
    const daemon = new DistDaemon(target, home, env);
    t.after(() => daemon.stop());
    await daemon.ready();
    const idleRssKiB = daemon.rssKiB(); // started, nothing shared yet
    const shared = JSON.parse(ok(daemon.cli(['share', folder, '--json']), 'share')) as { folderId: string; rw: string };
    assert.match(shared.rw, /^A/);
    const status = await until('the folder scanned', () => {
      const s = JSON.parse(ok(daemon.cli(['status', '--json']), 'status')) as { folders: Array<{ id: string; localFiles: number }> };
      return s.folders.find((f) => f.id === shared.folderId && f.localFiles === 1);
    });
    assert.equal(status.localFiles, 1);

    // argon2id through the embedded @node-rs/argon2: set by the CLI, checked by the web login.
    ok(daemon.cli(['admin', 'set-password'], 'correct horse battery\n'), 'admin set-password');
    const web = daemon.webAddress();
    assert.equal(await login(web, 'correct horse battery'), 200);
    assert.equal(await login(web, 'wrong password'), 401);
    const page = await fetch(`http://${web}/`);
    assert.equal(page.status, 200, 'the admin page is inside the executable');
    assert.match(await page.text(), /<html/i);

    const debian = isDebianRuntime(target);
    const libnode = debian ? readdirSync(join(runtimeTree(target), 'lib')).find((f) => /^libnode\.so\.\d+$/.test(f)) : undefined;
    figures[target] = {
      bytes: statSync(executable(target)).size,
      ...(debian ? { unpackedBytes: Number(ok(runSync('du', ['-sb', '--apparent-size', runtimeTree(target)]), 'du').split('\t')[0]) } : {}),
      startupMs: Math.round(startupMs),
      idleRssKiB,
      rssAfterWorkKiB: daemon.rssKiB(),
      emulated: target !== 'x64',
      // A Debian runtime carries its own glibc: what Debian's libnode needs of it.
      glibc: highestGlibc(debian ? join(runtimeTree(target), 'lib', libnode!) : executable(target)),
    };
    t.diagnostic(`${target}: ${JSON.stringify(figures[target])}`);

    await daemon.stop();
    if (debian) {
      // Debian's node loads the addons the tarball holds where they are: nothing is written to a cache.
      const written = existsSync(env.FERRY_NATIVE_CACHE) ? readdirSync(env.FERRY_NATIVE_CACHE) : [];
      assert.deepEqual(written, [], 'no addon cache');
      return;
    }
    // The daemon wrote its addons to the cache (a CLI call loads none: it only talks to the control
    // socket). A corrupt addon in the cache is found by its hash on the next start and written again.
    const cached = readdirSync(env.FERRY_NATIVE_CACHE).filter((f) => f.endsWith('.node'));
    assert.ok(cached.some((f) => f.startsWith('lmdb-')), `lmdb is cached: ${cached.join(', ')}`);
    const lmdb = join(env.FERRY_NATIVE_CACHE, cached.find((f) => f.startsWith('lmdb-'))!);
    const bytes = readFileSync(lmdb);
    writeFileSync(lmdb, bytes.subarray(0, bytes.length >> 1));
    const again = new DistDaemon(target, home, env);
    t.after(() => again.stop());
    await again.ready();
    await again.stop();
    const hash = createHash('sha256').update(readFileSync(lmdb)).digest('hex');
    assert.ok(lmdb.includes(hash.slice(0, 32)), 'the cache file holds the right bytes again');
  });
}

test('two emulated arm64 daemons sync a small folder on loopback', { skip: needsEmulator('arm64') }, async (t) => {
  const dir = tempDir(t);
  const env = { FERRY_NATIVE_CACHE: join(dir, 'native') };
  const source = join(dir, 'source');
  const copy = join(dir, 'copy');
  mkdirSync(join(source, 'sub'), { recursive: true });
  mkdirSync(copy);
  const files: Record<string, string> = { 'a.txt': 'alpha\n', 'sub/b.bin': 'b'.repeat(300_000) };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(source, name), text);
  const a = new DistDaemon('arm64', join(dir, 'home-a'), env);
  const b = new DistDaemon('arm64', join(dir, 'home-b'), env);
  t.after(() => Promise.all([a.stop(), b.stop()]));
  const statusA = (await a.ready()) as { listen: string };
  await b.ready();
  const shared = JSON.parse(ok(a.cli(['share', source, '--json']), 'share')) as { rw: string };
  ok(b.cli(['join', shared.rw, copy]), 'join');
  ok(b.cli(['peers', 'add', statusA.listen]), 'peers add');
  for (const [name, text] of Object.entries(files)) {
    await until(`${name} synced`, () => {
      const path = join(copy, name);
      return existsSync(path) && readFileSync(path, 'utf8') === text ? true : undefined;
    }, 240_000);
  }
});

test('figures are written to dist/measurements.json', () => {
  writeFileSync(join(DIST, 'measurements.json'), JSON.stringify(figures, null, 2) + '\n');
  assert.deepEqual(Object.keys(figures).sort(), [...TARGETS].sort());
});
