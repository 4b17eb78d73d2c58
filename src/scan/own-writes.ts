// What this process itself just wrote into shared folders (the puller), so the watcher does not rescan its own writes.

import type { Stats } from 'node:fs';

/** How long after a write its watcher events are recognised as ours. */
export const OWN_WRITE_WINDOW_MS = 5000;
/** Entries kept at most (oldest dropped first): a bound, not a working set. */
export const OWN_WRITES_MAX = 20_000;

type Kind = 'file' | 'dir' | 'symlink' | 'gone';

interface Entry {
  kind: Kind;
  ino: number;
  mtimeMs: number;
  size: number;
  expiresAtMs: number;
}

function kindOf(stats: Stats | undefined): Kind {
  if (!stats) return 'gone';
  if (stats.isDirectory()) return 'dir';
  if (stats.isSymbolicLink()) return 'symlink';
  return 'file';
}

/**
 * Absolute paths with the state this process left them in. An event for such a path is ours when
 * the disk still shows exactly that state (same kind, inode, mtime and size); a user's edit right
 * after changes one of them and is scanned as usual.
 */
export class OwnWrites {
  private readonly entries = new Map<string, Entry>();

  /** `now`: the clock (tests); `max`: entries kept at most. */
  constructor(
    private readonly now: () => number = Date.now,
    private readonly max = OWN_WRITES_MAX,
  ) {}

  /**
   * Records the state a path was left in (undefined: removed). Entries whose window has passed are dropped as new
   * ones come (the map is in age order): a receiver installing 1,000 files a second holds the last few seconds' paths,
   * not the last 20,000 (an absolute path, an entry and three numbers each: ~4 MiB of heap at the bound, for paths
   * that were no longer looked at).
   */
  note(absPath: string, stats: Stats | undefined): void {
    const now = this.now();
    this.entries.delete(absPath); // re-inserted last, so the map stays in age order
    this.entries.set(absPath, {
      kind: kindOf(stats),
      ino: stats?.ino ?? 0,
      mtimeMs: stats?.mtimeMs ?? 0,
      size: stats?.isFile() ? stats.size : 0,
      expiresAtMs: now + OWN_WRITE_WINDOW_MS,
    });
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.max && entry.expiresAtMs >= now) break;
      this.entries.delete(oldest);
    }
  }

  /** Whether the disk at `absPath` (`stats`, undefined when gone) is as this process left it moments ago. */
  isOwn(absPath: string, stats: Stats | undefined): boolean {
    const entry = this.entries.get(absPath);
    if (!entry) return false;
    if (entry.expiresAtMs < this.now()) {
      this.entries.delete(absPath);
      return false;
    }
    if (entry.kind !== kindOf(stats)) return false;
    if (!stats || entry.kind === 'dir') return true;
    return stats.ino === entry.ino && stats.mtimeMs === entry.mtimeMs && (entry.kind !== 'file' || stats.size === entry.size);
  }

  /** Whether this process wrote `absPath` moments ago (whatever the disk shows now). */
  noted(absPath: string): boolean {
    const entry = this.entries.get(absPath);
    return entry !== undefined && entry.expiresAtMs >= this.now();
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The process's registry: the puller notes its writes, every folder watcher consults it. */
export const OWN_WRITES = new OwnWrites();
