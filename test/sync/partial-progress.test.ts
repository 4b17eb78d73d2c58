// Status counts a file in progress: its bytes already in the temp file (partialBytes), and the files being fetched (issue 21).

import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RateLimiter, type RateClock } from '../../src/sync/rate-limit.js';
import { connect, converged, makeDevice, newFolder, randomContent, runCleanups, until, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

const MIB = 1024 * 1024;

/** Time stands still: a limiter on it grants its first second's burst and nothing more until its rate changes. */
const frozenClock: RateClock = {
  now: () => 0,
  sleep: (_ms, signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('woken')), { once: true })),
};

test('a large file part-way: partialBytes counts what is in its temp file, filesInProgress the file; both 0 once done', async () => {
  const keys = newFolder();
  const download = new RateLimiter(MIB, frozenClock);
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  // Requests of at most 512 KiB: the burst lets exactly two through.
  const bob = await makeDevice(cleanups, { name: 'bob', keys, rates: { download }, limits: { peerBytesInFlight: 512 * 1024 } });
  const big = randomContent(3 * MIB, 11);
  await writeFile(join(alice.root, 'big.bin'), big);
  await alice.scan();
  await connect(cleanups, alice, bob);
  await until(() => bob.sync.report().partialBytes >= MIB);
  const halfway = bob.sync.report();
  assert.equal(halfway.partialBytes, MIB);
  assert.equal(halfway.filesInProgress, 1);
  assert.equal(halfway.needFiles, 1);
  assert.equal(halfway.needBytes, 3 * MIB, 'needBytes stays what is not installed yet');

  download.setRate(0);
  await converged([alice, bob]);
  assert.deepEqual(await readFile(join(bob.root, 'big.bin')), big);
  // The file is installed before its fetch job ends: wait for the job to count as done.
  await until(() => bob.sync.report().filesInProgress === 0);
  assert.equal(bob.sync.report().partialBytes, 0);
});
