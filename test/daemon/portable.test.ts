// The home's portable file: its checks (one bad record is left out, not the file), owner-only atomic writes, and saves that follow changes.

import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { PORTABLE_FORMAT, PortableMirror, parsePortable, readPortable, writePortable, type PortableHome } from '../../src/daemon/portable.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

const FOLDER = { id: 'ab'.repeat(20), path: '/srv/photos', access: 'rw', key: 'AKEY', addedAtMs: 1, paused: false };

function home(extra: Partial<PortableHome> = {}): PortableHome {
  return { format: PORTABLE_FORMAT, version: 1, savedAt: 'now', settings: { knownPeers: [] }, folders: [FOLDER as PortableHome['folders'][number]], devices: [], ...extra };
}

test('a malformed folder or device is left out and reported; the rest is kept', () => {
  const text = JSON.stringify({ ...home(), folders: [FOLDER, { id: 'x', path: 3 }, null], devices: [{ id: 'D' }, 7] });
  const parsed = parsePortable(text, 'portable.json');
  assert.deepEqual(parsed.folders, [FOLDER]);
  assert.deepEqual(parsed.devices, [{ id: 'D' }]);
  assert.deepEqual(parsed.skipped, ['folders[1]: no folder ID, path or key', 'folders[2]: no folder ID, path or key', 'devices[1]: no device ID']);
});

test('a file that is not a Ferry home file is refused as a whole with INDEX_CORRUPT', () => {
  for (const text of ['{', '[]', JSON.stringify({ ...home(), format: 'other' }), JSON.stringify({ ...home(), version: 99 }), JSON.stringify({ ...home(), settings: [] }), JSON.stringify({ ...home(), device: { id: 1 } })]) {
    assert.throws(() => parsePortable(text, 'f'), (err: { code?: string }) => err.code === 'INDEX_CORRUPT', text);
  }
});

test('written owner-only and read back; saves while one waits share one write', async () => {
  const dir = await tempDir('portable');
  try {
    const path = join(dir, 'portable.json');
    await writePortable(path, home());
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual((await readPortable(path))?.folders, [FOLDER]);
    assert.equal(await readPortable(join(dir, 'none.json')), undefined);

    let snapshots = 0;
    let peers = 0;
    const mirror = new PortableMirror(path, async () => {
      snapshots++;
      return home({ settings: { knownPeers: peers } });
    });
    peers = 1;
    const first = mirror.save();
    peers = 2;
    const second = mirror.save();
    const third = mirror.save();
    await Promise.all([first, second, third]);
    assert.ok(snapshots <= 2, `${snapshots} snapshots for 3 saves`);
    assert.equal(JSON.parse(await readFile(path, 'utf8')).settings.knownPeers, 2);
  } finally {
    await removeDir(dir);
  }
});
