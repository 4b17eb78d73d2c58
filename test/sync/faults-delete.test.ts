// Faults injected under the receiving side's deletions and metadata (a FaultPlan as the device's FileIo):
// a deleted file's move into the archive, a deleted directory's rmdir, chmod and utimes. While the fault
// lasts nothing is lost (the file stays, or is in the archive), the folder is `stalled` naming the path
// and why, the pass is retried; once the fault ends both devices agree.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { FaultPlan, type FaultKind, type FaultOp } from '../helpers/fault-io.js';
import { connect, converged, makeDevice, newFolder, randomContent, runCleanups, until, type Cleanups, type Device } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

const KINDS = ['EIO', 'EACCES', 'ENOSPC', 'EBUSY'] as const;

const REASON: Record<(typeof KINDS)[number], RegExp> = {
  ENOSPC: /ENOSPC|disk is full/i,
  EIO: /EIO/,
  EACCES: /EACCES/,
  EBUSY: /EBUSY/,
};

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Content hashes of every file in the folder's archive. */
async function archivedContents(root: string): Promise<string[]> {
  const entries = await readdir(join(root, '.ferry/archive'), { recursive: true, withFileTypes: true }).catch(() => []);
  return Promise.all(entries.filter((entry) => entry.isFile()).map(async (entry) => sha(await readFile(join(entry.parentPath, entry.name)))));
}

async function exists(abs: string): Promise<boolean> {
  return lstat(abs).then(
    () => true,
    () => false,
  );
}

/** Alice and Bob share a folder with a few files (so one deletion is not a mass delete); Bob's I/O goes through `plan`. */
async function pair(plan: FaultPlan, files: Record<string, Buffer>): Promise<{ alice: Device; bob: Device }> {
  const keys = newFolder();
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys, io: plan.io });
  for (let n = 0; n < 3; n++) await writeFile(join(alice.root, `keep-${n}.txt`), `kept ${n}\n`);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(join(alice.root, rel, '..'), { recursive: true });
    await writeFile(join(alice.root, rel), content);
  }
  await alice.scan();
  await connect(cleanups, alice, bob);
  await converged([alice, bob], () => bob.sync.report().state === 'idle');
  return { alice, bob };
}

/** Waits until Bob has hit the fault at least twice (retried) and reports it: stalled, naming `path` and the errno. */
async function reportedStall(bob: Device, plan: FaultPlan, op: FaultOp, kind: FaultKind, path: RegExp, meanwhile: () => Promise<void>): Promise<void> {
  await until(async () => {
    await meanwhile();
    const report = bob.sync.report();
    return plan.count(op) >= 2 && report.state === 'stalled' && REASON[kind as keyof typeof REASON].test(report.stalledReason ?? '');
  }).catch((err: unknown) => {
    throw new Error(`failure not reported (${String(err)}): ${JSON.stringify({ report: bob.sync.report(), injected: plan.injected.slice(0, 3), count: plan.count() })}`, { cause: err });
  });
  assert.match(bob.sync.report().stalledReason ?? '', path);
}

