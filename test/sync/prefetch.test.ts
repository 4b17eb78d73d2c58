// Streaming large files between two devices (real FolderSyncs, PeerConnections and handshake): the receiver fetches a large file's blocks while the sender still hashes it, and adopts them when the signed record arrives.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { MESSAGE_CODES } from '../../src/protocol/messages.js';
import { HashPool } from '../../src/scan/hash-pool.js';
import type { BlockProgress, HashResult } from '../../src/scan/hasher.js';
import { STREAM_MIN_BYTES } from '../../src/scan/scanner.js';
import { TEMP_FILE_PREFIX } from '../../src/scan/ignore.js';
import { PREFETCH_MAX_PER_PEER } from '../../src/sync/prefetch.js';
import { captureLogger, connect, converged, makeDevice, newFolder, runCleanups, until, type Cleanups, type Device } from './helpers.js';
import { rawPeer } from './raw-peer.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

/**
 * The sender's hash pool, slowed through its seam (the scanner's pool): a large file's hash is done
 * (its block hashes told as they come) but its result waits for the test to open the gate, as a
 * slow disk would hold it. The file's stat is taken again at the end, as the hasher does after its
 * last read: a file changed while the gate was shut counts as changed during the hash.
 */
class GatedPool extends HashPool {
  private release: () => void = () => undefined;
  private gate: Promise<void> = Promise.resolve();
  /** Large-file hashes started (each attempt). */
  started = 0;

  shut(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }

  letThrough(): void {
    this.release();
  }

  /** Lets the hashes started so far through (whether or not their reading is done) and holds the next ones. */
  letThroughOnce(): void {
    const release = this.release;
    this.shut();
    release();
  }

  override async hash(absPath: string, blockSize: number, signal?: AbortSignal, expectedBytes?: number, progress?: BlockProgress): Promise<HashResult> {
    if ((expectedBytes ?? 0) < STREAM_MIN_BYTES) return super.hash(absPath, blockSize, signal, expectedBytes, progress);
    this.started++;
    // The gate as this attempt starts: letThroughOnce releases it even when the hash ends after the call.
    const gate = this.gate;
    const result = await super.hash(absPath, blockSize, signal, expectedBytes, progress);
    await gate;
    const after = await lstat(absPath);
    if (after.mtimeMs !== result.mtimeMs || after.size !== result.size || after.ino !== result.inode) return { ...result, changedDuringHash: true };
    return result;
  }
}

async function gatedPool(): Promise<GatedPool> {
  const pool = new GatedPool({ workers: 2 });
  await pool.open();
  cleanups.push(() => pool.close());
  return pool;
}

async function devices(): Promise<{ alice: Device; bob: Device; pool: GatedPool }> {
  const keys = newFolder();
  const pool = await gatedPool();
  const alice = await makeDevice(cleanups, { name: 'alice', keys, pool });
  const bob = await makeDevice(cleanups, { name: 'bob', keys, logger: captureLogger().logger });
  // A failed test must not leave a scan waiting at the gate (cleanups run last-first: this one first).
  cleanups.push(async () => pool.letThrough());
  return { alice, bob, pool };
}

async function pair(): Promise<{ alice: Device; bob: Device; pool: GatedPool; responseBytesToBob: () => number }> {
  const { alice, bob, pool } = await devices();
  const link = await connect(cleanups, alice, bob);
  // Block data bob received (Response frames in at bob's end of the link).
  const responseBytesToBob = (): number =>
    link.framesB.filter((f) => f.direction === 'in' && f.type === MESSAGE_CODES.Response).reduce((sum, f) => sum + f.body.length, 0);
  cleanups.push(async () => pool.letThrough());
  return { alice, bob, pool, responseBytesToBob };
}

async function temps(root: string): Promise<string[]> {
  return (await readdir(root)).filter((name) => name.startsWith(TEMP_FILE_PREFIX));
}

