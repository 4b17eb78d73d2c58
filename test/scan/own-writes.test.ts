// OwnWrites: the watcher ignores an event only while the disk is exactly as the puller left it.

import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { OwnWrites } from '../../src/scan/own-writes.js';

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
