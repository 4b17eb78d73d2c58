// Applies one needed directory, symlink or deletion to disk, and the steps every kind of path shares: clearing a target (conflict copy or archive), recording the local version, asking for a scan when the disk changed.

import { lstat, readdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isFerryError } from '../errors.js';
import { compareVersions } from '../index/records.js';
import type { NeededPath } from '../index/types.js';
import { NAS_LITTER_NAMES, TEMP_FILE_PREFIX } from '../scan/ignore.js';
import { OWN_WRITES } from '../scan/own-writes.js';
import { chmodNoFollow } from '../scan/disk-path.js';
import { conflictPath, type ResolvedTarget } from './paths.js';
import type { Commit, PullContext, StepOutcome } from './pull-context.js';
import { asLocal, diskMatches } from './pull-records.js';

/** The disk steps of one pass; the folder lock is taken by the caller (directories, deletions) or here (symlinks). */
export class PullSteps {
  constructor(private readonly ctx: PullContext) {}


  async record(commit: Commit): Promise<void> {
    if (commit.records.length === 0) return;
    await this.ctx.index.putLocal(commit.records);
    commit.records = [];
    this.ctx.committed();
  }

  /** Our own version lost a conflict: it is kept under a conflict name, not archived. */
  private lostConflict(need: NeededPath): boolean {
    const { local, global } = need;
    return (
      local !== undefined &&
      !local.deleted &&
      local.modifiedBy === this.ctx.deviceShortId &&
      compareVersions(global.version, local.version) === 'concurrent'
    );
  }

  /**
   * Moves what is at the target out of the way: our losing version to its conflict name, anything
   * else to the archive. Returns the conflict copy's path, if one was made.
   */
  async clearTarget(need: NeededPath, target: ResolvedTarget, renameFollows = false): Promise<string | undefined> {
    if (!target.stats) return undefined;
    if (target.stats.isDirectory()) {
      await this.ctx.paths.io.rmdir(target.abs); // a directory replaced by a file: only when empty (children go first)
      this.ctx.paths.noteRemoved(target.parentAbs, target.diskName); // no longer a verified parent
      return undefined;
    }
    if (this.lostConflict(need)) {
      const local = need.local!;
      let copy = conflictPath(need.global.path, local.mtimeMs, local.modifiedBy);
      for (let n = 1; await exists(join(target.parentAbs, basename(copy))); n++) {
        copy = conflictPath(need.global.path, local.mtimeMs, `${local.modifiedBy}-${n}`);
      }
      this.ctx.paths.renameWithin(target, target.diskName, basename(copy));
      this.ctx.logger.info('conflict: our version kept as a copy', { path: need.global.path, copy });
      return copy;
    }
    // The version replaced is the local record's (diskMatches held): archived with the device that made it.
    const kept = need.local && !need.local.deleted ? { device: need.local.modifiedBy } : {};
    // A rename over the target follows: the old version stays at its name until then (a hard link
    // keeps it in the archive), so a failed install leaves it there, never an empty name.
    if (renameFollows && (await this.ctx.archive.keepLinked(target.diskRel, kept)) !== null) return undefined;
    await this.ctx.archive.keep(target.diskRel, kept);
    return undefined;
  }

  /** Under the folder lock: the directory exists with the global mode. */
  async pullDir(need: NeededPath, commit: Commit): Promise<StepOutcome> {
    const { global, local } = need;
    const target = await this.ctx.paths.resolve(global.path, { createParents: true });
    if (target.stats?.isDirectory()) {
      if ((target.stats.mode & 0o777) !== (global.mode & 0o777)) await chmodNoFollow(target.abs, global.mode & 0o777, this.ctx.paths.io);
    } else {
      if (!diskMatches(target.stats, local)) return this.changedOnDisk(global.path);
      const copy = await this.clearTarget(need, target);
      if (copy) commit.scans.push(copy);
      await this.ctx.paths.makeDir(target.abs, global.mode);
      await chmodNoFollow(target.abs, global.mode & 0o777, this.ctx.paths.io);
      this.ctx.paths.noteCreated(target.parentAbs, target.diskName);
    }
    commit.records.push(asLocal(global, await lstat(target.abs)));
    return 'done';
  }

  /**
   * A case-only rename arriving as "new A.txt" + "tombstone a.txt": apply the tombstone first, so the
   * two never coexist (on a case-insensitive disk they would be one file). False for a real clash.
   */
  async settleCaseRename(clashDiskRel: string): Promise<boolean> {
    const clashPath = clashDiskRel.normalize('NFC');
    const global = this.ctx.index.getGlobal(clashPath);
    const local = this.ctx.index.getLocal(clashPath);
    if (!global?.deleted || !local || local.deleted) return false;
    return this.ctx.exclusive(async () => {
      const commit: Commit = { records: [], scans: [] };
      const outcome = await this.pullDeletion({ global, local }, commit);
      await this.record(commit);
      return outcome === 'done';
    });
  }

  /**
   * Two names this volume cannot hold side by side (it is case-insensitive; a case-sensitive one has
   * no clashes): the incoming one is kept out and reported here, never written under another name
   * (a copy would be a new file that syncs back to every device).
   */
  keepClashApart(need: NeededPath, target: ResolvedTarget): StepOutcome {
    const reason = `differs only in case from ${target.clash}, which this case-insensitive volume cannot hold beside it`;
    this.ctx.outcome?.(need.global.path, 'refused', reason);
    return 'skipped';
  }

  /** Under the folder lock: the file goes to the archive, an empty directory goes, the tombstone is recorded. */
  async pullDeletion(need: NeededPath, commit: Commit): Promise<StepOutcome> {
    const { global, local } = need;
    if (local && !local.deleted) {
      let target: ResolvedTarget | undefined;
      try {
        target = await this.ctx.paths.resolve(global.path);
      } catch (err) {
        if (!isFerryError(err, 'IO') || (err.cause as { code?: string })?.code !== 'ENOENT') throw err;
      }
      if (target?.stats) {
        if (!diskMatches(target.stats, local)) return this.changedOnDisk(global.path);
        if (target.stats.isDirectory()) {
          if (!(await this.removeDir(target.abs))) {
            this.ctx.logger.info('deleted directory still holds local files; kept', { path: global.path });
            return this.changedOnDisk(global.path);
          }
        } else {
          await this.ctx.archive.keep(target.diskRel, local && !local.deleted ? { device: local.modifiedBy } : {});
        }
        this.ctx.paths.noteRemoved(target.parentAbs, target.diskName);
        OWN_WRITES.note(target.abs, undefined);
      }
    }
    commit.records.push(asLocal(global, undefined));
    return 'done';
  }

  /** rmdir, after clearing NAS litter and stale temp files; false when real files remain. */
  private async removeDir(abs: string): Promise<boolean> {
    try {
      await this.ctx.paths.io.rmdir(abs);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const names = await readdir(abs);
    if (!names.every((name) => NAS_LITTER_NAMES.has(name) || name.startsWith(TEMP_FILE_PREFIX))) return false;
    for (const name of names) await rm(join(abs, name), { recursive: true, force: true });
    await this.ctx.paths.io.rmdir(abs);
    return true;
  }

  /** The user changed the path since it was indexed: leave it, have it scanned (it becomes a newer version). */
  changedOnDisk(path: string): StepOutcome {
    this.ctx.logger.info('changed on disk since indexed; scanning before syncing it', { path });
    this.ctx.requestScan(path);
    return 'failed';
  }
}

export async function exists(abs: string): Promise<boolean> {
  try {
    await lstat(abs);
    return true;
  } catch {
    return false;
  }
}
