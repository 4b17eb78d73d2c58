// The scanner's transactions: how many per scan, and the walk going on while one commits (issue 26, the 100k-file scan).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HashPool } from '../../src/scan/hash-pool.js';
import { batchDue, SCAN_BATCH_BYTES, SCAN_BATCH_MAX_RECORDS, SCAN_BATCH_RECORDS, Scanner } from '../../src/scan/scanner.js';
import type { FileRecord } from '../../src/index/records.js';
import type { LocalStat, NewFileRecord } from '../../src/index/types.js';
import { makeTempDir, MemoryFolderIndex, runCleanups } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
let pool: HashPool;

before(async () => {
  pool = new HashPool({ workers: 1 });
  await pool.open();
});
after(async () => {
  await pool.close();
  await runCleanups(cleanups);
});

/** Empty files (no hashing) in `dirs` directories: `dirs` + `files` entries. */
async function tree(dirs: number, files: number): Promise<string> {
  const root = await makeTempDir(cleanups, 'ferry-scan-commits-');
  for (let d = 0; d < dirs; d++) await mkdir(join(root, `d${d}`));
  for (let i = 0; i < files; i++) await writeFile(join(root, `d${i % dirs}`, `f${i}`), '');
  return root;
}

/**
 * Holds each of the first `held` transactions until the walk has looked `ahead` more entries up (or the
 * scan cannot go on: `stalled` counted by the fallback timer, which only ends a test that fails).
 */
class SlowCommitIndex extends MemoryFolderIndex {
  looked = 0;
  stalled = 0;
  /** Most entries looked up beyond those stored. */
  maxAhead = 0;
  /** Records per transaction, in order. */
  readonly sizes: number[] = [];
  private stored = 0;
  private calls = 0;
  private waiter: { at: number; wake: () => void } | null = null;

  constructor(
    private readonly ahead: number,
    private readonly held: number,
  ) {
    super();
  }

  override getLocalStat(path: string): LocalStat | undefined {
    this.looked++;
    this.maxAhead = Math.max(this.maxAhead, this.looked - this.stored);
    if (this.waiter && this.looked >= this.waiter.at) this.waiter.wake();
    return super.getLocalStat(path);
  }

  override async putLocal(records: NewFileRecord[]): Promise<FileRecord[]> {
    this.sizes.push(records.length);
    if (++this.calls <= this.held) await this.hold();
    const stored = await super.putLocal(records);
    this.stored += records.length;
    return stored;
  }

  private hold(): Promise<void> {
    return new Promise<void>((resolve) => {
      const fallback = setTimeout(() => {
        this.stalled++;
        wake();
      }, 5_000);
      const wake = (): void => {
        clearTimeout(fallback);
        this.waiter = null;
        resolve();
      };
      this.waiter = { at: this.looked + this.ahead, wake };
    });
  }
}

test('the walk goes on while a batch commits, one transaction at a time and at most two batches held', async () => {
  const files = 3 * SCAN_BATCH_RECORDS - 100;
  const root = await tree(4, files);
  // The first two transactions (those of the walk) commit only once the walk is half a batch further:
  // before, the walk waited for each.
  const index = new SlowCommitIndex(SCAN_BATCH_RECORDS / 2, 2);
  const result = await new Scanner({ root, index, deviceShortId: 'DEVAAAA', pool }).scan();
  assert.equal(index.stalled, 0, 'the walk stood still while a transaction committed');
  assert.equal(result.changed, files + 4);
  assert.equal(index.putLocalCalls, 3, 'one transaction per SCAN_BATCH_RECORDS entries');
  // Bounded: the batch being committed and the one being filled (plus the entry that fills it).
  assert.ok(index.maxAhead <= 2 * SCAN_BATCH_RECORDS + 1, `looked ${index.maxAhead} entries past those stored`);
  // In order: the sequences follow the walk's batches, every record stored once.
  const records = [...index.localRecords()];
  assert.equal(records.length, files + 4);
  assert.equal(new Set(records.map((r) => r.sequence)).size, files + 4);
});

