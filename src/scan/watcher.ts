// FolderWatcher: one plain fs.watch per directory, debounced into "rescan this subtree" callbacks; degrades at the inotify limit.

import { lstatSync, watch as fsWatch, type Stats } from 'node:fs';
import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import { getSystemErrorName } from 'node:util';
import { Resource } from '../util/resource.js';
import { silentLogger, type Logger } from '../util/log.js';
import { IgnoreRules } from './ignore.js';
import { openFolderDir, toIndexPath, type DirIdentity, type VerifiedDir } from './disk-path.js';
import { isFerryError } from '../errors.js';
import { OWN_WRITES, type OwnWrites } from './own-writes.js';
import { coalescePaths } from './subtrees.js';

/** What a watch must offer; fs.FSWatcher and Node's FSEvent fit. */
export interface WatchHandle {
  close(): void;
}

/**
 * Where every watch of one FolderWatcher reports, with the handle as `this`: the same two functions for every
 * directory (a 1,000,000-file folder has ~11,000), no closure per directory.
 */
export interface WatchListeners {
  change(this: WatchHandle, eventType: string, filename: string | null): void;
  error(this: WatchHandle, err: Error): void;
}

/** Starts watching one directory (not recursively); throws like fs.watch (ENOSPC, EMFILE, ENOENT…). */
export type WatchFunction = (absDir: string, listeners: WatchListeners) => WatchHandle;

export interface FolderWatcherOptions {
  /** Absolute path of the folder. */
  root: string;
  /** @default built-in rules only */
  ignore?: IgnoreRules;
  logger?: Logger;
  /** Called with a relative NFC path ('' = the whole folder) whose subtree should be rescanned. */
  onChange: (under: string) => void;
  /** Events are collected this long after the first one before callbacks fire. @default 250 */
  debounceMs?: number;
  /** More changed paths than this in one window are merged into their nearest ancestors, deepest first. @default 1024 */
  maxCallbacksPerFlush?: number;
  /** Behave as if the kernel refused watches past this many (tests; cautious deployments). */
  maxWatches?: number;
  /** Replaces fs.watch (tests). */
  watch?: WatchFunction;
  /** This process's own writes, whose events are not reported. @default OWN_WRITES */
  ownWrites?: OwnWrites;
}

export interface WatcherStatus {
  watchedDirs: number;
  /** Directories without a watch because the limit was reached (approximate once directories are deleted). */
  unwatchedDirs: number;
  limitReached: boolean;
}

export const DEFAULT_DEBOUNCE_MS = 250;
/** Each callback is a small subtree rescan; folding into few large ones rescanned whole top-level directories, or the root. */
export const DEFAULT_MAX_CALLBACKS_PER_FLUSH = 1024;
const LIMIT_CODES = new Set(['ENOSPC', 'EMFILE', 'ENFILE']);

/** fs.watch, its events to the shared listeners. Persistent, like a listening socket: close() releases it. */
export const fsWatchFunction: WatchFunction = (absDir, listeners) => {
  const handle = fsWatch(absDir);
  handle.on('change', listeners.change);
  handle.on('error', listeners.error);
  return handle;
};

/**
 * A directory's watch carries its path and inode itself (two properties on the handle): no closure, context or
 * record object per directory (a 1,000,000-file folder has ~11,000 directories; each watch cost ~840 bytes of heap,
 * most of it Node's FSWatcher and FSEvent).
 */
const DIR = Symbol('dir');
const INODE = Symbol('inode');

/** Node's inotify handle (process.binding('fs_event_wrap'), what fs.watch wraps). */
interface FsEvent extends WatchHandle {
  onchange: (this: FsEvent, status: number, eventType: string, filename: string | null) => void;
  start(path: string, persistent: boolean, recursive: boolean, encoding: string): number;
  [LISTENERS]?: WatchListeners;
}
const LISTENERS = Symbol('listeners');

