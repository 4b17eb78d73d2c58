// Bad input from peers: unsigned or forged records, unsafe paths, paths through a symlink, lying peers, wrong folders, backwards sequences.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, describe, test } from 'node:test';
import { mkdir, readdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FolderKeys } from '../../src/keys/index.js';
import { answerRequest } from '../../src/sync/serve.js';
import {
  captureLogger,
  connect,
  converged,
  deviceIdOf,
  makeDevice,
  newFolder,
  randomContent,
  runCleanups,
  tempDir,
  until,
  type Cleanups,
  type Device,
} from './helpers.js';
import { rawPeer as scriptedPeer, record, sendRecords, signed, type RawPeer } from './raw-peer.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

/** A scripted peer (raw-peer.ts) whose session ends with the test. */
const rawPeer = (victim: Device, keys: FolderKeys, name?: string): Promise<RawPeer> => scriptedPeer(cleanups, victim, keys, name);

async function setup(): Promise<{ keys: FolderKeys; victim: Device; lines: string[] }> {
  const keys = newFolder();
  const { logger, lines } = captureLogger();
  const victim = await makeDevice(cleanups, { name: 'victim', keys, logger });
  await writeFile(join(victim.root, 'precious.txt'), 'keep me');
  await victim.scan();
  return { keys, victim, lines };
}

async function intact(victim: Device, also: string[] = []): Promise<void> {
  assert.equal(await readFile(join(victim.root, 'precious.txt'), 'utf8'), 'keep me');
  assert.deepEqual((await readdir(victim.root)).filter((n) => n !== '.ferry').sort(), ['precious.txt', ...also].sort());
}

