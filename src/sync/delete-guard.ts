// The mass-delete guard: when peers' deletions would remove more than half of a folder's files, or more than
// a set number, they are held (not applied) until the owner applies them or restores the files everywhere.

/** Below this many deletions the "more than half" rule does not hold anything (small folders change wholesale). */
export const MASS_DELETE_MIN_FILES = 50;
/** Deletions applied within this window count together: a mass delete that arrives in pieces is still one. */
export const MASS_DELETE_WINDOW_MS = 10 * 60_000;
/** Paths named in the report (the page shows a few examples). */
const EXAMPLES = 10;

/** A deletion that would remove a file present on this device. */
export interface DestructiveDeletion {
  path: string;
  /** Short ID of the device that deleted it. */
  modifiedBy: string;
}

export interface HeldDeletionsReport {
  /** Files whose deletion waits for the owner. */
  files: number;
  /** Short IDs of the devices that deleted them. */
  devices: string[];
  /** A few of the paths. */
  examples: string[];
  sinceMs: number;
  /** Why they are held: more than half of the folder, or more than `massDeleteFiles`. */
  reason: string;
}

export interface DeleteGuardOptions {
  /** Deletions above this many are held however large the folder (setting massDeleteFiles; 0 = only the half rule). */
  maxFiles: () => number;
  now?: () => number;
}

export class DeleteGuard {
  private held: Map<string, string> | null = null;
  private heldSinceMs = 0;
  private reason = '';
  /** The last review started a hold (it was not holding before): worth one log line. */
  newlyHeld = false;
  /** Paths the owner said to delete: applied whatever the counts. */
  private approved = new Set<string>();
  /** Deletions applied recently, with when, oldest first. */
  private recent: Array<{ atMs: number; files: number }> = [];
  private readonly now: () => number;

  constructor(private readonly options: DeleteGuardOptions) {
    this.now = options.now ?? Date.now;
  }

  isApproved(path: string): boolean {
    return this.approved.has(path);
  }

  /**
   * Decides on the deletions a pull pass is about to apply (approved ones are not passed in):
   * returns the paths to hold back (empty: apply them all). `presentFiles` counts the folder's
   * files here, those about to be deleted included.
   */
  review(deletions: DestructiveDeletion[], presentFiles: number): ReadonlySet<string> {
    const cutoff = this.now() - MASS_DELETE_WINDOW_MS;
    this.recent = this.recent.filter((entry) => entry.atMs > cutoff);
    if (deletions.length === 0) {
      this.held = null;
      return new Set();
    }
    const recently = this.recent.reduce((sum, entry) => sum + entry.files, 0);
    const total = deletions.length + recently;
    const before = presentFiles + recently;
    const max = this.options.maxFiles();
    let reason = '';
    this.newlyHeld = false;
    if (max > 0 && total > max) reason = `more than ${max} files (massDeleteFiles)`;
    else if (total >= MASS_DELETE_MIN_FILES && total * 2 > before) reason = `more than half of the folder's ${before} files`;
    if (!reason) {
      this.held = null;
      this.recent.push({ atMs: this.now(), files: deletions.length });
      return new Set();
    }
    if (!this.held) {
      this.heldSinceMs = this.now();
      this.newlyHeld = true;
    }
    this.reason = reason;
    this.held = new Map(deletions.map((d) => [d.path, d.modifiedBy]));
    return new Set(this.held.keys());
  }

  /** The owner's "apply": the held deletions go through on the next pass. */
  approve(): number {
    const count = this.held?.size ?? 0;
    for (const path of this.held?.keys() ?? []) this.approved.add(path);
    this.held = null;
    return count;
  }

  /** The paths held now (for the owner's "restore"); clears the hold. */
  takeHeld(): string[] {
    const paths = [...(this.held?.keys() ?? [])];
    this.held = null;
    return paths;
  }

  /** A deletion was applied (or is no longer wanted): it needs no approval any more. */
  settled(path: string): void {
    this.approved.delete(path);
  }

  /** After a pass: approvals for paths no longer pending are dropped. */
  keepApprovals(pending: ReadonlySet<string>): void {
    for (const path of this.approved) if (!pending.has(path)) this.approved.delete(path);
  }

  report(): HeldDeletionsReport | undefined {
    if (!this.held || this.held.size === 0) return undefined;
    const examples: string[] = [];
    for (const path of this.held.keys()) {
      if (examples.length >= EXAMPLES) break;
      examples.push(path);
    }
    return {
      files: this.held.size,
      devices: [...new Set(this.held.values())].sort(),
      examples,
      sinceMs: this.heldSinceMs,
      reason: this.reason,
    };
  }
}
