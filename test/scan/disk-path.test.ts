// DiskPaths' per-file work for a stream of new files (issue 29): a new directory is made once, however many of its
// files resolve it at the same moment.

import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DiskPaths } from '../../src/scan/disk-path.js';
import { NODE_FILE_IO, type FileIo } from '../../src/util/file-io.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

test('files of a new directory resolved all at once make it with one mkdir, and all find it a real directory', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ferry-disk-path-'));
  dirs.push(root);
  const made: string[] = [];
  const io: FileIo = { ...NODE_FILE_IO, mkdir: (path, options) => (made.push(path), NODE_FILE_IO.mkdir(path, options)) };
  const paths = new DiskPaths(root, { io });
  const targets = await Promise.all(Array.from({ length: 20 }, (_, i) => paths.resolve(`new/deeper/f${i}`, { createParents: true })));
  assert.deepEqual(made, [join(root, 'new'), join(root, 'new/deeper')]);
  for (const target of targets) assert.equal(target.parentAbs, join(root, 'new/deeper'));
  assert.ok((await stat(join(root, 'new/deeper'))).isDirectory());
});