function onFsEvent(this: FsEvent, status: number, eventType: string, filename: string | null): void {
  const listeners = this[LISTENERS]!;
  if (status >= 0) return listeners.change.call(this, eventType, filename);
  this.close();
  listeners.error.call(this, errnoError(status, 'watch'));
}

function errnoError(errno: number, path: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`${code}: watch ${path}`), { code, errno, syscall: 'watch', path });
}

/**
 * Node's FSEvent handle without the fs.FSWatcher around it: an FSWatcher (an EventEmitter, its events object and
 * Node's closure) made a watch cost ~500 bytes of heap with shared listeners, the bare handle ~120 (3,000 watches,
 * Node 20). fs.watch where the binding is not there (process.binding is deprecated, documentation only, and lists
 * fs_event_wrap among the bindings it still serves).
 *
 * Each FolderWatcher's handles are of a subclass of their own: its listeners and `onchange` on the prototype and the
 * directory's path and inode in two fields of the handle itself, where properties added to each handle took a
 * property array of their own (5,000 watches, Node 20: 193 -> 145 bytes of heap a watch).
 */
function nativeWatchFunction(): WatchFunction | undefined {
  let FSEvent: (new () => FsEvent) | undefined;
  try {
    const binding = (process as unknown as { binding?(name: string): { FSEvent?: new () => FsEvent } }).binding?.('fs_event_wrap');
    FSEvent = typeof binding?.FSEvent === 'function' ? binding.FSEvent : undefined;
  } catch {
    return undefined;
  }
  if (!FSEvent) return undefined;
  const Handle = FSEvent;
  const classes = new WeakMap<WatchListeners, new () => FsEvent>();
  return (absDir, listeners) => {
    let Watch = classes.get(listeners);
    if (!Watch) {
      Watch = class extends Handle {
        [DIR] = '';
        [INODE] = 0;
      };
      Watch.prototype[LISTENERS] = listeners;
      Watch.prototype.onchange = onFsEvent;
      classes.set(listeners, Watch);
    }
    const handle = new Watch();
    const errno = handle.start(absDir, true, false, 'utf8');
    if (errno !== 0) {
      handle.close();
      throw errnoError(errno, absDir);
    }
    return handle;
  };
}

/** The bare inotify handle where Node offers it (tests), else undefined. */
export const nativeWatch: WatchFunction | undefined = nativeWatchFunction();
const defaultWatch: WatchFunction = nativeWatch ?? fsWatchFunction;

type Watched = WatchHandle & { [DIR]: string; [INODE]: number };

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

export class FolderWatcher extends Resource {
  private readonly root: string;
  private readonly ignore: IgnoreRules;
  private readonly logger: Logger;
  private readonly onChange: (under: string) => void;
  private readonly debounceMs: number;
  private readonly maxCallbacks: number;
  private readonly maxWatches: number;
  private readonly watchFn: WatchFunction;
  private readonly ownWrites: OwnWrites;
  /** Watched directories by on-disk relative path ('' = root). */
  private readonly watches = new Map<string, Watched>();
  /**
   * Watched directories strictly below each path that has some: a changed file (no watches below)
   * is passed over without a look at every watch, which cost O(directories) per changed path.
   */
  private readonly watchedBelow = new Map<string, number>();
  private readonly pending = new Set<string>();
  private unwatchedDirs = 0;
  private limitReached = false;
  private limitWarned = false;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  /** The listeners of every watch: the directory is the handle's (`this`). */
  private readonly listeners: WatchListeners;

  constructor(options: FolderWatcherOptions) {
    super();
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const watcher = this;
    this.listeners = {
      change(_event, filename) {
        watcher.onEvent((this as Watched)[DIR], filename);
      },
      error(err) {
        watcher.onWatchError(this as Watched, err);
      },
    };
    this.root = options.root;
    this.ignore = options.ignore ?? IgnoreRules.builtIn();
    this.logger = options.logger ?? silentLogger;
    this.onChange = options.onChange;
    this.debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.maxCallbacks = options.maxCallbacksPerFlush ?? DEFAULT_MAX_CALLBACKS_PER_FLUSH;
    this.maxWatches = options.maxWatches ?? Infinity;
    this.watchFn = options.watch ?? defaultWatch;
    this.ownWrites = options.ownWrites ?? OWN_WRITES;
  }