test('a transaction that fails fails the scan, after the walk', async () => {
  const root = await tree(2, SCAN_BATCH_RECORDS + 10);
  const index = new (class extends MemoryFolderIndex {
    override async putLocal(records: NewFileRecord[]): Promise<FileRecord[]> {
      if (this.putLocalCalls === 0) {
        this.putLocalCalls++;
        throw new Error('disk full');
      }
      return super.putLocal(records);
    }
  })();
  await assert.rejects(new Scanner({ root, index, deviceShortId: 'DEVAAAA', pool }).scan(), /disk full/);
  assert.equal(index.putLocalCalls, 1, 'no transaction after the failed one');
});

test('while a transaction commits the next batch grows (one fdatasync for more records), up to SCAN_BATCH_MAX_RECORDS', async () => {
  const files = 3 * SCAN_BATCH_RECORDS - 100;
  const root = await tree(4, files);
  // The first transaction commits only once the walk is a batch and a half further.
  const index = new SlowCommitIndex(1.5 * SCAN_BATCH_RECORDS, 1);
  const result = await new Scanner({ root, index, deviceShortId: 'DEVAAAA', pool }).scan();
  assert.equal(index.stalled, 0);
  assert.equal(result.changed, files + 4);
  assert.equal(index.sizes.length, 3, `transactions of ${index.sizes.join(', ')} records`);
  assert.equal(index.sizes[0], SCAN_BATCH_RECORDS);
  // Not cut at SCAN_BATCH_RECORDS while the first one was held: it took what the walk found meanwhile.
  assert.ok(index.sizes[1]! >= 1.5 * SCAN_BATCH_RECORDS, `second transaction of ${index.sizes[1]} records`);
  assert.equal(index.sizes.reduce((a, b) => a + b, 0), files + 4);
});

test('when a batch is due: at SCAN_BATCH_RECORDS, or SCAN_BATCH_MAX_RECORDS while one commits; the hashed bytes always', () => {
  assert.equal(batchDue(SCAN_BATCH_RECORDS - 1, 0, 0), false);
  assert.equal(batchDue(SCAN_BATCH_RECORDS, 0, 0), true);
  assert.equal(batchDue(SCAN_BATCH_RECORDS, 0, 1), false);
  assert.equal(batchDue(SCAN_BATCH_MAX_RECORDS - 1, 0, 1), false);
  assert.equal(batchDue(SCAN_BATCH_MAX_RECORDS, 0, 1), true);
  assert.equal(batchDue(1, SCAN_BATCH_BYTES, 1), true);
});

/** Counts the local paths the scanner reads back from the index (its deletion pass). */
class PathCountingIndex extends MemoryFolderIndex {
  pathsRead = 0;
  override *localPaths(options: { under?: string } = {}): Iterable<string> {
    for (const path of super.localPaths(options)) {
      this.pathsRead++;
      yield path;
    }
  }
}

test('a first scan (no record under the subtree yet) reads no path back for deletions; a rescan still finds them', async () => {
  const root = await tree(2, 50);
  const index = new PathCountingIndex();
  const scanner = new Scanner({ root, index, deviceShortId: 'DEVAAAA', pool });
  const first = await scanner.scan();
  assert.equal(first.changed, 52);
  assert.equal(index.pathsRead, 0, 'the deletion pass ran over what this scan had just written');
  // A new directory scanned on its own is fresh too; the folder as a whole is not.
  await mkdir(join(root, 'new'));
  await writeFile(join(root, 'new', 'x'), '');
  assert.equal((await scanner.scan({ under: 'new' })).changed, 2);
  assert.equal(index.pathsRead, 0);
  // A rescan reads the indexed paths back, and deletions are still found.
  await rm(join(root, 'd0', 'f0'));
  const rescan = await scanner.scan();
  assert.equal(rescan.deleted, 1);
  assert.ok(index.pathsRead >= 55, `read ${index.pathsRead} paths`);
});
