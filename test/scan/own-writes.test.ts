// OwnWrites: the watcher ignores an event only while the disk is exactly as the puller left it.

import assert from 'node:assert/strict';
import type { Stats } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { OWN_WRITE_WINDOW_MS, OwnWrites } from '../../src/scan/own-writes.js';

test('a path is ours while it is as noted; an edit, a removal or another path is not', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-own-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const own = new OwnWrites();
  const file = join(dir, 'f.txt');
  await writeFile(file, 'pulled');
  own.note(file, await stat(file));
  assert.equal(own.isOwn(file, await stat(file)), true);
  assert.equal(own.isOwn(join(dir, 'other.txt'), await stat(file)), false);
  assert.equal(own.isOwn(file, undefined), false, 'removed since: a change');
  await writeFile(file, 'edited by the user right after');
  assert.equal(own.isOwn(file, await stat(file)), false, 'edited since: a change');

  own.note(file, undefined);
  assert.equal(own.isOwn(file, undefined), true, 'a removal by the puller');
  own.note(dir, await stat(dir));
  assert.equal(own.isOwn(dir, await stat(dir)), true, 'a directory the puller made');
});

test('entries whose window has passed are dropped as new ones come: a long install run keeps one window of paths', () => {
  let clock = 1_000_000;
  const own = new OwnWrites(() => clock);
  const stats = { isFile: () => true, isDirectory: () => false, isSymbolicLink: () => false, ino: 1, mtimeMs: 1, size: 1 } as unknown as Stats;
  // 1,000 installs a second for a minute: 60,000 notes, 5,000 of them within the last OWN_WRITE_WINDOW_MS.
  const perMs = 1;
  let most = 0;
  for (let i = 0; i < 60_000; i++) {
    own.note(`/folder/d${Math.floor(i / 100)}/f${i}`, stats);
    most = Math.max(most, own.size);
    if (i % perMs === perMs - 1) clock++;
  }
  assert.ok(most <= OWN_WRITE_WINDOW_MS + 1, `${most} entries at most, one window's worth (${OWN_WRITE_WINDOW_MS})`);
  assert.equal(own.isOwn('/folder/d599/f59999', stats), true, 'the last write is still ours');
  assert.equal(own.noted('/folder/d0/f0'), false, 'the first one is long gone');
  // A burst within one window is still bounded by the cap.
  const capped = new OwnWrites(() => clock, 1000);
  for (let i = 0; i < 5000; i++) capped.note(`/folder/x${i}`, stats);
  assert.equal(capped.size, 1000);
  assert.equal(capped.noted('/folder/x4999'), true);
});
