// Transfers: reconnects send only what changed, a half-done temp file is reused after a restart, bytes in flight stay bounded.

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { access, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MESSAGE_CODES } from '../../src/protocol/messages.js';
import { decodeMessage } from '../../src/protocol/validate.js';
import { TEMP_FILE_PREFIX } from '../../src/scan/ignore.js';
import type { FolderSync } from '../../src/sync/folder-sync.js';
import {
  connect,
  converged,
  makeDevice,
  newFolder,
  randomContent,
  runCleanups,
  until,
  type Cleanups,
  type Link,
} from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

/** Serves blocks only after a pause, so a transfer can be watched (and interrupted) while it runs. */
function slowDown(sync: FolderSync, delayMs: number): void {
  const answer = sync.answer.bind(sync);
  sync.answer = async (deviceId, request) => {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return answer(deviceId, request);
  };
}

function indexBatchesOut(frames: Link['framesA']): Array<{ type: string; records: number }> {
  return frames
    .filter((f) => f.direction === 'out' && (f.type === MESSAGE_CODES.Index || f.type === MESSAGE_CODES.IndexUpdate))
    .map((f) => {
      const message = decodeMessage(f.type, f.body);
      return { type: message.type, records: message.type === 'Index' || message.type === 'IndexUpdate' ? message.records.length : 0 };
    });
}

