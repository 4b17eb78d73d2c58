// A folder's failed items: paths that were skipped (a peer's record refused, a name this device cannot hold, a local entry the scanner refused), with the reason, bounded.

import { printable } from '../util/format.js';

/** Where a failure came from: a peer's device ID, or 'local' (the scanner, the puller). */
export type FailureSource = string;

export interface FailedItem {
  path: string;
  reason: string;
  source: FailureSource;
  atMs: number;
}

/** @default of FailedItems' capacity: paths remembered per folder (the oldest go first). */
export const MAX_FAILED_ITEMS = 1000;
/** Characters of a path or reason kept (peer input: bounded). */
const MAX_TEXT_CHARS = 1024;

export { printable };

/** Per-folder list of failed items, keyed by path (the latest reason wins), at most `capacity` long. */
export class FailedItems {
  private readonly items = new Map<string, FailedItem>();
  /** Failures forgotten because the list was full. */
  private dropped = 0;

  constructor(private readonly capacity = MAX_FAILED_ITEMS) {}

  /** Records (or refreshes) a failure of `path`. Returns true when the path was not listed yet. */
  report(path: string, reason: string, source: FailureSource, atMs = Date.now()): boolean {
    const key = path.slice(0, MAX_TEXT_CHARS);
    const fresh = !this.items.has(key);
    this.items.delete(key);
    this.items.set(key, { path: printable(path), reason: printable(reason), source: printable(source), atMs });
    while (this.items.size > this.capacity) {
      const oldest = this.items.keys().next().value as string;
      this.items.delete(oldest);
      this.dropped++;
    }
    return fresh;
  }

  /** The path is no longer failed (for `source` only, when given: another source's failure of it stands). */
  clear(path: string, source?: FailureSource): void {
    const key = path.slice(0, MAX_TEXT_CHARS);
    if (source === undefined || this.items.get(key)?.source === printable(source)) this.items.delete(key);
  }

  /** Forgets every failure reported by `source` (a peer that starts its index over). */
  clearSource(source: FailureSource): void {
    for (const [key, item] of this.items) if (item.source === source) this.items.delete(key);
  }

  has(path: string): boolean {
    return this.items.has(path.slice(0, MAX_TEXT_CHARS));
  }

  /** Failed paths listed, plus those forgotten for lack of room. */
  get count(): number {
    return this.items.size + this.dropped;
  }

  /** The newest `limit` failures, newest first. */
  list(limit = 100): FailedItem[] {
    const all = [...this.items.values()];
    return all.slice(Math.max(0, all.length - limit)).reverse();
  }
}
