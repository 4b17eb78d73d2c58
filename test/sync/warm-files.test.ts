// WarmFiles and the block server's synchronous path for small files hashed or installed moments ago.

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { mkdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { WARM_FILE_MAX_BYTES, WARM_FILES_MAX, WarmFiles } from '../../src/scan/warm-files.js';
import { BlockServer, type BlockAnswer } from '../../src/sync/serve.js';
import type { RequestMessage } from '../../src/protocol/messages.js';
import { captureLogger, connect, converged, makeDevice, newFolder, randomContent, runCleanups, type Cleanups, type Device } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

describe('WarmFiles', () => {
  test('notes small files only, for its window', async () => {
    const warm = new WarmFiles(40);
    warm.note('a/small', WARM_FILE_MAX_BYTES);
    warm.note('a/large', WARM_FILE_MAX_BYTES + 1);
    assert.equal(warm.isWarm('a/small'), true);
    assert.equal(warm.isWarm('a/large'), false);
    assert.equal(warm.isWarm('a/other'), false);
    await sleep(60);
    assert.equal(warm.isWarm('a/small'), false, 'cold once the window has passed');
    assert.equal(warm.size, 0, 'and forgotten');
  });

  test('keeps at most WARM_FILES_MAX files, dropping the oldest', () => {
    const warm = new WarmFiles();
    for (let i = 0; i <= WARM_FILES_MAX; i++) warm.note(`f${i}`, 1);
    assert.equal(warm.size, WARM_FILES_MAX);
    assert.equal(warm.isWarm('f0'), false);
    assert.equal(warm.isWarm('f1'), true);
    assert.equal(warm.isWarm(`f${WARM_FILES_MAX}`), true);
  });

  test('holds its files in fixed arrays: no growth and no heap object per file, however many are noted', () => {
    const warm = new WarmFiles();
    assert.equal(warm.bytes, 0, 'nothing until the first note');
    warm.note('first', 1);
    const bytes = warm.bytes;
    assert.ok(bytes > 0 && bytes <= 2 * 1024 * 1024, `${bytes} bytes for ${WARM_FILES_MAX} files`);
    for (let i = 0; i < 4 * WARM_FILES_MAX; i++) warm.note(`d${i % 997}/f${i}`, 1);
    assert.equal(warm.bytes, bytes, 'the same arrays after four times WARM_FILES_MAX notes');
    assert.equal(warm.size, WARM_FILES_MAX);
    assert.equal(warm.isWarm(`d${(3 * WARM_FILES_MAX - 1) % 997}/f${3 * WARM_FILES_MAX - 1}`), false, 'dropped');
    assert.equal(warm.isWarm(`d${(3 * WARM_FILES_MAX) % 997}/f${3 * WARM_FILES_MAX}`), true, 'the oldest kept');
  });

  test('a file is warm while its latest note is among the last maxFiles notes, through notes again and evictions', () => {
    const max = 64;
    const warm = new WarmFiles(60_000, max);
    const lastNote = new Map<string, number>();
    let seed = 7;
    const random = (n: number): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
    for (let step = 0; step < 20_000; step++) {
      const path = `p${random(200)}`;
      warm.note(path, 1);
      lastNote.set(path, step);
      if (step % 97 !== 0) continue;
      let held = 0;
      for (let i = 0; i < 200; i++) {
        const probe = `p${i}`;
        const at = lastNote.get(probe);
        const expected = at !== undefined && at > step - max;
        if (expected) held++;
        assert.equal(warm.isWarm(probe), expected, `${probe} at step ${step}`);
      }
      assert.equal(warm.size, held);
    }
  });
});

/** Answers `request`; `synchronous` tells whether it came before a setImmediate, i.e. without any thread-pool round trip. */
async function answerTimed(server: BlockServer, request: RequestMessage): Promise<{ answer: BlockAnswer; synchronous: boolean }> {
  let immediate = false;
  const timer = setImmediate(() => (immediate = true));
  const answer = await server.answer(request);
  clearImmediate(timer);
  return { answer, synchronous: !immediate };
}

function requestFor(device: Device, path: string): RequestMessage {
  const local = device.index.getLocal(path)!;
  return { type: 'Request', id: 1, folderId: device.keys.folderId, path, offset: 0, size: local.size, hash: Buffer.from(local.blocks[0]!) };
}

describe('the block server and warm files', () => {
  test('a small file just hashed is read synchronously; a cold one through the thread pool, with the same answer', async () => {
    const alice = await makeDevice(cleanups, { name: 'alice', keys: newFolder() });
    await writeFile(join(alice.root, 'warm.txt'), 'warm content');
    await writeFile(join(alice.root, 'cold.txt'), 'cold content');
    await alice.scan();
    const warmTxtOnly = new WarmFiles();
    warmTxtOnly.note('warm.txt', 12); // the server below knows only this one as warm
    const server = new BlockServer({ root: alice.root, index: alice.index, logger: captureLogger().logger, requestScan: () => undefined, warmFiles: warmTxtOnly });
    cleanups.push(async () => server.close());

    assert.deepEqual(await answerTimed(server, requestFor(alice, 'warm.txt')), { answer: { data: Buffer.from('warm content') }, synchronous: true });
    assert.deepEqual(await answerTimed(server, requestFor(alice, 'cold.txt')), { answer: { data: Buffer.from('cold content') }, synchronous: false });
    assert.equal(alice.warmFiles.isWarm('warm.txt') && alice.warmFiles.isWarm('cold.txt'), true, 'the scanner noted both');
  });

  test('a warm file changed on disk answers HASH_MISMATCH and is rescanned; one turned into a symlink is not served', async () => {
    const alice = await makeDevice(cleanups, { name: 'alice', keys: newFolder() });
    await mkdir(join(alice.root, 'd'));
    await writeFile(join(alice.root, 'd/f.txt'), 'first content');
    await writeFile(join(alice.root, 'secret.txt'), 'not in the folder');
    await alice.scan();
    const request = requestFor(alice, 'd/f.txt');
    const rescans: string[] = [];
    const server = new BlockServer({ root: alice.root, index: alice.index, logger: captureLogger().logger, requestScan: (p) => rescans.push(p), warmFiles: alice.warmFiles });
    cleanups.push(async () => server.close());
    assert.ok(alice.warmFiles.isWarm('d/f.txt'));

    await writeFile(join(alice.root, 'd/f.txt'), 'other content');
    await utimes(join(alice.root, 'd/f.txt'), 1_700_000_000, 1_700_000_000);
    assert.deepEqual((await answerTimed(server, request)).answer, { error: 'HASH_MISMATCH' });
    assert.deepEqual(rescans, ['d/f.txt']);

    await rm(join(alice.root, 'd/f.txt'));
    await symlink(join(alice.root, 'secret.txt'), join(alice.root, 'd/f.txt'));
    assert.deepEqual((await answerTimed(server, request)).answer, { error: 'NO_SUCH_FILE' });
  });

  test('the scanner notes small files it hashed and the puller those it installed; both sync and serve them', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    const carol = await makeDevice(cleanups, { name: 'carol', keys });
    await mkdir(join(alice.root, 'notes'));
    const small = randomContent(4096, 1);
    const large = randomContent(WARM_FILE_MAX_BYTES + 1, 2);
    await writeFile(join(alice.root, 'notes/small.txt'), small);
    await writeFile(join(alice.root, 'large.bin'), large);
    await alice.scan();
    assert.equal(alice.warmFiles.isWarm('notes/small.txt'), true);
    assert.equal(alice.warmFiles.isWarm('large.bin'), false, 'larger files are not noted');

    await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    assert.equal(bob.warmFiles.isWarm('notes/small.txt'), true, 'installed by the puller');
    assert.equal(bob.warmFiles.isWarm('large.bin'), false);

    // Carol gets the files from Bob alone, who serves what he has just written.
    await connect(cleanups, bob, carol);
    await converged([alice, bob, carol]);
    assert.ok(carol.sync.stats.bytesRequested >= small.length + large.length);
  });
});