describe('transfers', () => {
  test('a reconnect resumes with IndexUpdate from the last sequence: only what changed is sent', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    for (let i = 0; i < 30; i++) await writeFile(join(alice.root, `f${i}.txt`), `file ${i}`);
    await alice.scan();
    const first = await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    await alice.sync.idle();
    await bob.sync.idle();
    assert.deepEqual(indexBatchesOut(first.framesA)[0], { type: 'Index', records: 30 });
    await first.close();

    await writeFile(join(alice.root, 'f3.txt'), 'changed while apart');
    await writeFile(join(alice.root, 'new.txt'), 'new while apart');
    await alice.scan();
    const second = await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    assert.deepEqual(indexBatchesOut(second.framesA)[0], { type: 'IndexUpdate', records: 2 });
  });

  test('a peer with a new index ID gets (and sends) a full index again', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    await writeFile(join(alice.root, 'a.txt'), 'a');
    await alice.scan();
    const first = await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    await first.close();
    // Bob loses his index (a new home) but keeps the files: he announces a new index ID.
    await bob.close();
    const reborn = await makeDevice(cleanups, { name: 'bob', keys, root: bob.root });
    await reborn.scan();
    const second = await connect(cleanups, alice, reborn);
    await until(() => alice.index.peerIndexId(reborn.id)?.equals(reborn.index.indexId()) === true);
    assert.equal(indexBatchesOut(second.framesA)[0]?.type, 'Index', 'bob knows no index ID of ours any more');
    assert.equal(indexBatchesOut(second.framesB)[0]?.type, 'Index');
    await converged([alice, reborn]);
  });

  test('adjacent blocks are fetched in one request of up to 2 MiB, each block checked', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    const content = randomContent(5 * 1024 * 1024 + 1000, 12); // 41 blocks of 128 KiB, the last one short
    await writeFile(join(alice.root, 'big.bin'), content);
    await alice.scan();
    const link = await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    assert.deepEqual(await readFile(join(bob.root, 'big.bin')), content);
    const requests = link.framesB
      .filter((f) => f.direction === 'out' && f.type === MESSAGE_CODES.Request)
      .map((f) => decodeMessage(f.type, f.body))
      .map((m) => (m.type === 'Request' ? { offset: m.offset, size: m.size, blocks: m.hash.length / 32 } : undefined))
      .sort((x, y) => x!.offset - y!.offset);
    const MiB = 1024 * 1024;
    assert.deepEqual(requests, [
      { offset: 0, size: 2 * MiB, blocks: 16 },
      { offset: 2 * MiB, size: 2 * MiB, blocks: 16 },
      { offset: 4 * MiB, size: MiB + 1000, blocks: 9 },
    ]);
    assert.equal(bob.sync.stats.blocksRequested, 41);
  });

  test('a half-done temp file is reused after a restart; the target never holds a partial file', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const content = randomContent(8 * 1024 * 1024, 11); // 64 blocks
    await writeFile(join(alice.root, 'large.bin'), content);
    await alice.scan();
    slowDown(alice.sync, 5);
    const limits = { folderBytesInFlight: 256 * 1024, peerBytesInFlight: 256 * 1024 };
    const bob = await makeDevice(cleanups, { name: 'bob', keys, limits });
    const link = await connect(cleanups, alice, bob);
    await until(() => bob.sync.stats.blocksRequested >= 16);
    await link.close();
    await bob.close();
    const firstBytes = bob.sync.stats.bytesRequested;
    assert.ok(firstBytes < content.length);
    await assert.rejects(access(join(bob.root, 'large.bin')), 'no partial file at the target');
    assert.equal((await readdir(bob.root)).filter((n) => n.startsWith(TEMP_FILE_PREFIX)).length, 1);

    const again = await makeDevice(cleanups, { name: 'bob', keys, root: bob.root, home: bob.home, limits });
    await connect(cleanups, alice, again);
    await until(async () => (await readdir(again.root)).includes('large.bin'));
    assert.deepEqual(await readFile(join(again.root, 'large.bin')), content);
    assert.ok(again.sync.stats.blocksReused >= 10, `reused ${again.sync.stats.blocksReused} blocks`);
    assert.ok(again.sync.stats.bytesRequested + firstBytes <= content.length + 4 * 131072, 'little fetched twice');
    assert.ok(again.sync.stats.bytesRequested < content.length - 8 * 131072);
    assert.equal((await readdir(again.root)).filter((n) => n.startsWith(TEMP_FILE_PREFIX)).length, 0);
  });

  test('bytes in flight stay under the folder and per-peer limits, whatever the file size', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    await writeFile(join(alice.root, 'one.bin'), randomContent(3 * 1024 * 1024, 21));
    await writeFile(join(alice.root, 'two.bin'), randomContent(2 * 1024 * 1024, 22));
    await alice.scan();
    slowDown(alice.sync, 2);
    const limits = { folderBytesInFlight: 512 * 1024, peerBytesInFlight: 384 * 1024 };
    const bob = await makeDevice(cleanups, { name: 'bob', keys, limits });
    // Measured on the serving side: Requests received minus Responses sent.
    const outstanding = new Map<number, number>();
    let bytes = 0;
    let peak = 0;
    const link = await connect(cleanups, alice, bob);
    void link;
    const observe = (direction: 'in' | 'out', type: number, body: Buffer): void => {
      const message = decodeMessage(type, body);
      if (direction === 'in' && message.type === 'Request') {
        outstanding.set(message.id, message.size);
        bytes += message.size;
        peak = Math.max(peak, bytes);
      } else if (direction === 'out' && message.type === 'Response') {
        bytes -= outstanding.get(message.id) ?? 0;
        outstanding.delete(message.id);
      }
    };
    // Replay what was seen so far, then keep watching as frames arrive.
    let seen = 0;
    await until(async () => {
      for (; seen < link.framesA.length; seen++) {
        const frame = link.framesA[seen]!;
        if (frame.type === MESSAGE_CODES.Request || frame.type === MESSAGE_CODES.Response) observe(frame.direction, frame.type, frame.body);
      }
      return (await readdir(bob.root)).filter((n) => n.endsWith('.bin')).length === 2;
    });
    await converged([alice, bob]);
    assert.ok(peak > 0);
    assert.ok(peak <= 384 * 1024, `peak outstanding ${peak}`);
    assert.ok(bob.sync.budget.peak <= 512 * 1024);
    assert.equal(bob.sync.stats.bytesRequested, 5 * 1024 * 1024);
  });
});

describe('index batches', () => {
  test('a large index goes out in several batches, all stored with the last sequence', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const records = Array.from({ length: 2500 }, (_, i) => ({
      path: `d${String(i).padStart(4, '0')}`,
      type: 'dir' as const,
      size: 0,
      mode: 0o755,
      mtimeMs: 1_700_000_000_000,
      inode: 1,
      version: { [alice.shortId]: 1 },
      modifiedBy: alice.shortId,
      blockSize: 0,
      blocks: [],
      deleted: false,
    }));
    await alice.index.putLocal(records);
    const bob = await makeDevice(cleanups, { name: 'bob', keys });
    const link = await connect(cleanups, alice, bob);
    await until(() => bob.index.peerSequence(alice.id) === 2500);
    const batches = indexBatchesOut(link.framesA);
    assert.deepEqual(batches.map((b) => b.records), [1000, 1000, 500]);
    assert.deepEqual(batches.map((b) => b.type), ['Index', 'IndexUpdate', 'IndexUpdate']);
    assert.equal(bob.index.devicesWith('d2499', { [alice.shortId]: 1 }).length, 1);
  });
});