describe('streaming large files', () => {
  test('the receiver has every block before the record exists, adopts them, and fetches nothing twice', async () => {
    const { alice, bob, pool, responseBytesToBob } = await pair();
    const size = 40 * 1024 * 1024 + 12345;
    const content = randomBytes(size);
    await writeFile(join(alice.root, 'big.bin'), content);
    pool.shut();
    const scan = alice.scan();
    // Everything announced is fetched while alice's scan still holds the file's result: no record anywhere yet.
    await until(() => bob.sync.prefetchReport().bytesFetched === size);
    assert.equal(alice.index.getLocal('big.bin'), undefined, 'the sender has not recorded the file yet');
    assert.equal(bob.index.getGlobal('big.bin'), undefined, 'the receiver has no record of it yet');
    assert.equal(pool.started, 1);
    pool.letThrough();
    await scan;
    await converged([alice, bob]);
    const report = bob.sync.prefetchReport();
    assert.equal(report.bytesAdopted, size, 'every prefetched block adopted');
    assert.equal(report.blocksAdopted, alice.index.getLocal('big.bin')!.blocks.length);
    assert.equal(bob.sync.stats.bytesRequested, 0, 'the puller fetched nothing again');
    const wire = responseBytesToBob();
    assert.ok(wire >= size && wire < size * 1.01, `bytes received ≈ file size (${wire} for ${size})`);
    assert.deepEqual(await temps(bob.root), []);
    assert.equal(report.dropped, 0, JSON.stringify(report.reasons));
  });

  test('a file in a directory the receiver does not have yet (a tree moved in) is prefetched beside its nearest directory and adopted into the new one', async () => {
    const { alice, bob, pool, responseBytesToBob } = await pair();
    const size = 24 * 1024 * 1024 + 777;
    const content = randomBytes(size);
    await mkdir(join(alice.root, 'moved', 'in'), { recursive: true });
    await writeFile(join(alice.root, 'moved', 'in', 'big.bin'), content);
    pool.shut();
    const scan = alice.scan();
    // The directories are recorded by the same scan that hashes the file: bob has neither them nor the record yet.
    await until(() => bob.sync.prefetchReport().bytesFetched === size || bob.sync.prefetchReport().dropped > 0);
    assert.equal(bob.sync.prefetchReport().dropped, 0, JSON.stringify(bob.sync.prefetchReport().reasons));
    assert.equal(bob.index.getGlobal('moved'), undefined, 'the receiver has no record of the directory yet');
    assert.equal(await lstat(join(bob.root, 'moved')).catch(() => undefined), undefined, 'nothing is created before a record');
    assert.equal((await temps(bob.root)).length, 1, 'the temp file waits in the nearest directory there is');
    pool.letThrough();
    await scan;
    await converged([alice, bob]);
    const report = bob.sync.prefetchReport();
    assert.equal(report.bytesAdopted, size, 'every prefetched block adopted');
    assert.equal(bob.sync.stats.bytesRequested, 0, 'the puller fetched nothing again');
    const wire = responseBytesToBob();
    assert.ok(wire >= size && wire < size * 1.01, `bytes received ≈ file size (${wire} for ${size})`);
    assert.deepEqual(await temps(bob.root), []);
    assert.deepEqual(await temps(join(bob.root, 'moved', 'in')), []);
    assert.ok((await readFile(join(bob.root, 'moved', 'in', 'big.bin'))).equals(content));
  });

  test('a file changed while it was hashed ends correct on both: blocks fetched for the old attempt that still match are kept', async () => {
    const { alice, bob, pool } = await pair();
    const size = 24 * 1024 * 1024;
    const path = join(alice.root, 'changing.bin');
    await writeFile(path, randomBytes(size));
    pool.shut();
    const scan = alice.scan();
    await until(() => bob.sync.prefetchReport().bytesFetched >= size / 2);
    // Change the middle of the file (same size, new mtime) before the first hash may finish.
    const handle = await open(path, 'r+');
    await handle.write(randomBytes(1024 * 1024), 0, 1024 * 1024, 10 * 1024 * 1024);
    await handle.close();
    // The first hash ends (changed under it); the second is held until bob has fetched every block
    // once: what it fetched for the first attempt stays in its temp, only the rest comes now.
    pool.letThroughOnce();
    await until(() => pool.started >= 2 && bob.sync.prefetchReport().bytesFetched >= size);
    pool.letThrough();
    await scan;
    await converged([alice, bob]);
    const report = bob.sync.prefetchReport();
    assert.ok(report.bytesAdopted > 0, 'blocks of the second hash adopted');
    // The changed megabyte may come twice (once per attempt); nothing else does.
    assert.ok(report.bytesFetched <= size + 2 * 1024 * 1024, `prefetched ${report.bytesFetched} bytes of a ${size}-byte file over two attempts`);
    assert.ok(report.bytesAdopted + bob.sync.stats.bytesRequested + bob.sync.stats.bytesCopied <= size, 'no block fetched twice into the installed file');
    assert.deepEqual(await temps(bob.root), []);
  });

  test('a peer that connects while the file is hashed hears the hashes known so far', async () => {
    const { alice, bob, pool } = await devices();
    const size = 20 * 1024 * 1024;
    await writeFile(join(alice.root, 'late.bin'), randomBytes(size));
    const announced: number[] = [];
    const onHashing = alice.sync.hashing.bind(alice.sync);
    alice.sync.hashing = (event) => {
      announced.push(...event.blocks.map((_, i) => event.firstBlock + i));
      onHashing(event);
    };
    pool.shut();
    const scan = alice.scan();
    await until(() => announced.length === size / (128 * 1024));
    await connect(cleanups, alice, bob);
    await until(() => bob.sync.prefetchReport().bytesFetched === size);
    assert.equal(bob.index.getGlobal('late.bin'), undefined);
    pool.letThrough();
    await scan;
    await converged([alice, bob]);
    assert.equal(bob.sync.prefetchReport().bytesAdopted, size);
    assert.equal(bob.sync.stats.bytesRequested, 0);
  });

  test('once its record is indexed, a hashing attempt is not replayed to a peer that attaches later', async () => {
    const { alice, bob } = await devices();
    const size = 20 * 1024 * 1024;
    await writeFile(join(alice.root, 'done.bin'), randomBytes(size));
    await alice.scan();
    assert.ok(alice.index.getLocal('done.bin'), 'the record is in');
    // A link made now (a handover's new link, say): the record is all bob hears of the file.
    await connect(cleanups, alice, bob);
    await converged([alice, bob]);
    const report = bob.sync.prefetchReport();
    assert.equal(report.announcements, 0, JSON.stringify(report));
    assert.equal(report.bytesFetched, 0);
  });

  test("a hostile peer's announcements are bounded and dropped with a reason; nothing is installed without a record; the link stays", async () => {
    const keys = newFolder();
    const victim = await makeDevice(cleanups, { name: 'victim', keys });
    await victim.scan();
    const peer = await rawPeer(cleanups, victim, keys, 'mallory');
    // Every block mallory serves is garbage.
    const served: number[] = [];
    void (async () => {
      for await (const message of peer.conn) {
        if (message.type === 'Request') {
          served.push(message.offset);
          await peer.conn.send({ type: 'Response', id: message.id, data: randomBytes(message.size) }).catch(() => undefined);
        }
      }
    })().catch(() => undefined);
    const blockSize = 256 * 1024;
    const hashing = (path: string, fields: Record<string, unknown> = {}) =>
      peer.conn.send({ type: 'Hashing', folderId: keys.folderId, path, tag: randomBytes(16), size: 64 * blockSize, blockSize, firstBlock: 0, hashes: randomBytes(32 * 8), ...fields } as never);
    await hashing('../outside.bin');
    await hashing('/etc/passwd');
    await hashing('huge.bin', { hashes: randomBytes(32 * 1025) });
    await hashing('past.bin', { firstBlock: 60, hashes: randomBytes(32 * 8) });
    await hashing('.ferry/evil');
    await until(() => victim.sync.prefetchReport().dropped >= 5).catch((err) => assert.fail(`${err}: ${JSON.stringify(victim.sync.prefetchReport())}`));
    // Wrong hashes: three bad blocks drop the prefetch.
    await hashing('wrong.bin');
    await until(() => victim.sync.prefetchReport().reasons.some((r) => r.path === 'wrong.bin')).catch((err) =>
      assert.fail(`${err}: ${JSON.stringify(victim.sync.prefetchReport())} served ${served}`),
    );
    // At most PREFETCH_MAX_PER_PEER files from one peer at once (wrong.bin's slot is given back a moment after its reason is recorded).
    await until(() => victim.sync.prefetchReport().files === 0);
    for (let i = 0; i < PREFETCH_MAX_PER_PEER + 1; i++) await hashing(`many-${i}.bin`, { firstBlock: 63, hashes: randomBytes(32) });
    await until(() => victim.sync.prefetchReport().reasons.some((r) => /already prefetched/.test(r.reason))).catch((err) =>
      assert.fail(`${err}: ${JSON.stringify(victim.sync.prefetchReport())}`),
    );
    const report = victim.sync.prefetchReport();
    const reasons = new Map(report.reasons.map((r) => [r.path, r.reason]));
    assert.match(reasons.get('wrong.bin') ?? '', /failed their announced hash/);
    // Which one is refused depends on whether an earlier one has failed its hash by then: one of them is.
    assert.ok(report.reasons.some((r) => r.path.startsWith('many-') && /already prefetched/.test(r.reason)), JSON.stringify(report.reasons));
    assert.ok(report.dropped >= 7, JSON.stringify(report));
    assert.equal(report.files <= PREFETCH_MAX_PER_PEER, true);
    assert.equal(peer.victimConn.closed, false, 'advisory messages never close the link');
    // Nothing installed from an announcement, nothing written outside the folder.
    const names = (await readdir(victim.root)).filter((n) => n !== '.ferry' && !n.startsWith(TEMP_FILE_PREFIX));
    assert.deepEqual(names, []);
    await victim.sync.close();
    assert.deepEqual(await temps(victim.root), [], 'temps removed when the folder closes');
  });
});
