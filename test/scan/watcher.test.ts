// Tests for FolderWatcher: change callbacks, new directory trees, ignore rules, the watch limit, and the scanner end to end.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FolderWatcher, fsWatchFunction, nativeWatch, type FolderWatcherOptions, type WatchFunction } from '../../src/scan/watcher.js';
import { coalescePaths, SubtreeSet } from '../../src/scan/subtrees.js';
import { HashPool } from '../../src/scan/hash-pool.js';
import { Scanner } from '../../src/scan/scanner.js';
import { IndexStore } from '../../src/index/store.js';
import { captureLogger, makeTempDir, runCleanups } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
after(() => runCleanups(cleanups));

/** Collects onChange calls; `until` resolves once a call satisfies the predicate. */
class Changes {
  readonly seen: string[] = [];
  private waiters: Array<{ match: (path: string) => boolean; resolve: (path: string) => void }> = [];

  readonly onChange = (path: string): void => {
    this.seen.push(path);
    this.waiters = this.waiters.filter((w) => (w.match(path) ? (w.resolve(path), false) : true));
  };

  until(match: (path: string) => boolean): Promise<string> {
    const hit = this.seen.find(match);
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  clear(): void {
    this.seen.length = 0;
  }
}

/** True when `under` covers `path` (the callback may name a parent of what changed). */
function covers(under: string, path: string): boolean {
  return under === '' || under === path || path.startsWith(under + '/');
}

async function startWatcher(root: string, options: Partial<FolderWatcherOptions> = {}) {
  const changes = new Changes();
  const watcher = new FolderWatcher({ root, onChange: changes.onChange, debounceMs: 200, ...options });
  await watcher.open();
  cleanups.push(() => watcher.close());
  return { watcher, changes };
}

describe('FolderWatcher', () => {
  test('file created, modified and deleted each trigger a callback for its path', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'sub'));
    const { changes } = await startWatcher(root);

    await writeFile(join(root, 'sub/new.txt'), 'x');
    await changes.until((p) => covers(p, 'sub/new.txt'));
    changes.clear();
    await appendFile(join(root, 'sub/new.txt'), 'more');
    await changes.until((p) => covers(p, 'sub/new.txt'));
    changes.clear();
    await rm(join(root, 'sub/new.txt'));
    assert.equal(await changes.until((p) => covers(p, 'sub/new.txt')), 'sub/new.txt');
  });

  test('mkdir -p with a file created at once: new directories get watches and the subtree is reported', async () => {
    const root = await makeTempDir(cleanups);
    const { watcher, changes } = await startWatcher(root);
    assert.equal(watcher.status().watchedDirs, 1);
    await mkdir(join(root, 'x/y/z'), { recursive: true });
    await writeFile(join(root, 'x/y/z/f'), 'x');
    await changes.until((p) => covers(p, 'x/y/z/f'));
    assert.equal(watcher.status().watchedDirs, 4);

    // The new deepest directory is watched itself now.
    changes.clear();
    await writeFile(join(root, 'x/y/z/later'), 'x');
    assert.equal(await changes.until((p) => covers(p, 'x/y/z/later')), 'x/y/z/later');

    // Deleting the tree drops its watches.
    changes.clear();
    await rm(join(root, 'x'), { recursive: true });
    await changes.until((p) => covers(p, 'x'));
    assert.equal(watcher.status().watchedDirs, 1);
  });

  test('a directory renamed inside the folder is watched under its new name', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'old/inner'), { recursive: true });
    const { watcher, changes } = await startWatcher(root);
    await rename(join(root, 'old'), join(root, 'new'));
    await changes.until((p) => covers(p, 'new'));
    await changes.until((p) => covers(p, 'old'));
    assert.equal(watcher.status().watchedDirs, 3);
    changes.clear();
    await writeFile(join(root, 'new/inner/f'), 'x');
    assert.equal(await changes.until((p) => covers(p, 'new/inner/f')), 'new/inner/f');
    assert.ok(!changes.seen.some((p) => p.startsWith('old')), changes.seen.join(','));
  });

  test('ignored directories are not watched and ignored names are not reported', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, '.ferry/archive'), { recursive: true });
    await mkdir(join(root, 'photos/@eaDir'), { recursive: true });
    const { watcher, changes } = await startWatcher(root);
    assert.deepEqual(watcher.status(), { watchedDirs: 2, unwatchedDirs: 0, limitReached: false });
    await writeFile(join(root, '.DS_Store'), 'x');
    await writeFile(join(root, 'photos/.ferry-tmp-1'), 'x');
    await writeFile(join(root, '.ferry/archive/old'), 'x');
    await writeFile(join(root, 'photos/real.jpg'), 'x');
    await changes.until((p) => covers(p, 'photos/real.jpg'));
    assert.ok(changes.seen.every((p) => !p.includes('.DS_Store') && !p.includes('.ferry')), changes.seen.join(','));
  });

  test('many changes in one window are merged into their parents', () => {
    assert.deepEqual(coalescePaths(['a/b', 'a/b/c', 'a', 'd'], 32), ['a', 'd']);
    assert.deepEqual(coalescePaths(['x/1', 'x/2', 'x/3', 'y/1'], 2), ['x', 'y']);
    assert.deepEqual(coalescePaths(['x/1', 'y/2', 'z/3'], 2), ['']);
    assert.deepEqual(coalescePaths(['', 'a'], 32), ['']);
    // Only the deepest are lifted: a shallow edit elsewhere keeps its own small subtree.
    const deep = Array.from({ length: 40 }, (_, i) => `b/c/d/f${i}`);
    assert.deepEqual(coalescePaths(['a/one', ...deep], 32), ['a/one', 'b/c/d']);
    const twoDeep = ['a/one', ...deep, ...deep.map((p) => p.replace('b/c/', 'b/e/'))];
    assert.deepEqual(coalescePaths(twoDeep, 3), ['a/one', 'b/c/d', 'b/e/d']);
    assert.deepEqual(coalescePaths(twoDeep, 2), ['a', 'b']);
  });

  test('pending subtrees: inside one held is skipped, past the bound they fold into their nearest ancestors', () => {
    const set = new SubtreeSet(8);
    set.add('a/x/1');
    set.add('a/x/1/inner');
    set.add('a/x');
    assert.deepEqual(set.take(), ['a/x']);
    assert.equal(set.size, 0);
    for (let i = 0; i < 20; i++) set.add(`top${i % 2}/dir${i}/file`);
    assert.ok(set.size <= 8, String(set.size));
    const folded = set.take();
    assert.ok(folded.every((p) => p !== ''), folded.join(','));
    assert.ok(folded.every((p) => p.startsWith('top0/') || p.startsWith('top1/') || p === 'top0' || p === 'top1'), folded.join(','));
    // More top-level directories than the bound: only then the whole folder.
    for (let i = 0; i < 9; i++) set.add(`t${i}`);
    assert.deepEqual(set.take(), ['']);
    set.add('');
    set.add('a');
    assert.deepEqual(set.take(), ['']);
  });

  test('a simulated watch limit: keeps what fits, warns once, reports it, never throws', async () => {
    const root = await makeTempDir(cleanups);
    for (const dir of ['a/1', 'a/2', 'b/1', 'b/2']) await mkdir(join(root, dir), { recursive: true });
    const { logger, lines } = captureLogger();
    const { watcher, changes } = await startWatcher(root, { maxWatches: 3, logger });
    assert.deepEqual(watcher.status(), { watchedDirs: 3, unwatchedDirs: 4, limitReached: true });
    assert.equal(watcher.needsFrequentRescan, true);
    const warnings = lines.filter((line) => line.includes('WARN'));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /fs\.inotify\.max_user_watches/);
    assert.match(warnings[0]!, /unwatchedDirs=4/);

    // New directories past the limit are reported but not watched, with no second warning.
    await mkdir(join(root, 'c/d'), { recursive: true });
    await changes.until((p) => covers(p, 'c'));
    assert.equal(watcher.status().watchedDirs, 3);
    assert.equal(watcher.status().unwatchedDirs, 6);
    assert.equal(lines.filter((line) => line.includes('WARN')).length, 1);
  });

  test('fs.watch failing with ENOSPC (injected) is handled the same way', async () => {
    const root = await makeTempDir(cleanups);
    for (const dir of ['a', 'b', 'c']) await mkdir(join(root, dir));
    let calls = 0;
    const watch: WatchFunction = (absDir, listeners) => {
      if (++calls > 2) throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
      return fsWatchFunction(absDir, listeners);
    };
    const { logger, lines } = captureLogger();
    const { watcher } = await startWatcher(root, { watch, logger });
    assert.deepEqual(watcher.status(), { watchedDirs: 2, unwatchedDirs: 2, limitReached: true });
    assert.equal(lines.filter((line) => line.includes('WARN')).length, 1);
  });

  test('one change listener and one error listener serve every directory; each still reports its own paths', async (t) => {
    const root = await makeTempDir(cleanups);
    const dirs = 200;
    for (let i = 0; i < dirs; i++) await mkdir(join(root, `g${i % 10}`, `d${i}`), { recursive: true });
    const listeners = { change: new Set<unknown>(), error: new Set<unknown>() };
    let handles = 0;
    // Through fs.watch (where Node has no bare handle): the listeners go on each FSWatcher.
    const watch: WatchFunction = (absDir, shared) => {
      handles++;
      listeners.change.add(shared.change);
      listeners.error.add(shared.error);
      return fsWatchFunction(absDir, shared);
    };
    const { watcher, changes } = await startWatcher(root, { watch });
    assert.equal(watcher.status().watchedDirs, dirs + 10 + 1);
    assert.equal(handles, dirs + 11);
    // Before: a closure (and its context) per directory for each event, ~190 of the ~840 bytes of heap a watch held.
    assert.equal(listeners.change.size, 1, 'the change listener is shared');
    assert.equal(listeners.error.size, 1, 'the error listener is shared');
    await writeFile(join(root, 'g3/d13/new.txt'), 'x');
    await changes.until((p) => covers(p, 'g3/d13/new.txt'));
    await writeFile(join(root, 'g7/d197/other.txt'), 'x');
    await changes.until((p) => covers(p, 'g7/d197/other.txt'));
    t.diagnostic(`${handles} watches`);
  });

  test("Node's bare inotify handle: events, a missing directory refused with ENOENT, a quarter of fs.watch's heap a watch", async (t) => {
    assert.ok(nativeWatch, "process.binding('fs_event_wrap') serves FSEvent on this Node");
    const bareWatch = nativeWatch;
    const root = await makeTempDir(cleanups);
    const dirs = 1_000;
    for (let i = 0; i < dirs; i++) await mkdir(join(root, `d${i}`));
    await mkdir(join(root, 'sub'));
    // The default watch function is the bare handle: a FolderWatcher reports through it.
    const { changes } = await startWatcher(root);
    await writeFile(join(root, 'sub/new.txt'), 'x');
    await changes.until((p) => covers(p, 'sub/new.txt'));
    assert.throws(() => bareWatch(join(root, 'missing'), { change() {}, error() {} }), { code: 'ENOENT' });
    // Listeners and onchange on a prototype shared by the handles of one set of listeners, none of them on a handle.
    const shared = { change() {}, error() {} };
    const one = bareWatch(join(root, 'd0'), shared);
    const two = bareWatch(join(root, 'd1'), shared);
    try {
      assert.equal(Object.getPrototypeOf(one), Object.getPrototypeOf(two));
      assert.deepEqual(Object.getOwnPropertyNames(one), [], 'no string-keyed property on the handle');
      assert.ok(Object.getOwnPropertySymbols(one).length <= 2, 'at most the path and inode fields');
    } finally {
      one.close();
      two.close();
    }

    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const noop = { change() {}, error() {} };
    const perWatch = (watch: WatchFunction, count = dirs): number => {
      const used = (): number => {
        gc();
        gc();
        return getHeapStatistics().used_heap_size;
      };
      const handles: Array<{ close(): void }> = [];
      const before = used();
      for (let i = 0; i < count; i++) handles.push(watch(join(root, `d${i}`), noop));
      const bytes = (used() - before) / count;
      for (const handle of handles) handle.close();
      return bytes;
    };
    // Alternating, the least of three each: a collection's leftovers (handles closing) are not counted.
    const runs = { bare: [] as number[], wrapped: [] as number[] };
    for (let round = 0; round < 3; round++) {
      runs.bare.push(perWatch(bareWatch));
      runs.wrapped.push(perWatch(fsWatchFunction));
    }
    const bare = Math.min(...runs.bare);
    const wrapped = Math.min(...runs.wrapped);
    t.diagnostic(`heap per watch: bare handle ${bare.toFixed(0)} bytes, fs.watch ${wrapped.toFixed(0)} bytes`);
    assert.ok(bare < wrapped / 2, `bare ${bare.toFixed(0)} bytes a watch against fs.watch ${wrapped.toFixed(0)}`);
  });

  test('close is idempotent and releases every watch', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'a'));
    const { watcher, changes } = await startWatcher(root);
    await Promise.all([watcher.close(), watcher.close()]);
    assert.equal(watcher.status().watchedDirs, 0);
    // A second, live watcher with the same debounce is the witness: once it reports, a live first one would have too.
    const witness = await startWatcher(root);
    await writeFile(join(root, 'a/f'), 'x');
    await witness.changes.until((p) => covers(p, 'a/f'));
    assert.deepEqual(changes.seen, []);
  });
});