describe('hostile peers', () => {
  test('a record without a folder signature from a peer without the folder key, or with a forged one from any peer, drops the connection', async () => {
    const { keys, victim } = await setup();
    const cases: Array<[FolderKeys, Buffer | undefined]> = [[keys.weaken('ro'), undefined], [keys.weaken('ro'), randomBytes(64)], [keys, randomBytes(64)]];
    for (const [peerKeys, signature] of cases) {
      const peer = await rawPeer(victim, peerKeys);
      const bad = record('precious.txt', { size: 3, blocks: [randomBytes(32)], version: { MALLORY: 9 }, ...(signature ? { signature } : {}) });
      await sendRecords(peer, [bad]);
      await until(() => peer.victimConn.closed);
      assert.equal(peer.victimConn.closeCode, 'SIGNATURE_INVALID');
      assert.equal(victim.index.remoteVersion(deviceIdOf('mallory'), 'precious.txt'), undefined);
    }
    // A record signed by another folder's key is just as forged.
    const other = newFolder();
    const peer = await rawPeer(victim, keys);
    await sendRecords(peer, [signed(other, record('x.txt'))]);
    await until(() => peer.victimConn.closed);
    assert.equal(peer.victimConn.closeCode, 'SIGNATURE_INVALID');
    await intact(victim);
  });

  test('unsafe paths (.., absolute, NUL, control characters) are skipped and reported; the link stays and the rest of the batch is taken', async () => {
    const { keys, victim } = await setup();
    const peer = await rawPeer(victim, keys);
    const bad = ['../escape.txt', '/etc/passwd', 'a/\u0000/b', 'line\nbreak.txt', 'esc\u001b[2J.txt', 'rtl\u202etxt.exe'];
    const records = bad.map((path, i) => signed(keys, record(path, { sequence: i + 1 })));
    records.push(signed(keys, record('fine.txt', { sequence: bad.length + 1 })));
    await sendRecords(peer, records);
    await until(() => victim.index.peerSequence(deviceIdOf('mallory')) === bad.length + 1);
    assert.equal(peer.victimConn.closed, false, 'one bad record is not a reason to drop the link');
    assert.ok(victim.index.getGlobal('fine.txt'));
    const report = victim.sync.report();
    assert.equal(report.failedItems, bad.length);
    for (const item of report.failed) {
      assert.equal(item.source, deviceIdOf('mallory'));
      assert.match(item.reason, /refused from peer/);
      assert.doesNotMatch(item.path, /[\u0000-\u001f\u202e]/, 'shown escaped');
    }
    await until(async () => (await readdir(victim.root)).includes('fine.txt'));
    await intact(victim, ['fine.txt']);
  });

  test('a record with version counters of 2^53-1 is skipped and reported; later records of the same peer still sync', async () => {
    const { keys, victim } = await setup();
    const peer = await rawPeer(victim, keys);
    await sendRecords(peer, [
      signed(keys, record('precious.txt', { version: { MALLORY: Number.MAX_SAFE_INTEGER }, sequence: 1 })),
      signed(keys, record('huge-mtime.txt', { mtimeMs: 1e300, sequence: 2 })),
    ]);
    await until(() => victim.index.peerSequence(deviceIdOf('mallory')) === 2);
    await sendRecords(peer, [signed(keys, record('later.txt', { sequence: 3 }))]);
    await until(async () => (await readdir(victim.root)).includes('later.txt'));
    assert.equal(peer.victimConn.closed, false);
    assert.deepEqual(victim.sync.report().failed.map((item) => item.path).sort(), ['huge-mtime.txt', 'precious.txt']);
    await intact(victim, ['later.txt']);
  });

  test("a signed record whose path goes through a symlink on the receiver's disk is refused; nothing is written outside", async () => {
    const { keys, victim, lines } = await setup();
    const outside = await tempDir(cleanups, 'ferry-outside-');
    await symlink(outside, join(victim.root, 'link'));
    await victim.scan();
    const peer = await rawPeer(victim, keys);
    await sendRecords(peer, [signed(keys, record('link/evil.txt'))]);
    await until(() => lines.some((line) => line.includes('refusing an unsafe path')));
    assert.deepEqual(await readdir(outside), []);
    assert.equal(peer.victimConn.closed, false, 'a valid record is not the peer misbehaving');
    assert.equal(await readFile(join(victim.root, 'precious.txt'), 'utf8'), 'keep me');
  });

  test('reserved paths (.ferry/…, temp names) from a peer are ignored', async () => {
    const { keys, victim } = await setup();
    const peer = await rawPeer(victim, keys);
    await sendRecords(peer, [signed(keys, record('.ferry/archive/x~20260101-000000-000', { sequence: 1 })), signed(keys, record('.ferry-tmp-abc', { sequence: 2 }))]);
    await until(() => victim.index.peerSequence(deviceIdOf('mallory')) === 2);
    assert.equal(victim.index.getGlobal('.ferry/archive/x~20260101-000000-000'), undefined);
    assert.equal(victim.index.getGlobal('.ferry-tmp-abc'), undefined);
    await intact(victim);
  });

  test('a message for a folder not shared on this connection, or sequences going backwards, drop it', async () => {
    const { keys, victim } = await setup();
    const peer = await rawPeer(victim, keys);
    await peer.conn.send({ type: 'Request', id: 1, folderId: randomBytes(20), path: 'precious.txt', offset: 0, size: 7, hash: randomBytes(32) });
    await until(() => peer.victimConn.closed);
    assert.equal(peer.victimConn.closeCode, 'PROTOCOL');

    const again = await rawPeer(victim, keys);
    await sendRecords(again, [signed(keys, record('one.txt', { sequence: 5 }))]);
    await until(() => victim.index.peerSequence(deviceIdOf('mallory')) === 5);
    await sendRecords(again, [signed(keys, record('two.txt', { sequence: 3 }))]);
    await until(() => again.victimConn.closed);
    assert.equal(again.victimConn.closeCode, 'PROTOCOL');
    assert.match(again.victimConn.closeReason ?? '', /backwards/);
    await until(async () => (await readdir(victim.root)).includes('one.txt'));
    assert.equal(await readFile(join(victim.root, 'precious.txt'), 'utf8'), 'keep me');
  });

  test('blocks that fail their hash are refetched elsewhere; a peer that keeps lying is dropped', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const { logger, lines } = captureLogger();
    const carol = await makeDevice(cleanups, { name: 'carol', keys, logger });
    await writeFile(join(alice.root, 'data.bin'), randomContent(1024 * 1024, 3));
    await alice.scan();
    const truth = alice.index.getGlobal('data.bin')!;

    // The liar announces alice's exact version and answers every request with garbage.
    const liar = await rawPeer(carol, keys, 'liar');
    void (async () => {
      for await (const message of liar.conn) {
        if (message.type === 'Request') await liar.conn.send({ type: 'Response', id: message.id, data: randomBytes(message.size) }).catch(() => undefined);
      }
    })();
    await sendRecords(liar, [signed(keys, { ...truth, inode: 0, sequence: 1 })]);
    await until(() => liar.victimConn.closed);
    assert.equal(liar.victimConn.closeCode, 'BLOCK_MISMATCH');
    assert.ok(carol.sync.stats.badBlocks >= 3);
    assert.ok(lines.some((line) => line.includes('block hash mismatch')));
    assert.deepEqual((await readdir(carol.root)).filter((n) => n === 'data.bin'), [], 'nothing unverified reaches the target');

    await connect(cleanups, alice, carol);
    await converged([alice, carol]);
    assert.deepEqual(await readFile(join(carol.root, 'data.bin')), await readFile(join(alice.root, 'data.bin')));
  });

  test('a peer whose file changed on disk answers HASH_MISMATCH and rescans', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    await mkdir(join(alice.root, 'd'));
    await writeFile(join(alice.root, 'd/f.txt'), 'first content');
    await alice.scan();
    const local = alice.index.getLocal('d/f.txt')!;
    await writeFile(join(alice.root, 'd/f.txt'), 'other content');
    const scansBefore = alice.scans;
    const answer = await answerRequest(
      { type: 'Request', id: 1, folderId: keys.folderId, path: 'd/f.txt', offset: 0, size: local.size, hash: Buffer.from(local.blocks[0]!) },
      { root: alice.root, index: alice.index, logger: captureLogger().logger, requestScan: (p) => void alice.scan(p) },
    );
    assert.deepEqual(answer, { error: 'HASH_MISMATCH' });
    assert.equal(alice.scans, scansBefore + 1);
    const wrongHash = await answerRequest(
      { type: 'Request', id: 2, folderId: keys.folderId, path: 'd/f.txt', offset: 0, size: local.size, hash: randomBytes(32) },
      { root: alice.root, index: alice.index, logger: captureLogger().logger, requestScan: () => undefined },
    );
    assert.deepEqual(wrongHash, { error: 'NO_SUCH_FILE' });
  });

  test('a file that still has its indexed size, mtime and inode is served without hashing the block again', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const path = join(alice.root, 'f.txt');
    await writeFile(path, 'first content');
    await utimes(path, 1_700_000_000, 1_700_000_000); // whole seconds: restored exactly below
    await alice.scan();
    const local = alice.index.getLocal('f.txt')!;
    const request = { type: 'Request' as const, id: 1, folderId: keys.folderId, path: 'f.txt', offset: 0, size: local.size, hash: Buffer.from(local.blocks[0]!) };
    const options = { root: alice.root, index: alice.index, logger: captureLogger().logger, requestScan: () => undefined };
    assert.deepEqual(await answerRequest(request, options), { data: Buffer.from('first content') });
    // An edit in place that puts the mtime back is invisible to the scanner and to the server
    // alike; the receiver's hash check is what refuses the block (see the lying-peer test).
    await writeFile(path, 'other content');
    await utimes(path, 1_700_000_000, 1_700_000_000);
    assert.deepEqual(await answerRequest(request, options), { data: Buffer.from('other content') });
    await utimes(path, 1_700_000_001, 1_700_000_001);
    assert.deepEqual(await answerRequest(request, options), { error: 'HASH_MISMATCH' });
  });

  test('a request may name a run of adjacent blocks; one that does not match the record exactly is refused', async () => {
    const keys = newFolder();
    const alice = await makeDevice(cleanups, { name: 'alice', keys });
    const path = join(alice.root, 'three.bin');
    const content = randomContent(2 * 131072 + 5000, 4); // blocks of 128 KiB, the last one short
    await writeFile(path, content);
    await alice.scan();
    const local = alice.index.getLocal('three.bin')!;
    assert.equal(local.blocks.length, 3);
    const [b0, b1, b2] = local.blocks.map((b) => Buffer.from(b));
    const options = { root: alice.root, index: alice.index, logger: captureLogger().logger, requestScan: () => undefined };
    const ask = (offset: number, size: number, hashes: Buffer[]) =>
      answerRequest({ type: 'Request', id: 1, folderId: keys.folderId, path: 'three.bin', offset, size, hash: Buffer.concat(hashes) }, options);

    assert.deepEqual(await ask(131072, 131072 + 5000, [b1!, b2!]), { data: content.subarray(131072) });
    assert.deepEqual(await ask(0, content.length, [b0!, b1!, b2!]), { data: content });
    for (const [why, offset, size, hashes] of [
      ['the size of one block less', 0, 2 * 131072 + 4999, [b0!, b1!, b2!]],
      ['blocks swapped', 0, 2 * 131072, [b1!, b0!]],
      ['a run past the last block', 131072, 131072 + 5000, [b1!, b2!, b2!]],
      ['not at a block boundary', 1, 131072, [b1!]],
    ] as const) {
      assert.deepEqual(await ask(offset, size, [...hashes]), { error: 'NO_SUCH_FILE' }, why);
    }

    // Changed on disk since indexed: every block of the run is checked, so an edit in the last one is found.
    content[content.length - 1] ^= 0xff;
    await writeFile(path, content);
    assert.deepEqual(await ask(0, content.length, [b0!, b1!, b2!]), { error: 'HASH_MISMATCH' });
  });
});
