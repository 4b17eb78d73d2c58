// Tests for walk(): nesting, symlinks (never followed), unreadable entries, special files, NFD names, subtrees, abort.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { walk, type WalkEntry, type WalkOptions } from '../../src/scan/walker.js';
import { IgnoreRules } from '../../src/scan/ignore.js';
import { makeTempDir, runCleanups } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
after(() => runCleanups(cleanups));

async function collect(root: string, options: WalkOptions = {}): Promise<Map<string, WalkEntry>> {
  const entries = new Map<string, WalkEntry>();
  for await (const entry of walk(root, options)) {
    assert.ok(!entries.has(entry.path), `yielded twice: ${entry.path}`);
    entries.set(entry.path, entry);
  }
  return entries;
}

describe('walk', () => {
  test('nested directories: every entry once, relative, directories before their contents', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'a/b/c'), { recursive: true });
    await mkdir(join(root, 'empty'));
    await writeFile(join(root, 'a/b/c/deep.txt'), 'deep');
    await writeFile(join(root, 'a/top.bin'), Buffer.alloc(1000));
    await writeFile(join(root, 'root.txt'), '');
    await chmod(join(root, 'a/top.bin'), 0o640);

    const order: string[] = [];
    for await (const entry of walk(root)) order.push(entry.path);
    assert.deepEqual([...order].sort(), ['a', 'a/b', 'a/b/c', 'a/b/c/deep.txt', 'a/top.bin', 'empty', 'root.txt']);
    for (const path of order) {
      const parent = path.slice(0, path.lastIndexOf('/'));
      if (parent) assert.ok(order.indexOf(parent) < order.indexOf(path), `${parent} before ${path}`);
    }

    const entries = await collect(root);
    const top = entries.get('a/top.bin')!;
    const stats = await lstat(join(root, 'a/top.bin'));
    assert.deepEqual(top, { path: 'a/top.bin', type: 'file', size: 1000, mode: 0o640, mtimeMs: stats.mtimeMs, inode: stats.ino });
    assert.equal(entries.get('a/b')!.type, 'dir');
    assert.equal(entries.get('a/b')!.size, 0);
    assert.equal(entries.get('root.txt')!.size, 0);
  });

  test('symlinks are recorded with their target and never followed, loops included', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'real'));
    await writeFile(join(root, 'real/file'), 'x');
    await symlink('real', join(root, 'to-dir'));
    await symlink('/etc', join(root, 'outside'));
    await symlink('loop2', join(root, 'loop1'));
    await symlink('loop1', join(root, 'loop2'));
    await symlink('.', join(root, 'real/self'));
    await symlink('missing-target', join(root, 'dangling'));

    const entries = await collect(root);
    assert.deepEqual([...entries.keys()].sort(), ['dangling', 'loop1', 'loop2', 'outside', 'real', 'real/file', 'real/self', 'to-dir']);
    for (const [name, target] of [['to-dir', 'real'], ['outside', '/etc'], ['loop1', 'loop2'], ['real/self', '.'], ['dangling', 'missing-target']]) {
      const entry = entries.get(name!)!;
      assert.equal(entry.type, 'symlink', name);
      assert.equal(entry.linkTarget, target, name);
      assert.equal(entry.size, 0);
    }
  });

  test('fifos and sockets are skipped', async () => {
    const root = await makeTempDir(cleanups);
    execFileSync('mkfifo', [join(root, 'pipe')]);
    await writeFile(join(root, 'file'), 'x');
    const errors: string[] = [];
    const entries = await collect(root, { onError: (path) => errors.push(path) });
    assert.deepEqual([...entries.keys()], ['file']);
    assert.deepEqual(errors, []);
  });

  test('ignored entries are skipped and ignored directories not entered', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, '.ferry/archive'), { recursive: true });
    await writeFile(join(root, '.ferry/archive/old'), 'x');
    await mkdir(join(root, 'photos/@eaDir/thumb'), { recursive: true });
    await writeFile(join(root, 'photos/@eaDir/thumb/t.jpg'), 'x');
    await writeFile(join(root, 'photos/p.jpg'), 'x');
    await writeFile(join(root, 'photos/p.tmp'), 'x');
    await writeFile(join(root, 'photos/.ferry-tmp-p.jpg'), 'x');
    const entries = await collect(root, { ignore: IgnoreRules.fromText('*.tmp\n') });
    assert.deepEqual([...entries.keys()].sort(), ['photos', 'photos/p.jpg']);
  });

  test('a directory that vanishes before it is read goes to onError and the walk goes on', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'doomed/inner'), { recursive: true });
    await writeFile(join(root, 'doomed/inner/f'), 'x');
    await writeFile(join(root, 'kept'), 'x');
    const errors: Array<[string, string | undefined]> = [];
    const seen: string[] = [];
    // The walk is lazy: it lists 'doomed' only after the consumer asks for more, so removing it now is a real race.
    for await (const entry of walk(root, { onError: (path, err) => errors.push([path, (err as NodeJS.ErrnoException).code]) })) {
      seen.push(entry.path);
      if (entry.path === 'doomed') await rm(join(root, 'doomed'), { recursive: true });
    }
    assert.deepEqual(seen.sort(), ['doomed', 'kept']);
    assert.deepEqual(errors, [['doomed', 'ENOENT']]);
  });

  test('an unreadable directory goes to onError and is skipped (as an unprivileged user)', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'secret'));
    await writeFile(join(root, 'secret/hidden'), 'x');
    await writeFile(join(root, 'open.txt'), 'x');
    await chmod(join(root, 'secret'), 0o000);
    await chmod(root, 0o755);
    cleanups.push(() => chmod(join(root, 'secret'), 0o755));
    const walkerUrl = new URL('../../src/scan/walker.js', import.meta.url).href;
    // Root reads through chmod 000, so as root the walk runs in a child process as 'nobody'
    // (after the import: the checkout may be where 'nobody' cannot read, such as under /root).
    const script = `
      const { walk } = await import(${JSON.stringify(walkerUrl)});
      if (process.getuid() === 0) { process.setgid(65534); process.setuid(65534); }
      const paths = [], errors = [];
      for await (const e of walk(${JSON.stringify(root)}, { onError: (p, err) => errors.push([p, err.code]) })) paths.push(e.path);
      console.log(JSON.stringify({ paths: paths.sort(), errors }));`;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(output), { paths: ['open.txt', 'secret'], errors: [['secret', 'EACCES']] });
  });

  test('NFD names on disk are reported NFC, with the disk spelling kept', async () => {
    const root = await makeTempDir(cleanups);
    const nfdDir = 'Cafe\u0301';
    const nfdFile = 'Re\u0301sume\u0301.txt';
    await mkdir(join(root, nfdDir));
    await writeFile(join(root, nfdDir, nfdFile), 'x');
    await writeFile(join(root, 'plain.txt'), 'x');
    const entries = await collect(root);
    const dir = entries.get('Caf\u00e9')!;
    assert.equal(dir.type, 'dir');
    assert.equal(dir.diskPath, nfdDir);
    const file = entries.get('Caf\u00e9/R\u00e9sum\u00e9.txt')!;
    assert.equal(file.diskPath, `${nfdDir}/${nfdFile}`);
    assert.equal(entries.get('plain.txt')!.diskPath, undefined);

    // A subtree given in NFC still finds the NFD directory.
    const sub = await collect(root, { under: 'Caf\u00e9' });
    assert.deepEqual([...sub.keys()].sort(), ['Caf\u00e9', 'Caf\u00e9/R\u00e9sum\u00e9.txt']);
  });

  test('under: only that subtree; a file alone; nothing for a missing or ignored path', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'a/b'), { recursive: true });
    await mkdir(join(root, 'ab'));
    await writeFile(join(root, 'a/b/f'), 'x');
    await writeFile(join(root, 'ab/g'), 'x');
    await mkdir(join(root, '@eaDir/x'), { recursive: true });
    assert.deepEqual([...(await collect(root, { under: 'a' })).keys()].sort(), ['a', 'a/b', 'a/b/f']);
    assert.deepEqual([...(await collect(root, { under: '/a/b/' })).keys()].sort(), ['a/b', 'a/b/f']);
    assert.deepEqual([...(await collect(root, { under: 'a/b/f' })).keys()], ['a/b/f']);
    assert.deepEqual([...(await collect(root, { under: 'nope/x' })).keys()], []);
    assert.deepEqual([...(await collect(root, { under: '@eaDir/x' })).keys()], []);
  });

  test('an aborted signal stops the walk with ABORTED', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'a'));
    await writeFile(join(root, 'a/f'), 'x');
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(collect(root, { signal: controller.signal }), { code: 'ABORTED' });
  });
});
