// End to end: `ferry run` as a child process on a temporary home, driven through the CLI.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile, stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/cli/client.js';
import type { StatusReport } from '../../src/web/daemon-api.js';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';

describe('ferry CLI against a running daemon', () => {
  let base: string;
  let home: string;
  let daemon: DaemonProcess;

  before(async () => {
    base = await tempDir('cli');
    home = join(base, 'home');
    daemon = new DaemonProcess(home);
    await daemon.ready();
  });

  after(async () => {
    await daemon?.stop();
    await removeDir(base);
  });

  test('a wait that times out shows the end of the running daemons\' logs', async () => {
    await assert.rejects(
      waitFor(async () => false, 'something that never happens', 200),
      (err: Error) => err.message.startsWith('timed out waiting for something that never happens') && err.message.includes(`--- daemon ${home}, last 40 log lines ---`) && err.message.includes(`ferry: running on home ${home}`),
    );
  });

  test('share indexes the folder and prints three keys that name the same folder', async () => {
    const photos = join(base, 'photos');
    await mkdir(join(photos, 'trip', 'day1'), { recursive: true });
    await writeFile(join(photos, 'a.txt'), 'alpha');
    await writeFile(join(photos, 'trip', 'day1', 'b.bin'), Buffer.alloc(300_000, 7));
    await writeFile(join(photos, 'Thumbs.db'), 'litter');

    const shared = await ferry(['share', photos, '--json', '--home', home]);
    assert.equal(shared.code, 0, shared.stderr);
    const keys = JSON.parse(shared.stdout) as { folderId: string; rw: string; ro: string; enc: string };
    assert.match(keys.folderId, /^[0-9a-f]{40}$/);
    assert.match(keys.rw, /^A[A-Z2-7]+$/);
    assert.match(keys.ro, /^B[A-Z2-7]+$/);
    assert.match(keys.enc, /^E[A-Z2-7]+$/);

    const folder = await waitFor(async () => {
      const f = (await daemon.status()).folders.find((x) => x.id === keys.folderId);
      return f && f.state === 'idle' && f.localFiles === 2 ? f : undefined;
    }, 'the first scan');
    assert.equal(folder.access, 'rw');
    assert.equal(folder.globalFiles, 2);
    assert.equal(folder.needFiles, 0);
    assert.equal(folder.localBytes, 5 + 300_000);
    assert.ok(existsSync(join(photos, '.ferry')), 'folder marker created');

    // keys by path and by ID give the same keys
    const byPath = await ferry(['keys', photos, '--json', '--home', home]);
    const byId = await ferry(['keys', keys.folderId, '--json', '--home', home]);
    assert.equal(byPath.code, 0, byPath.stderr);
    assert.deepEqual(JSON.parse(byPath.stdout), JSON.parse(byId.stdout));
    assert.equal(JSON.parse(byPath.stdout).rw, keys.rw);

    // the watcher picks up a new file without a rescan request
    await writeFile(join(photos, 'trip', 'c.txt'), 'gamma');
    await waitFor(async () => {
      const f = (await daemon.status()).folders.find((x) => x.id === keys.folderId);
      return f?.localFiles === 3;
    }, 'the watcher to index a new file');

    // joining the same folder again (with a weaker key) is refused clearly
    const again = await ferry(['join', keys.ro, join(base, 'copy'), '--home', home]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already shared/);

    // a folder inside the shared one is refused
    const inside = await ferry(['share', join(photos, 'trip'), '--home', home]);
    assert.equal(inside.code, 1);
    assert.match(inside.stderr, /lies inside/);

    // a key with a typo is refused, never taken as another folder
    const typo = keys.ro.slice(0, 10) + (keys.ro[10] === 'Q' ? 'R' : 'Q') + keys.ro.slice(11);
    const bad = await ferry(['join', typo, join(base, 'typo'), '--home', home]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /checksum|typo/i);
    assert.equal((await daemon.status()).folders.length, 1);
  });

  test('join with another folder\'s read-only key adds it with ro access', async () => {
    const other = join(base, 'other-home');
    const otherDaemon = new DaemonProcess(other);
    try {
      await otherDaemon.ready();
      const src = join(base, 'docs');
      await mkdir(src);
      const shared = await ferry(['share', src, '--json', '--home', other]);
      assert.equal(shared.code, 0, shared.stderr);
      const { ro, folderId } = JSON.parse(shared.stdout) as { ro: string; folderId: string };

      const target = join(base, 'docs-copy');
      const joined = await ferry(['join', ro, target, '--home', home]);
      assert.equal(joined.code, 0, joined.stderr);
      assert.ok((await stat(target)).isDirectory(), 'join creates the target folder');
      const folder = (await daemon.status()).folders.find((f) => f.id === folderId);
      assert.equal(folder?.access, 'ro');
      const keys = JSON.parse((await ferry(['keys', folderId, '--json', '--home', home])).stdout);
      assert.equal(keys.rw, undefined, 'an RO holder cannot print the RW key');
      assert.equal(keys.ro, ro);

      const removed = await ferry(['folders', 'remove', target, '--home', home]);
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal((await daemon.status()).folders.some((f) => f.id === folderId), false);
      assert.ok(existsSync(target), 'removing a folder leaves its files');
    } finally {
      await otherDaemon.stop();
    }
  });

  test('a share of a missing path or a file is refused with a clear message', async () => {
    const missing = await ferry(['share', join(base, 'nope'), '--home', home]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does not exist/);
    const file = join(base, 'plain.txt');
    await writeFile(file, 'x');
    const notDir = await ferry(['share', file, '--home', home]);
    assert.equal(notDir.code, 1);
    assert.match(notDir.stderr, /not a directory/);
  });

  test('a second daemon on the same home is refused', async () => {
    const second = new DaemonProcess(home);
    assert.equal(await second.exited(), 1);
    assert.match(second.log, /already runs on home/);
  });

  test('the home and the device key are owner-only', async () => {
    assert.equal((await stat(home)).mode & 0o777, 0o700);
    assert.equal((await stat(join(home, 'device', 'key.pem'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(home, 'control.sock'))).mode & 0o777, 0o600);
    const pid = Number((await readFile(join(home, 'daemon.pid'), 'utf8')).trim());
    assert.equal(pid, daemon.child.pid);
  });
});

describe('ferry CLI without a daemon', () => {
  test('commands say no daemon runs and exit 1', async () => {
    const home = await tempDir('nodaemon');
    try {
      const result = await ferry(['status', '--home', home]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /no Ferry daemon is running/);
    } finally {
      await removeDir(home);
    }
  });

  test('usage errors exit 2 with help; --version and --help exit 0', async () => {
    const unknown = await ferry(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'; the commands are run, share/);
    const extra = await ferry(['share']);
    assert.equal(extra.code, 2);
    const badFlag = await ferry(['status', '--bogus']);
    assert.equal(badFlag.code, 2);
    const version = await ferry(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    const help = await ferry(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /ferry share DIR/);
  });

  test('FERRY_HOME selects the home when --home is absent', async () => {
    const home = await tempDir('envhome');
    const daemon = new DaemonProcess(home);
    try {
      await daemon.ready();
      const result = await ferry(['status', '--json'], { env: { FERRY_HOME: home } });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(JSON.parse(result.stdout).device.id, (await daemon.status()).device.id);
    } finally {
      await daemon.stop();
      await removeDir(home);
    }
  });
});

describe('daemon lifecycle', () => {
  test('SIGTERM stops cleanly: exit 0, lock released, same device after restart', async () => {
    const home = await tempDir('lifecycle');
    try {
      const first = new DaemonProcess(home);
      await first.ready();
      const id = (await first.status()).device.id;
      assert.equal(await first.stop('SIGTERM'), 0);
      assert.equal(existsSync(join(home, 'daemon.pid')), false);
      const second = new DaemonProcess(home);
      await second.ready();
      assert.equal((await second.status()).device.id, id);
      assert.equal(await second.stop('SIGINT'), 0);
    } finally {
      await removeDir(home);
    }
  });
});

describe('crash safety', () => {
  test('SIGKILL during the first scan, then restart: the index matches the disk', async () => {
    const base = await tempDir('kill');
    const home = join(base, 'home');
    const folder = join(base, 'many');
    const total = 10_000;
    let totalBytes = 0;
    for (let d = 0; d < 100; d++) {
      const dir = join(folder, `d${d}`, `sub${d % 7}`);
      await mkdir(dir, { recursive: true });
      await Promise.all(
        Array.from({ length: total / 100 }, (_, i) => {
          const content = `file ${d}/${i} `.repeat(1 + (i % 50));
          totalBytes += Buffer.byteLength(content);
          return writeFile(join(dir, `f${i}.txt`), content);
        }),
      );
    }
    try {
      const first = new DaemonProcess(home);
      await first.ready();
      const shared = await ferry(['share', folder, '--json', '--home', home]);
      assert.equal(shared.code, 0, shared.stderr);
      // Asked over the control socket from this process (a `ferry status` child takes a second or more
      // to start on a busy machine, long enough for a fast scan to finish before the kill).
      const control = new ControlClient(home);
      const partial = await waitFor(async () => {
        const f = (await control.call<StatusReport>('GET', '/status')).folders[0];
        return f && f.localFiles > 0 ? f : undefined;
      }, 'the scan to write its first batch');
      first.child.kill('SIGKILL');
      await first.exited();
      assert.ok(partial.localFiles < total, `killed mid-scan (had ${partial.localFiles} of ${total})`);

      const second = new DaemonProcess(home);
      await second.ready();
      const done = await waitFor(async () => {
        const f = (await second.status()).folders[0];
        return f && f.state === 'idle' && f.localFiles === total ? f : undefined;
      }, 'the rescan after the crash', 60_000);
      assert.equal(done.localBytes, totalBytes);
      assert.equal(done.globalFiles, total);
      assert.equal(done.needFiles, 0);
      assert.equal(await second.stop(), 0);
    } finally {
      await removeDir(base);
    }
  });
});