  status(): WatcherStatus {
    return { watchedDirs: this.watches.size, unwatchedDirs: this.unwatchedDirs, limitReached: this.limitReached };
  }

  /** True when some directories have no watch: the owner should run full rescans more often. */
  get needsFrequentRescan(): boolean {
    return this.limitReached;
  }

  protected async _open(): Promise<void> {
    await this.watchTree('');
    this.warnIfLimited();
  }

  protected async _close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
    for (const watched of this.watches.values()) watched.close();
    this.watches.clear();
    this.watchedBelow.clear();
    await this.flushing;
  }

  /**
   * Adds watches for a directory and every directory below it (streaming, depth-first). Each one is
   * opened without following symlinks (scan/disk-path.ts) and must be the directory its parent listed:
   * a directory swapped for a symlink is never watched or entered.
   */
  private async watchTree(top: string): Promise<void> {
    const stack: Array<{ dir: string; identity?: DirIdentity }> = [{ dir: top }];
    while (stack.length > 0 && !this.closed) {
      const { dir, identity } = stack.pop()!;
      let opened: VerifiedDir;
      try {
        opened = await openFolderDir(this.root, dir, identity);
      } catch (err) {
        if (isFerryError(err, 'PATH_UNSAFE')) this.logger.warn('not watching a directory reached through a symlink', { path: dir, err });
        this.unwatchTree(dir);
        continue; // vanished, unreadable or replaced: nothing to watch below it
      }
      try {
        // Already-watched directories have watched children (or will report new ones themselves).
        if ((await this.watchDir(dir, opened)) !== 'added') continue;
        let handle;
        try {
          handle = await opendir(opened.base, { bufferSize: 64 });
        } catch {
          continue; // vanished or unreadable: nothing to watch below it
        }
        try {
          for await (const dirent of handle) {
            if (!dirent.isDirectory()) continue; // symlinks are never followed
            const child = dir === '' ? dirent.name : `${dir}/${dirent.name}`;
            if (this.ignore.ignores(toIndexPath(child), true)) continue;
            const stats = await lstat(opened.entry(dirent.name)).catch(() => undefined);
            if (stats?.isDirectory()) stack.push({ dir: child, identity: { dev: stats.dev, ino: stats.ino } });
          }
        } catch {
          // directory went away mid-listing
        }
      } finally {
        opened.close();
      }
    }
  }

  /**
   * Watches one directory, held open. 'added' also when it could not be watched at the limit (it is
   * counted, and its children must be visited to count them too); 'known' when already watched;
   * 'gone' when it cannot be watched any more.
   */
  private async watchDir(dir: string, opened: VerifiedDir): Promise<'added' | 'known' | 'gone'> {
    const inode = opened.identity.ino;
    const existing = this.watches.get(dir);
    if (existing?.[INODE] === inode) return 'known';
    if (existing) this.unwatchTree(dir); // a different directory now lives at this path
    if (this.closed) return 'gone';
    if (this.limitReached || this.watches.size >= this.maxWatches) {
      this.reachLimit();
      this.unwatchedDirs++;
      return 'added';
    }
    let handle: WatchHandle;
    try {
      // Through the descriptor: the watch is on this directory whatever its path leads to by now.
      handle = this.watchFn(opened.base, this.listeners);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (LIMIT_CODES.has(code)) {
        this.reachLimit();
        this.unwatchedDirs++;
        return 'added';
      }
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'gone';
      this.logger.debug('cannot watch directory', { path: dir, err });
      this.unwatchedDirs++;
      return 'added';
    }
    const watched = handle as Watched;
    watched[DIR] = dir;
    watched[INODE] = inode;
    this.setWatch(dir, watched);
    return 'added';
  }

  private onWatchError(watched: Watched, err: Error): void {
    // Usually the directory was deleted; the parent's event (or this one) makes the flush re-check it.
    const dir = watched[DIR];
    this.logger.debug('watch error', { path: dir, err });
    if (this.watches.get(dir) === watched) {
      watched.close();
      this.deleteWatch(dir);
    }
    this.noteChange(dir);
  }

  private reachLimit(): void {
    this.limitReached = true;
  }

  private warnIfLimited(): void {
    if (!this.limitReached || this.limitWarned) return;
    this.limitWarned = true;
    this.logger.warn(
      'filesystem watch limit reached: changes in some directories are found only by periodic rescans; ' +
        'raise it with: sysctl -w fs.inotify.max_user_watches=524288 (and in /etc/sysctl.conf)',
      { watchedDirs: this.watches.size, unwatchedDirs: this.unwatchedDirs },
    );
  }

  private setWatch(dir: string, watched: Watched): void {
    this.watches.set(dir, watched);
    for (let path = dir; path !== ''; ) {
      path = parentOf(path);
      this.watchedBelow.set(path, (this.watchedBelow.get(path) ?? 0) + 1);
    }
  }

  private deleteWatch(dir: string): void {
    if (!this.watches.delete(dir)) return;
    for (let path = dir; path !== ''; ) {
      path = parentOf(path);
      const below = (this.watchedBelow.get(path) ?? 1) - 1;
      if (below > 0) this.watchedBelow.set(path, below);
      else this.watchedBelow.delete(path);
    }
  }

  /** Closes the watches of a directory and everything below it. */
  private unwatchTree(dir: string): void {
    if (!this.watches.has(dir) && !this.watchedBelow.has(dir)) return;
    for (const [path, watched] of this.watches) {
      if (dir === '' || path === dir || path.startsWith(dir + '/')) {
        watched.close();
        this.deleteWatch(path);
      }
    }
  }

  private onEvent(dir: string, filename: string | null): void {
    if (this.closed) return;
    const path = filename === null ? dir : dir === '' ? filename : `${dir}/${filename}`;
    const indexPath = toIndexPath(path);
    // The kind is unknown here; drop only what the rules ignore whether it is a file or a directory.
    if (this.ignore.ignores(indexPath, false) && this.ignore.ignores(indexPath, true)) return;
    this.noteChange(path);
  }

  private noteChange(path: string): void {
    if (this.closed) return;
    this.pending.add(path);
    if (this.timer) return;
    // A fixed window from the first event, so a steady stream of writes cannot postpone the rescan forever.
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flushing = this.flushing.then(() => this.flush());
    }, this.debounceMs);
  }

  private async flush(): Promise<void> {
    const paths = [...this.pending];
    this.pending.clear();
    const changed: string[] = [];
    for (const path of paths) {
      if (this.closed) return;
      const abs = join(this.root, path);
      let stats: Stats | undefined;
      try {
        // A path this process has just written is in the inode cache: a synchronous lstat takes microseconds, against
        // a thread-pool round trip per installed file.
        stats = this.ownWrites.noted(abs) ? lstatSync(abs, { throwIfNoEntry: false }) : await lstat(abs);
      } catch {
        // gone
      }
      // New directories get watches now; their contents so far are covered by the rescan below.
      if (stats?.isDirectory()) await this.watchTree(path);
      else this.unwatchTree(path);
      // What the puller just wrote is indexed already: rescanning it would only hold the folder lock.
      if (!this.ownWrites.isOwn(abs, stats)) changed.push(path);
    }
    this.warnIfLimited();
    if (this.closed) return;
    for (const under of coalescePaths(changed, this.maxCallbacks)) {
      try {
        this.onChange(toIndexPath(under));
      } catch (err) {
        this.logger.error('change handler failed', { path: under, err });
      }
    }
  }
}
