// A full data disk: the folder says its disk is full (not "no connected peer could supply block") and is not idle (issue 25, low).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { listenAddress } from './hostile-peer.js';

const run = promisify(execFile);

function skipReason(): string | false {
  if (process.getuid?.() === 0) return false;
  if (process.env.CI) throw new Error('CI: this test needs root to mount a tmpfs as a full data disk');
  return 'needs root (mounts a 1 MiB tmpfs as the folder)';
}

describe('data disk full', { skip: skipReason() }, () => {
  let base: string;
  let mount: string;
  let mounted = false;
  const daemons: DaemonProcess[] = [];

  before(async () => {
    base = await tempDir('sec-datafull');
    mount = join(base, 'b');
    await mkdir(mount);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
    mounted = true;
  });

  after(async () => {
    await Promise.all(daemons.map((daemon) => daemon.stop()));
    if (mounted) await run('umount', [mount]).catch(() => run('umount', ['-l', mount]));
    await removeDir(base);
  });

  test('a file larger than the receiving disk: the folder reports a full disk and is not idle', async () => {
    const a = new DaemonProcess(join(base, 'home-a'));
    const b = new DaemonProcess(join(base, 'home-b'));
    daemons.push(a, b);
    await Promise.all([a.ready(), b.ready()]);
    const dirA = join(base, 'a');
    await mkdir(dirA);
    await writeFile(join(dirA, 'big.bin'), Buffer.alloc(4 * 1024 * 1024, 7));
    const shared = await ferry(['share', dirA, '--json', '--home', a.home]);
    assert.equal(shared.code, 0, shared.stderr);
    await waitFor(async () => (await a.status()).folders[0]?.localFiles === 1 || undefined, 'a to index the file');
    const joined = await ferry(['join', (JSON.parse(shared.stdout) as { rw: string }).rw, mount, '--home', b.home]);
    assert.equal(joined.code, 0, joined.stderr);
    const added = await ferry(['peers', 'add', await listenAddress(a), '--home', b.home]);
    assert.equal(added.code, 0, added.stderr);
    const folder = await waitFor(async () => {
      const f = (await b.status()).folders[0] as { state: string; stalledReason?: string; error?: string } | undefined;
      return f && /disk is full/.test(`${f.stalledReason ?? ''} ${f.error ?? ''}`) ? f : undefined;
    }, 'the folder to report its full disk', 60_000);
    assert.notEqual(folder.state, 'idle');
    assert.doesNotMatch(`${folder.stalledReason ?? ''} ${folder.error ?? ''}`, /no connected peer could supply/);
    assert.equal(b.child.exitCode, null);
  });
});
