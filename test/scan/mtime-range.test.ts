// Local mtimes no record can carry (tmpfs and btrfs hold years past 9999): a file is reported, not indexed; a directory's is brought into range.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MAX_RECORD_MTIME_MS } from '../../src/index/records.js';
import { walk } from '../../src/scan/walker.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Seconds since the epoch in the year 33658: tmpfs holds it, ext4 clamps it to 2446. */
const FAR_FUTURE_S = 999_999_999_999;

test('a file whose mtime is past the year 9999 is reported and not indexed; a directory with one is walked', async (t) => {
  const root = await mkdtemp(join('/dev/shm', 'ferry-mtime-')).catch(() => undefined);
  if (!root) return t.skip('/dev/shm is not available');
  dirs.push(root);
  await writeFile(join(root, 'ok.txt'), 'ok');
  await writeFile(join(root, 'future.txt'), 'from the future');
  await mkdir(join(root, 'future-dir'));
  await writeFile(join(root, 'future-dir', 'inside.txt'), 'inside');
  await utimes(join(root, 'future.txt'), FAR_FUTURE_S, FAR_FUTURE_S);
  await utimes(join(root, 'future-dir'), FAR_FUTURE_S, FAR_FUTURE_S);
  if ((await stat(join(root, 'future.txt'))).mtimeMs <= MAX_RECORD_MTIME_MS) return t.skip('this file system clamps mtimes (no tmpfs at /dev/shm)');

  const refused: Array<[string, string]> = [];
  const seen = new Map<string, number>();
  for await (const entry of walk(root, { onRefused: (path, reason) => refused.push([path, reason]) })) seen.set(entry.path, entry.mtimeMs);
  assert.deepEqual([...seen.keys()].sort(), ['future-dir', 'future-dir/inside.txt', 'ok.txt']);
  assert.equal(seen.get('future-dir'), MAX_RECORD_MTIME_MS);
  assert.equal(refused.length, 1);
  assert.equal(refused[0]![0], 'future.txt');
  assert.match(refused[0]![1], /outside the years 0001 to 9999/);
});
