// Temp files orphaned by a killed daemon are swept when the folder starts: only Ferry's own temp names, older than the process (issue 25, low).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';

describe('orphaned temp files', () => {
  let base: string;
  let daemon: DaemonProcess;

  before(async () => {
    base = await tempDir('sec-temps');
  });

  after(async () => {
    await daemon?.stop();
    await removeDir(base);
  });

  test('a SIGKILLed run left temps: removed at folder start; other names kept', async () => {
    const dir = join(base, 'folder');
    await mkdir(join(dir, 'sub'), { recursive: true });
    const hourAgo = new Date(Date.now() - 3600_000);
    const orphans = [join(dir, '.ferry-tmp-0123456789abcdef01234567'), join(dir, 'sub', '.ferry-tmp-fedcba9876543210fedcba98')];
    const kept = [join(dir, '.ferry-tmp-notours'), join(dir, 'sub', 'x.ferry-tmp-0123456789abcdef01234567'), join(dir, 'real.txt')];
    for (const path of [...orphans, ...kept]) {
      await writeFile(path, 'half a file');
      await utimes(path, hourAgo, hourAgo);
    }
    daemon = new DaemonProcess(join(base, 'home'));
    await daemon.ready();
    const shared = await ferry(['share', dir, '--home', daemon.home]);
    assert.equal(shared.code, 0, shared.stderr);
    await waitFor(async () => /removed temp files left by an interrupted run files=2/.test(daemon.log), 'the sweep');
    for (const path of orphans) assert.equal(existsSync(path), false, `${path} swept`);
    for (const path of kept) assert.equal(existsSync(path), true, `${path} kept`);
  });
});
