// Where the walk's lstat calls run (issue 26, the 100k-file scan): on the event loop while they answer at once, on the
// thread pool after one waited (the disk), and the same entries either way.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, type Stats } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ASYNC_BATCHES_AFTER_SLOW, SYNC_LSTAT_SLOW_MS, walk, type WalkEntry, type WalkOptions } from '../../src/scan/walker.js';
import { NODE_FILE_READS, type FileReads } from '../../src/util/file-io.js';
import { FaultPlan } from '../helpers/fault-io.js';
import { makeTempDir, runCleanups } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
after(() => runCleanups(cleanups));

const DIRS = 4;
const FILES_PER_DIR = 100;

async function tree(): Promise<string> {
  const root = await makeTempDir(cleanups, 'ferry-walk-lstat-');
  for (let d = 0; d < DIRS; d++) {
    await mkdir(join(root, `d${d}`));
    for (let f = 0; f < FILES_PER_DIR; f++) await writeFile(join(root, `d${d}`, `f${f}`), `${d}/${f}`);
  }
  return root;
}

/**
 * node:fs reads that count where each lstat ran, and a clock for the walk that moves only when `slowSync(n)` says the
 * n-th synchronous call took longer than the limit (as one that read the disk would).
 */
function countingReads(slowSync: (n: number) => boolean = () => false): { reads: FileReads; clock: () => number; sync: number; pooled: number } {
  let now = 0;
  const counted = {
    sync: 0,
    pooled: 0,
    clock: () => now,
    reads: {
      opendir: NODE_FILE_READS.opendir,
      readlink: NODE_FILE_READS.readlink,
      lstat(path: string): Promise<Stats> {
        counted.pooled++;
        return NODE_FILE_READS.lstat(path);
      },
      lstatSync(path: string): Stats {
        counted.sync++;
        if (slowSync(counted.sync)) now += 2 * SYNC_LSTAT_SLOW_MS;
        return lstatSync(path);
      },
    } satisfies FileReads,
  };
  return counted;
}

async function entries(root: string, options: WalkOptions = {}): Promise<WalkEntry[]> {
  const found: WalkEntry[] = [];
  for await (const entry of walk(root, options)) found.push(entry);
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

test('with the inodes cached, every lstat of the walk runs on the event loop: no thread-pool round trip per entry', async () => {
  const root = await tree();
  const counted = countingReads();
  const found = await entries(root, { reads: counted.reads, clock: counted.clock });
  assert.equal(found.length, DIRS + DIRS * FILES_PER_DIR);
  assert.equal(counted.pooled, 0);
  assert.equal(counted.sync, DIRS + DIRS * FILES_PER_DIR);
  // The same entries as a walk on the thread pool alone.
  const pooledOnly: FileReads = { opendir: NODE_FILE_READS.opendir, lstat: NODE_FILE_READS.lstat, readlink: NODE_FILE_READS.readlink };
  assert.deepEqual(found, await entries(root, { reads: pooledOnly }));
});

test('after a slow synchronous lstat the rest of its batch and the next batches go to the thread pool, then the event loop again', async () => {
  const root = await tree();
  // The 10th synchronous call is slow: it is in the first directory's first batch of 32 names.
  const counted = countingReads((n) => n === 10);
  const found = await entries(root, { reads: counted.reads, clock: counted.clock });
  assert.equal(found.length, DIRS + DIRS * FILES_PER_DIR);
  const total = DIRS + DIRS * FILES_PER_DIR;
  assert.equal(counted.sync + counted.pooled, total);
  // Calls 1-4 are the root's four directories; 5-36 the first directory's first batch of 32 names, where the 10th
  // call is the 6th name: its 26 others go to the pool, then the next ASYNC_BATCHES_AFTER_SLOW (8) batches (the
  // rest of that directory: 32, 32, 4; the next: 32, 32, 32, 4; the next: 32), then the walk is back on the event loop.
  assert.equal(ASYNC_BATCHES_AFTER_SLOW, 8);
  const expected = 26 + (32 + 32 + 4) + (32 + 32 + 32 + 4) + 32;
  assert.equal(counted.pooled, expected);
  assert.equal(counted.sync, total - expected);
});

test('a fault on a synchronous lstat is reported like one on the thread pool: the entry is skipped, the walk goes on', async () => {
  const root = await tree();
  const plan = new FaultPlan();
  plan.inject({ op: 'lstat', kind: 'EIO', path: /\/d1\/f7$/ });
  const errors: string[] = [];
  const found: string[] = [];
  for await (const entry of walk(root, { reads: plan.reads, onError: (path) => errors.push(path) })) found.push(entry.path);
  assert.deepEqual(errors, ['d1/f7']);
  assert.equal(found.length, DIRS + DIRS * FILES_PER_DIR - 1);
  assert.equal(typeof plan.reads.lstatSync, 'function', 'the fault plan wraps the synchronous lstat too');
});
