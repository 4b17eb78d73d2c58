// Whether an indexed path still exists on disk, for the scanner's deletion pass: one lstat per path, never via a symlinked parent.

import { join } from 'node:path';
import { NODE_FILE_READS, type FileReads } from '../util/file-io.js';
import { resolveDiskPath } from './disk-path.js';

/** Remembered verified parent directories (bounded; the cache only saves lstat calls). */
const MAX_VERIFIED_DIRS = 1024;

/** What is at a path, as far as deletions go; 'unreadable' counts as present (never delete what we cannot see). */
type DiskKind = 'syncable' | 'dir' | 'other' | 'unreadable' | 'gone';

/** True for errors that say the path is definitely not there (also when wrapped as a FerryError cause). */
export function isGone(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  const causeCode = ((err as { cause?: { code?: string } }).cause ?? {}).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || causeCode === 'ENOENT' || causeCode === 'ENOTDIR';
}

async function lstatKind(reads: FileReads, absPath: string): Promise<DiskKind> {
  try {
    const stats = await reads.lstat(absPath);
    if (stats.isDirectory()) return 'dir';
    return stats.isFile() || stats.isSymbolicLink() ? 'syncable' : 'other';
  } catch (err) {
    return isGone(err) ? 'gone' : 'unreadable';
  }
}

/** One per deletion pass: records arrive in path order, so parents verified once serve many children. */
export class DiskPresence {
  private readonly verifiedDirs = new Set<string>();

  /** `reads`: node:fs unless a test injects faults. */
  constructor(
    private readonly root: string,
    private readonly reads: FileReads = NODE_FILE_READS,
  ) {}

  /** Whether a file, directory or symlink exists at the indexed (NFC) path, reached through real directories. */
  async present(path: string): Promise<boolean> {
    const kind = await this.kindOf(path);
    return kind !== 'gone' && kind !== 'other';
  }

  private async kindOf(path: string): Promise<DiskKind> {
    const slash = path.lastIndexOf('/');
    if (slash > 0) {
      const parent = path.slice(0, slash);
      if (!this.verifiedDirs.has(parent)) {
        const parentKind = await this.kindOf(parent);
        if (parentKind === 'unreadable') return 'unreadable';
        if (parentKind !== 'dir') return 'gone'; // parent deleted, or replaced by a file or a symlink
        if (this.verifiedDirs.size >= MAX_VERIFIED_DIRS) this.verifiedDirs.clear();
        this.verifiedDirs.add(parent);
      }
    }
    let kind = await lstatKind(this.reads, join(this.root, path));
    if (kind === 'gone') {
      // The name may be on disk in another Unicode normalisation (NFD from a Mac).
      const diskPath = await resolveDiskPath(this.root, path, async (abs) => (await lstatKind(this.reads, abs)) !== 'gone');
      if (diskPath !== undefined) kind = await lstatKind(this.reads, join(this.root, diskPath));
    }
    return kind;
  }
}
