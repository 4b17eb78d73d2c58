// Staggered versions and the archive's size cap (issue 23), on a real archive with a simulated clock (never slept).

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../../src/sync/archive.js';
import { checkArchivePolicy } from '../../src/sync/archive-policy.js';
import { silentLogger } from '../../src/util/log.js';
import { runCleanups, tempDir, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START = Date.UTC(2026, 0, 1);

describe('archive policy', () => {
  test('staggered: 200 edits over 60 simulated days leave exactly the versions the policy names', async () => {
    const root = await tempDir(cleanups);
    let now = START;
    const archive = new Archive(root, silentLogger, () => now);
    // Edit i archives the version before it at START + i × 7.2 h (i = 0…199: 59.7 days).
    const at = (i: number): number => START + i * 7.2 * HOUR;
    for (let i = 0; i < 200; i++) {
      now = at(i);
      await writeFile(join(root, 'doc.txt'), `version ${i}\n`);
      assert.ok(await archive.keep('doc.txt'));
    }
    now = at(199) + HOUR / 2;
    const plan = await archive.purgeWith({ kind: 'staggered', maxAgeDays: 40 });
    // By hand, ages counted from now (edit i is 0.5 h + (199 − i) × 7.2 h old):
    //  - older than 40 days (960 h): i < 66, removed;
    //  - 30 to 40 days (one per week): 66, the oldest, then 90 (the first at least 168 h after it);
    //  - 1 to 30 days (one per day): 100 (first ≥ 24 h after 90), then every 4th edit (28.8 h; 3 edits are 21.6 h) to 192;
    //  - under a day (one per hour: edits are 7.2 h apart, all kept) and the first hour (all): 196 … 199.
    const expected = [66, 90];
    for (let i = 100; i <= 192; i += 4) expected.push(i);
    expected.push(196, 197, 198, 199);
    const kept = (await archive.versions('doc.txt')).map((v) => v.archivedAtMs).sort((a, b) => a - b);
    assert.deepEqual(kept.map((ms) => Math.round((ms - START) / (7.2 * HOUR))), expected);
    assert.equal(plan.keptFiles, expected.length);
    assert.equal(plan.remove.length, 200 - expected.length);
    // The content of a kept version is that edit's.
    const v100 = (await archive.versions('doc.txt')).find((v) => v.archivedAtMs === at(100))!;
    assert.equal(await readFile(join(archive.root, v100.archivePath), 'utf8'), 'version 100\n');
    // A purge later on the same clock changes nothing; a week later the oldest go.
    assert.equal((await archive.purgeWith({ kind: 'staggered', maxAgeDays: 40 })).remove.length, 0);
    now += 7 * DAY;
    const later = await archive.purgeWith({ kind: 'staggered', maxAgeDays: 40 });
    assert.ok(later.remove.some((f) => f.archivedAtMs === at(66)), 'past 40 days now');
  });

  test('the size cap removes the oldest first (for days and staggered policies); plan shows what a purge would free', async () => {
    for (const policy of [{ kind: 'days', days: 30, maxArchiveBytes: 550 }, { kind: 'staggered', maxAgeDays: 30, maxArchiveBytes: 550 }] as const) {
      const root = await tempDir(cleanups);
      let now = START;
      const archive = new Archive(root, silentLogger, () => now);
      // Ten files of 100 bytes, archived a day apart, different paths (staggering keeps one version of each).
      for (let i = 0; i < 10; i++) {
        now = START + i * DAY;
        await writeFile(join(root, `f${i}.bin`), Buffer.alloc(100, i));
        await archive.keep(`f${i}.bin`);
      }
      now = START + 10 * DAY;
      const preview = await archive.plan(policy);
      assert.equal(preview.freedBytes, 500, policy.kind);
      assert.equal(preview.keptBytes, 500);
      assert.equal((await archive.versions('f0.bin')).length, 1, 'plan changes nothing');
      await archive.purgeWith(policy);
      const left: string[] = [];
      for await (const file of archive.list()) left.push(file.path);
      assert.deepEqual(left.sort(), ['f5.bin', 'f6.bin', 'f7.bin', 'f8.bin', 'f9.bin'], policy.kind);
    }
  });

  test('days policy keeps what is younger than N days, as the purge by days did', async () => {
    const root = await tempDir(cleanups);
    let now = START;
    const archive = new Archive(root, silentLogger, () => now);
    for (let i = 0; i < 5; i++) {
      now = START + i * DAY;
      await writeFile(join(root, 'a.txt'), `${i}`);
      await archive.keep('a.txt');
    }
    now = START + 4 * DAY;
    await archive.purgeWith({ kind: 'days', days: 2 });
    assert.deepEqual((await archive.versions('a.txt')).map((v) => (v.archivedAtMs - START) / DAY), [4, 3, 2]);
  });

  test('policies are checked', () => {
    assert.deepEqual(checkArchivePolicy({ kind: 'staggered', maxAgeDays: 365, maxArchiveBytes: 0 }), { kind: 'staggered', maxAgeDays: 365 });
    for (const bad of [null, {}, { kind: 'weekly' }, { kind: 'days', days: -1 }, { kind: 'staggered', maxAgeDays: 10, maxArchiveBytes: 1.5 }]) {
      assert.throws(() => checkArchivePolicy(bad), { code: 'USAGE' });
    }
  });
});