describe('FolderWatcher with Scanner and the LMDB index', () => {
  let pool: HashPool;
  let store: IndexStore;
  before(async () => {
    pool = new HashPool({ workers: 2 });
    await pool.open();
    store = new IndexStore({ path: await makeTempDir(cleanups, 'ferry-watch-index-') });
    await store.open();
  });
  after(async () => {
    await pool.close();
    await store.close();
  });

  test('mkdir -p x/y/z and a file inside at once: after the callback-driven rescan all of it is indexed', async () => {
    const root = await makeTempDir(cleanups);
    const index = store.folder('cd'.repeat(20));
    const scanner = new Scanner({ root, index, deviceShortId: 'DEV1', pool });
    await scanner.scan();
    let indexed!: () => void;
    const allIndexed = new Promise<void>((resolve) => (indexed = resolve));
    const { watcher } = await startWatcher(root, {
      onChange: (under) => {
        void scanner.scan({ under }).then(() => {
          if (index.getLocal('x/y/z/f') && index.getLocal('x/y/z/g')) indexed();
        });
      },
    });
    await mkdir(join(root, 'x/y/z'), { recursive: true });
    await writeFile(join(root, 'x/y/z/f'), 'first');
    await writeFile(join(root, 'x/y/z/g'), 'second');
    await allIndexed;
    for (const path of ['x', 'x/y', 'x/y/z']) assert.equal(index.getLocal(path)?.type, 'dir', path);
    assert.equal(index.getLocal('x/y/z/f')!.size, 5);
    assert.equal(watcher.status().watchedDirs, 4);
  });
});
