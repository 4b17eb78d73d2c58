// Large files are written to their temp file past the page cache (O_DIRECT), their unaligned tail through it;
// small files, and file systems that refuse O_DIRECT, go through the cache. The copies are exact either way.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, afterEach, describe, test } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from '../helpers/needs.js';
import { connect, converged, makeDevice, newFolder, randomContent, runCleanups, tempDir, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

const MiB = 1024 * 1024;

/** A ramfs mount (its files take no O_DIRECT), unmounted by the cleanups. Needs root, as CI has. */
async function ramfs(): Promise<string> {
  const dir = await tempDir(cleanups, 'ferry-ramfs-');
  execFileSync('mount', ['-t', 'ramfs', 'ramfs', dir]);
  cleanups.push(async () => void execFileSync('umount', [dir]));
  return dir;
}

describe('direct writes', () => {
  test('a large file goes to disk past the page cache, its unaligned tail through it; a small file through it', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    const large = randomContent(3 * MiB + 1000, 21);
    const small = randomContent(900 * 1024, 22); // several blocks, below the size written directly
    await writeFile(join(alice.root, 'large.bin'), large);
    await writeFile(join(alice.root, 'small.bin'), small);
    await alice.scan();
    await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    assert.deepEqual(await readFile(join(bob.root, 'large.bin')), large);
    assert.deepEqual(await readFile(join(bob.root, 'small.bin')), small);
    assert.equal(bob.sync.stats.bytesWrittenDirect, 3 * MiB, 'every aligned byte of the large file, none of the rest');
  });

  test('on a file system that refuses O_DIRECT (ramfs) a large file is written through the cache, intact', { skip: needs.root() }, async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys, root: await ramfs() });
    const large = randomContent(5 * MiB + 4096, 23);
    await writeFile(join(alice.root, 'large.bin'), large);
    await alice.scan();
    await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    assert.deepEqual(await readFile(join(bob.root, 'large.bin')), large);
    assert.equal(bob.sync.stats.bytesWrittenDirect, 0);
    assert.equal(bob.sync.stats.bytesRequested, large.length);
  });

  test('without WebAssembly (node --jitless) a puller gets no staging buffers, so its writes go through the cache', () => {
    const fetcher = fileURLToPath(new URL('../../src/sync/fetcher.js', import.meta.url));
    const probe = `import(${JSON.stringify(fetcher)}).then((m) => console.log(String(m.directWriteBuffers() === undefined)))`;
    const run = (flags: string[]): string => execFileSync(process.execPath, [...flags, '-e', probe], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    assert.equal(run(['--jitless']), 'true');
    assert.equal(run([]), 'false');
  });

  test('a local copy (a renamed file) is written directly as well', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    const content = randomContent(2 * MiB, 24);
    await writeFile(join(alice.root, 'a.bin'), content);
    await alice.scan();
    await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    const before = bob.sync.stats.bytesWrittenDirect;
    await writeFile(join(alice.root, 'b.bin'), content); // the same blocks under a second name: copied on bob, not fetched
    await alice.scan();
    await converged([alice, bob]);
    assert.deepEqual(await readFile(join(bob.root, 'b.bin')), content);
    assert.equal(bob.sync.stats.bytesCopied, content.length);
    assert.equal(bob.sync.stats.bytesWrittenDirect - before, content.length);
  });
});
