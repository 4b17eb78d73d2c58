// Real daemons on loopback: a sync with many blocks in flight (a large file of repeated blocks, copied locally,
// beside many small files) logs no listener-leak warning and no stack trace (issue 21).

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';

const SMALL_FILES = 300;
let base: string | undefined;
const daemons: DaemonProcess[] = [];

after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  if (base) await removeDir(base);
});

test('a sync with every block budget full logs no MaxListenersExceededWarning and no stack', async () => {
  base = await tempDir('quiet-sync');
  const a = new DaemonProcess(join(base, 'home-a'), [], { NODE_OPTIONS: '--trace-warnings' });
  const b = new DaemonProcess(join(base, 'home-b'), [], { NODE_OPTIONS: '--trace-warnings' });
  daemons.push(a, b);
  await Promise.all([a.ready(), b.ready()]);
  const dirA = join(base, 'a');
  await mkdir(dirA);
  for (let i = 0; i < SMALL_FILES; i++) await writeFile(join(dirA, `f${i}.bin`), Buffer.alloc(20_000 + i, i));
  // Every block the same: B fetches one and copies the rest locally, all of them in flight at once.
  await writeFile(join(dirA, 'big.bin'), Buffer.alloc(64 * 1024 * 1024, 7));
  const shared = await ferry(['share', dirA, '--json', '--home', a.home]);
  assert.equal(shared.code, 0, shared.stderr);
  const joined = await ferry(['join', JSON.parse(shared.stdout).rw, join(base, 'b'), '--home', b.home]);
  assert.equal(joined.code, 0, joined.stderr);
  const added = await ferry(['peers', 'add', ((await a.status()) as StatusJson & { listen: string }).listen, '--home', b.home]);
  assert.equal(added.code, 0, added.stderr);
  await waitFor(async () => {
    const folder = (await b.status()).folders[0];
    return folder?.localFiles === SMALL_FILES + 1 && folder.needFiles === 0;
  }, 'B to have every file', 120_000);
  for (const daemon of [a, b]) {
    assert.doesNotMatch(daemon.log, /MaxListenersExceededWarning/, daemon.home);
    assert.doesNotMatch(daemon.log, /^\s+at /m, daemon.home);
  }
});