describe('faults under deletions and metadata on the receiving side', () => {
  for (const kind of KINDS) {
    test(`${kind} moving a deleted file into the archive: the file stays, reported, retried, then archived`, async () => {
      const plan = new FaultPlan();
      const content = randomContent(200_000, 11);
      const { alice, bob } = await pair(plan, { 'sub/gone.bin': content });
      plan.inject({ op: 'rename', kind, path: /\.ferry\/archive\// });
      await rm(join(alice.root, 'sub/gone.bin'));
      await alice.scan();

      const bobFile = join(bob.root, 'sub/gone.bin');
      await reportedStall(bob, plan, 'rename', kind, /sub\/gone\.bin/, async () => {
        // Nothing lost at any moment: the file is at its name or in the archive.
        const here = await readFile(bobFile).then(sha, () => 'absent');
        assert.ok(here === sha(content) || (await archivedContents(bob.root)).includes(sha(content)), 'the deleted file is neither in place nor archived');
      });
      assert.deepEqual(await readFile(bobFile), content, 'the file stays while its archiving fails');

      plan.clear();
      await converged([alice, bob], () => bob.sync.report().state === 'idle');
      assert.equal(await exists(bobFile), false);
      assert.deepEqual((await archivedContents(bob.root)).filter((hash) => hash === sha(content)).length, 1, 'the deleted file is in the archive, once');
    });
  }

  for (const kind of KINDS) {
    test(`${kind} removing a deleted directory: its file is archived, the directory stays, reported, retried, then gone`, async () => {
      const plan = new FaultPlan();
      const content = randomContent(50_000, 12);
      const { alice, bob } = await pair(plan, { 'dir/inner.bin': content });
      plan.inject({ op: 'rmdir', kind, path: /\/dir$/ });
      await rm(join(alice.root, 'dir'), { recursive: true });
      await alice.scan();

      await reportedStall(bob, plan, 'rmdir', kind, /\bdir\b/, async () => {
        const here = await readFile(join(bob.root, 'dir/inner.bin')).then(sha, () => 'absent');
        assert.ok(here === sha(content) || (await archivedContents(bob.root)).includes(sha(content)), 'the deleted file is neither in place nor archived');
      });
      assert.equal((await stat(join(bob.root, 'dir'))).isDirectory(), true, 'the directory stays while its removal fails');
      assert.ok((await archivedContents(bob.root)).includes(sha(content)), 'the file inside is in the archive');

      plan.clear();
      await converged([alice, bob], () => bob.sync.report().state === 'idle');
      assert.equal(await exists(join(bob.root, 'dir')), false);
    });
  }

  for (const kind of ['EACCES', 'EIO', 'EBUSY'] as const) {
    test(`${kind} at chmod of a file whose mode changed: content intact, reported, retried, then the mode agrees`, async () => {
      const plan = new FaultPlan();
      const content = randomContent(30_000, 13);
      const { alice, bob } = await pair(plan, { 'mode.bin': content });
      assert.equal((await stat(join(bob.root, 'mode.bin'))).mode & 0o777, (await stat(join(alice.root, 'mode.bin'))).mode & 0o777);
      plan.inject({ op: 'chmod', kind, path: /\/mode\.bin$/ });
      await chmod(join(alice.root, 'mode.bin'), 0o600);
      await alice.scan();

      await reportedStall(bob, plan, 'chmod', kind, /mode\.bin/, async () => {
        assert.deepEqual(await readFile(join(bob.root, 'mode.bin')), content);
      });
      assert.notEqual((await stat(join(bob.root, 'mode.bin'))).mode & 0o777, 0o600);

      plan.clear();
      await converged([alice, bob], () => bob.sync.report().state === 'idle');
      assert.equal((await stat(join(bob.root, 'mode.bin'))).mode & 0o777, 0o600);
      assert.deepEqual(await readFile(join(bob.root, 'mode.bin')), content);
    });
  }

  for (const kind of ['EACCES', 'EIO'] as const) {
    test(`${kind} at chmod of a directory whose mode changed: reported, retried, then the mode agrees`, async () => {
      const plan = new FaultPlan();
      const { alice, bob } = await pair(plan, { 'locked/a.txt': Buffer.from('a\n') });
      plan.inject({ op: 'chmod', kind, path: /\/locked$/ });
      await chmod(join(alice.root, 'locked'), 0o750);
      await alice.scan();

      await reportedStall(bob, plan, 'chmod', kind, /locked/, async () => undefined);
      assert.notEqual((await stat(join(bob.root, 'locked'))).mode & 0o777, 0o750);

      plan.clear();
      await converged([alice, bob], () => bob.sync.report().state === 'idle');
      assert.equal((await stat(join(bob.root, 'locked'))).mode & 0o777, 0o750);
    });
  }

  for (const kind of ['EACCES', 'EIO'] as const) {
    test(`${kind} at utimes of a file whose mtime changed: content intact, reported, retried, then the mtime agrees`, async () => {
      const plan = new FaultPlan();
      const content = randomContent(30_000, 14);
      const { alice, bob } = await pair(plan, { 'time.bin': content });
      plan.inject({ op: 'utimes', kind, path: /\/time\.bin$/ });
      const when = new Date('2020-02-02T02:02:02.000Z');
      await utimes(join(alice.root, 'time.bin'), when, when);
      await alice.scan();

      await reportedStall(bob, plan, 'utimes', kind, /time\.bin/, async () => {
        assert.deepEqual(await readFile(join(bob.root, 'time.bin')), content);
      });
      assert.notEqual((await stat(join(bob.root, 'time.bin'))).mtimeMs, when.getTime());

      plan.clear();
      await until(async () => bob.sync.report().state === 'idle' && (await stat(join(bob.root, 'time.bin'))).mtimeMs === when.getTime());
      assert.deepEqual(await readFile(join(bob.root, 'time.bin')), content);
    });
  }
});
