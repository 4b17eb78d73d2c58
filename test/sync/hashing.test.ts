// The sender's side of streaming large files: announced block hashes become Hashing messages, and their blocks are served before the record exists.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HashingFiles, HASHING_KEEP_MS, MAX_HASHING_FILES } from '../../src/sync/hashing.js';
import { BlockServer } from '../../src/sync/serve.js';
import type { HashingEvent } from '../../src/scan/scanner.js';
import { captureLogger, MemoryFolderIndex, makeTempDir, runCleanups } from '../scan/helpers.js';

const cleanups: Array<() => Promise<void>> = [];
after(() => runCleanups(cleanups));

const folderId = Buffer.alloc(20, 1);
const sha = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

function event(path: string, tag: Buffer, firstBlock: number, blocks: Buffer[], over: Partial<HashingEvent> = {}): HashingEvent {
  return { path, tag, size: 4096 * 256 * 1024, mtimeMs: 1, inode: 2, blockSize: 256 * 1024, firstBlock, blocks, ...over };
}

describe('HashingFiles', () => {
  test('blocks become messages of at most 1,024 hashes; a new tag replaces the old; an abandoned attempt is forgotten', () => {
    const files = new HashingFiles();
    const tag = randomBytes(16);
    const hashes = Array.from({ length: 1500 }, (_, i) => sha(Buffer.from([i & 255, i >> 8])));
    const messages = files.note(folderId, event('big', tag, 10, hashes));
    assert.deepEqual(messages.map((m) => [m.firstBlock, m.hashes.length / 32]), [[10, 1024], [1034, 476]]);
    assert.ok(Buffer.from(files.get('big')!.blocks[1509]!).equals(hashes[1499]!));
    assert.equal(files.get('big')!.blocks[9], undefined, 'a hole where nothing was told');
    const retag = randomBytes(16);
    files.note(folderId, event('big', retag, 0, [hashes[0]!]));
    assert.equal(files.get('big')!.blocks[10], undefined, 'the old attempt is gone');
    files.note(folderId, event('big', tag, 0, [], { abandoned: true }));
    assert.ok(files.get('big'), 'abandoning an older tag leaves the new one');
    assert.deepEqual(files.note(folderId, event('big', retag, 0, [], { abandoned: true })), []);
    assert.equal(files.get('big'), undefined);
  });

  test('bounded in files and in time; blocks past the file size are not kept', () => {
    const files = new HashingFiles();
    for (let i = 0; i < MAX_HASHING_FILES + 3; i++) files.note(folderId, event(`f${i}`, randomBytes(16), 0, [sha(Buffer.from([i]))]), 1000);
    assert.equal(files.size, MAX_HASHING_FILES);
    assert.equal(files.get('f0', 1000), undefined, 'the oldest went first');
    assert.equal(files.get(`f${MAX_HASHING_FILES + 2}`, 1000 + HASHING_KEEP_MS + 1), undefined, 'forgotten after HASHING_KEEP_MS');
    const small = files.note(folderId, event('small', randomBytes(16), 1, [sha(Buffer.from('a')), sha(Buffer.from('b'))], { size: 2 * 256 * 1024 }));
    assert.equal(small[0]!.hashes.length, 32, 'only block 1 of a 2-block file');
  });
});

describe('BlockServer and a file being hashed', () => {
  test('announced blocks are served before the record exists; unannounced ones and other hashes are not', async () => {
    const root = await makeTempDir(cleanups);
    const blockSize = 128 * 1024;
    const data = randomBytes(blockSize * 3 + 100);
    await writeFile(join(root, 'big'), data);
    const info = await stat(join(root, 'big'));
    const files = new HashingFiles();
    const block = (i: number): Buffer => data.subarray(i * blockSize, Math.min(data.length, (i + 1) * blockSize));
    files.note(folderId, event('big', randomBytes(16), 0, [sha(block(0)), sha(block(1))], { size: data.length, blockSize, mtimeMs: info.mtimeMs, inode: info.ino }));
    const server = new BlockServer({ root, index: new MemoryFolderIndex(), logger: captureLogger().logger, requestScan: () => undefined, hashing: (path) => files.get(path) });
    cleanups.push(async () => server.close());
    const request = (offset: number, size: number, hash: Buffer) => server.answer({ type: 'Request', id: 1, folderId, path: 'big', offset, size, hash });
    const two = await request(0, 2 * blockSize, Buffer.concat([sha(block(0)), sha(block(1))]));
    assert.ok('data' in two && two.data.equals(data.subarray(0, 2 * blockSize)));
    assert.deepEqual(await request(2 * blockSize, blockSize, sha(block(2))), { error: 'NO_SUCH_FILE' }, 'block 2 not announced yet');
    assert.deepEqual(await request(0, blockSize, sha(block(1))), { error: 'NO_SUCH_FILE' }, 'a hash that is not the announced one');
  });
});

describe('Scanner onHashing', () => {
  test('a file of at least streamMinBytes has its block hashes told under one tag before its record is stored; smaller files are not told', async () => {
    const { Scanner } = await import('../../src/scan/scanner.js');
    const { HashPool } = await import('../../src/scan/hash-pool.js');
    const root = await makeTempDir(cleanups);
    await writeFile(join(root, 'big'), randomBytes(20 * 1024 * 1024));
    await writeFile(join(root, 'small'), randomBytes(1024 * 1024));
    const pool = new HashPool({ workers: 1 });
    await pool.open();
    cleanups.push(() => pool.close());
    const index = new MemoryFolderIndex();
    const events: HashingEvent[] = [];
    const scanner = new Scanner({
      root,
      index,
      deviceShortId: 'ABCDEFGHIJKL',
      pool,
      streamMinBytes: 16 * 1024 * 1024,
      onHashing: (e) => {
        assert.equal(index.getLocal(e.path), undefined, 'told before the record is stored');
        events.push(e);
      },
    });
    await scanner.scan();
    assert.deepEqual(new Set(events.map((e) => e.path)), new Set(['big']));
    assert.equal(new Set(events.map((e) => e.tag.toString('hex'))).size, 1);
    const told = events.flatMap((e) => e.blocks.map((hash, i) => [e.firstBlock + i, hash.toString('hex')] as const));
    const record = index.getLocal('big')!;
    assert.deepEqual(told, record.blocks.map((hash, i) => [i, Buffer.from(hash).toString('hex')]));
  });
});

describe('HashingFiles.snapshot', () => {
  test('every known block, in runs of at most 1,024, under the current tag', () => {
    const files = new HashingFiles();
    const tag = randomBytes(16);
    const hashes = Array.from({ length: 1100 }, (_, i) => sha(Buffer.from([i & 255, i >> 8])));
    files.note(folderId, event('big', tag, 0, hashes.slice(0, 1030)));
    files.note(folderId, event('big', tag, 2000, hashes.slice(1030)));
    const snapshot = files.snapshot(folderId);
    assert.deepEqual(snapshot.map((m) => [m.firstBlock, m.hashes.length / 32]), [[0, 1024], [1024, 6], [2000, 70]]);
    assert.ok(snapshot.every((m) => m.tag.equals(tag) && m.path === 'big'));
    assert.ok(snapshot[2]!.hashes.subarray(0, 32).equals(hashes[1030]!));
  });
});
