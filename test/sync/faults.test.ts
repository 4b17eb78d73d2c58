// Faults injected under the puller's file I/O (a FaultPlan as the device's FileIo): ENOSPC, EIO and
// short writes at each step of a transfer and an install. Nothing half-written is ever under a final
// name, the failure is reported in the folder's status, and once the fault ends both devices agree.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { FaultPlan, type FaultKind, type FaultRule } from '../helpers/fault-io.js';
import { connect, converged, makeDevice, newFolder, randomContent, runCleanups, until, type Cleanups, type Device } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

/** Three blocks (128 KiB each, the last short): written in pieces, fsynced (not O_DSYNC) before install. */
const SIZE = 3 * 128 * 1024 - 1000;

const TEMP = /\.ferry-tmp-/;

const REASON: Record<FaultKind, RegExp> = {
  ENOSPC: /ENOSPC|disk is full/i,
  EIO: /EIO|i\/o error/i,
  EPERM: /EPERM/,
  EACCES: /EACCES/,
  EBUSY: /EBUSY/,
  ENOENT: /ENOENT/,
  short: /short write/i,
};

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The file's content hash under its final name, or 'absent'. */
async function contentAt(abs: string): Promise<string> {
  try {
    return sha(await readFile(abs));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
}

/** Content hashes of every file in the folder's archive. */
async function archivedContents(root: string): Promise<string[]> {
  const entries = await readdir(join(root, '.ferry/archive'), { recursive: true, withFileTypes: true }).catch(() => []);
  return Promise.all(entries.filter((entry) => entry.isFile()).map(async (entry) => sha(await readFile(join(entry.parentPath, entry.name)))));
}

interface Step {
  name: string;
  rule: Omit<FaultRule, 'kind'>;
  /** Faults that hold throughout (a volume without hard links, say). */
  also?: FaultRule[];
  /** The file's size (default SIZE). */
  size?: number;
  /** The new version's content is another file's already here: its blocks are copied locally, not fetched. */
  local?: boolean;
  /** The file is new, in a directory the puller must create (else it replaces an older version). */
  fresh?: boolean;
}

const STEPS: Step[] = [
  { name: 'temp open', rule: { op: 'open', path: TEMP } },
  { name: 'temp write', rule: { op: 'write', path: TEMP } },
  { name: 'temp fsync', rule: { op: 'fsync', path: TEMP } },
  { name: 'rename into place', rule: { op: 'rename', path: TEMP } },
  { name: "the temp file's chmod before install", rule: { op: 'chmod', path: TEMP } },
  { name: "the temp file's utimes before install", rule: { op: 'utimes', path: TEMP } },
  { name: 'archive of the replaced file', rule: { op: 'link', path: /\.ferry\/archive\// } },
  {
    name: 'archive of the replaced file on a volume without hard links',
    rule: { op: 'rename', path: /\.ferry\/archive\// },
    also: [{ op: 'link', kind: 'EPERM' }],
  },
  { name: 'temp write of a large file (direct writes where the volume allows)', rule: { op: 'write', path: TEMP }, size: 3 * 1024 * 1024 + 7 },
  { name: 'temp write of blocks copied from a local file', rule: { op: 'write', path: TEMP }, local: true },
  { name: 'mkdir of a parent', rule: { op: 'mkdir', path: /\/new-dir$/ }, fresh: true },
  // A small file (one block): created and written on the main thread, fdatasynced with its install batch.
  { name: 'temp open of a small file', rule: { op: 'open', path: TEMP }, size: 4096 },
  { name: 'temp write of a small file', rule: { op: 'write', path: TEMP }, size: 4096 },
  { name: 'fdatasync of a small file before its rename', rule: { op: 'fdatasync', path: TEMP }, size: 4096 },
];

async function pair(plan: FaultPlan): Promise<{ alice: Device; bob: Device }> {
  const keys = newFolder();
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys, io: plan.io });
  await connect(cleanups, alice, bob);
  return { alice, bob };
}

async function faultCase(step: Step, kind: FaultKind): Promise<void> {
  const plan = new FaultPlan();
  for (const rule of step.also ?? []) plan.inject(rule);
  const { alice, bob } = await pair(plan);
  const rel = step.fresh ? 'new-dir/f.bin' : 'f.bin';
  const oldContent = randomContent(step.size ?? SIZE, 1);
  const newContent = randomContent(step.size ?? SIZE, 2);
  if (step.local) await writeFile(join(alice.root, 'source.bin'), newContent);
  if (!step.fresh) {
    await writeFile(join(alice.root, rel), oldContent);
    await alice.scan();
    await converged([alice, bob]);
  }
  const allowed = new Set([sha(newContent), step.fresh ? 'absent' : sha(oldContent)]);
  const seen = new Set<string>();
  const watch = async (): Promise<void> => {
    const now = await contentAt(join(bob.root, rel));
    seen.add(now);
    assert.ok(allowed.has(now), `${rel} under its final name is neither the old nor the new version (${now.slice(0, 12)})`);
  };

  plan.inject({ ...step.rule, kind });
  if (step.fresh) await mkdir(join(alice.root, 'new-dir'));
  await writeFile(join(alice.root, rel), newContent);
  await alice.scan();

  // The failure is reported (the folder's status names the path and why), and retried meanwhile.
  await until(async () => {
    await watch();
    const report = bob.sync.report();
    return plan.count(step.rule.op) >= 2 && report.state === 'stalled' && REASON[kind].test(report.stalledReason ?? '');
  }).catch((err: unknown) => {
    throw new Error(`failure not reported (${String(err)}): ${JSON.stringify({ report: bob.sync.report(), injected: plan.injected.slice(0, 3), count: plan.count() })}`, { cause: err });
  });
  const report = bob.sync.report();
  assert.match(report.stalledReason ?? '', step.fresh ? /new-dir/ : /f\.bin/);
  assert.equal(report.needFiles > 0, true);
  assert.equal(await contentAt(join(bob.root, rel)), step.fresh ? 'absent' : sha(oldContent), 'the old version stays while the fault lasts');

  // The fault ends: the folder finishes on its own retries, byte for byte.
  plan.clear();
  for (const rule of step.also ?? []) plan.inject(rule);
  await converged([alice, bob], async () => {
    await watch();
    const after = bob.sync.report();
    return after.state === 'idle' && after.needFiles === 0;
  });
  assert.deepEqual(await readFile(join(bob.root, rel)), newContent);
  if (step.local) {
    assert.ok(bob.sync.stats.blocksCopied > 0, 'blocks were copied from the local file');
    assert.equal(bob.sync.stats.bytesRequested, 2 * SIZE, 'only the source and the first version were fetched');
  }
  if (!step.fresh) {
    const kept = (await archivedContents(bob.root)).filter((hash) => hash === sha(oldContent));
    assert.equal(kept.length, 1, 'the replaced version is in the archive, once (however many retries)');
  }
  assert.ok([...seen].every((hash) => allowed.has(hash)));
}

describe('faults under the file I/O', () => {
  for (const step of STEPS) {
    for (const kind of ['ENOSPC', 'EIO'] as const) {
      test(`${kind} at ${step.name}: nothing half-written, reported, resumed`, () => faultCase(step, kind));
    }
  }
  for (const step of STEPS.filter((s) => s.rule.op === 'write')) {
    test(`short write at ${step.name}: nothing half-written, reported, resumed`, () => faultCase(step, 'short'));
  }

  for (const [op, kind] of [['symlink', 'ENOSPC'], ['rename', 'EIO']] as const) {
    test(`${kind} at the ${op} of a symlink's new target: the old link stays, reported, resumed`, async () => {
      const plan = new FaultPlan();
      const { alice, bob } = await pair(plan);
      await symlink('old-target', join(alice.root, 'link'));
      await alice.scan();
      await converged([alice, bob]);
      plan.inject({ op, kind, path: TEMP });
      await rm(join(alice.root, 'link'));
      await symlink('new-target', join(alice.root, 'link'));
      await alice.scan();
      await until(async () => {
        assert.match(await readlink(join(bob.root, 'link')), /^(old|new)-target$/);
        const report = bob.sync.report();
        return plan.count(op) >= 2 && report.state === 'stalled' && REASON[kind].test(report.stalledReason ?? '');
      });
      assert.equal(await readlink(join(bob.root, 'link')), 'old-target');
      plan.clear();
      await converged([alice, bob], () => bob.sync.report().state === 'idle');
      assert.equal(await readlink(join(bob.root, 'link')), 'new-target');
    });
  }

  test('a fault on the Nth call only: that call fails, the retry succeeds', async () => {
    const plan = new FaultPlan();
    const { alice, bob } = await pair(plan);
    plan.inject({ op: 'write', path: TEMP, kind: 'ENOSPC', nth: 1 });
    const content = randomContent(SIZE, 3);
    await writeFile(join(alice.root, 'g.bin'), content);
    await alice.scan();
    await converged([alice, bob], () => bob.sync.report().state === 'idle');
    assert.equal(plan.count('write'), 1);
    assert.deepEqual(await readFile(join(bob.root, 'g.bin')), content);
  });
});
