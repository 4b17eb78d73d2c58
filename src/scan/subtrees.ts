// SubtreeSet: the subtrees waiting for a rescan, bounded; too many fold into their nearest common ancestors, not the root.

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

function depthOf(path: string): number {
  if (path === '') return 0;
  let depth = 1;
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) depth++;
  return depth;
}

/**
 * Relative '/'-separated paths ('' = the whole folder) of which none lies inside another. Adding a
 * path inside one already held is a no-op. Past `max` paths the deepest are replaced by their
 * parents, a level at a time, until a quarter of the room is free again: edits in two corners of a
 * big folder stay two small rescans, and only more top-level directories than `max` fold into ''.
 */
export class SubtreeSet {
  private readonly paths = new Set<string>();
  private readonly max: number;

  constructor(max: number) {
    this.max = Math.max(1, Math.floor(max));
  }

  get size(): number {
    return this.paths.size;
  }

  /** True when `path` or one of its ancestors is held. */
  covers(path: string): boolean {
    if (this.paths.has('')) return true;
    for (let p = path; p !== ''; p = parentOf(p)) if (this.paths.has(p)) return true;
    return false;
  }

  add(path: string): void {
    if (this.covers(path)) return;
    if (path === '') this.paths.clear();
    this.paths.add(path);
    if (this.paths.size > this.max) this.foldTo(Math.floor((this.max * 3) / 4));
  }

  /** The held paths, outermost only, sorted; the set is empty afterwards. */
  take(): string[] {
    const taken = this.outermost();
    this.paths.clear();
    return taken.sort();
  }

  /** Drops paths that lie inside another held path (add keeps none inside an earlier one, not the reverse). */
  private outermost(): string[] {
    if (this.paths.has('')) return [''];
    return [...this.paths].filter((path) => {
      for (let p = parentOf(path); p !== ''; p = parentOf(p)) if (this.paths.has(p)) return false;
      return true;
    });
  }

  /** Lifts the deepest paths to their parents, a level at a time, until at most `limit` remain. */
  foldTo(limit: number): void {
    const target = Math.max(1, Math.floor(limit));
    let current = this.outermost();
    while (current.length > target) {
      let deepest = 0;
      for (const path of current) deepest = Math.max(deepest, depthOf(path));
      const lifted = new Set(current.map((path) => (depthOf(path) === deepest ? parentOf(path) : path)));
      this.paths.clear();
      for (const path of lifted) this.paths.add(path);
      current = this.outermost();
    }
    this.paths.clear();
    for (const path of current) this.paths.add(path);
  }
}

/** Merges changed paths into at most `max` subtrees, lifting the deepest to their parents first. */
export function coalescePaths(paths: Iterable<string>, max: number): string[] {
  const set = new SubtreeSet(Number.MAX_SAFE_INTEGER);
  for (const path of paths) set.add(path);
  set.foldTo(max);
  return set.take();
}
