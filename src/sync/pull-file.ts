// Brings one file to its global version: moved from a renamed local file when one holds its content, else fetched into a temp file and installed; tracks those temp files and their bytes so far.

import { lstat, readlink, rename, rm } from 'node:fs/promises';
import { parentOfDiskRel } from '../scan/disk-path.js';
import { compareVersions, type FileRecord } from '../index/records.js';
import type { NeededPath } from '../index/types.js';
import { OWN_WRITES } from '../scan/own-writes.js';
import { BufferPool } from '../util/buffer-pool.js';
import { directWriteBuffers, fetchIntoTemp } from './fetcher.js';
import { BatchInstaller } from './installer.js';
import { childPath, tempName } from './paths.js';
import type { PullContext, StepOutcome } from './pull-context.js';
import { asLocal, diskMatches, sameContent } from './pull-records.js';
import { exists, type PullSteps } from './pull-steps.js';
import { RenameSources } from './rename-sources.js';

/** Idle buffers kept for local block copies. */
const LOCAL_COPY_IDLE_BYTES = 8 * 1024 * 1024;

export class FilePuller {
  /** Files moved by moveRenamedSource this pass: old path → where the content is now (absolute). */
  private readonly moved = new Map<string, string>();
  /** Temp files this process fetched into and has not installed: path and version each one is for. */
  private readonly temps = new Map<string, { path: string; version: FileRecord['version'] }>();
  /** Bytes written so far into the temp file of each file being fetched. */
  private readonly partial = new Map<string, number>();

  /** Single-block files whose deletion is due this pass, by hash: a rename's source (the puller fills it). */
  readonly renameSources = new RenameSources();
  private readonly installer: BatchInstaller;
  /** For blocks copied from local files (a rename or an edit rebuilds from them). */
  private readonly buffers = new BufferPool(LOCAL_COPY_IDLE_BYTES);
  private readonly directBuffers = directWriteBuffers();

  constructor(
    private readonly ctx: PullContext,
    private readonly steps: PullSteps,
  ) {
    this.installer = new BatchInstaller({
      index: ctx.index,
      paths: ctx.paths,
      exclusive: (work) => ctx.exclusive(work),
      diskMatches,
      changedOnDisk: (path) => this.steps.changedOnDisk(path) as 'failed',
      clearTarget: (need, target) => this.steps.clearTarget(need, target, true),
      asLocal,
      installed: (tempAbs, abs) => {
        this.temps.delete(tempAbs);
        // A moved file's blocks are read by other files from wherever it is now.
        for (const [path, at] of this.moved) if (at === tempAbs) this.moved.set(path, abs);
      },
      requestScan: (path) => ctx.requestScan(path),
      committed: () => ctx.committed(),
      warmFiles: ctx.warmFiles,
    });
  }

  /** Bytes of the files being fetched already in their temp files. */
  partialBytes(): number {
    let total = 0;
    for (const bytes of this.partial.values()) total += bytes;
    return total;
  }

  /**
   * Removes temp files of versions nobody needs any more (superseded while or after they were
   * fetched, or abandoned when the file changed on disk); temps of still-needed versions stay for reuse.
   */
  async sweepTemps(): Promise<void> {
    for (const [tempAbs, { path, version }] of this.temps) {
      const global = this.ctx.index.getGlobal(path);
      const local = this.ctx.index.getLocal(path);
      const stillNeeded =
        global !== undefined &&
        !global.deleted &&
        compareVersions(global.version, version) === 'equal' &&
        !(local && compareVersions(local.version, version) === 'equal');
      if (stillNeeded) continue;
      this.temps.delete(tempAbs);
      await rm(tempAbs, { force: true }).catch(() => undefined);
    }
  }

  /** The pass is over: files moved this pass are where their installs put them (or back). */
  endPass(): void {
    this.moved.clear();
    this.renameSources.clear();
  }

  /** `fetched`: told once the content is in its temp file and only the install is left (the puller's slot is free then). */
  async pullFile(need: NeededPath, signal: AbortSignal, fetched?: () => void): Promise<StepOutcome> {
    const { global, local } = need;
    let target = await this.ctx.paths.resolve(global.path, { createParents: true });
    if (target.clash) {
      const settled = await this.steps.settleCaseRename(target.clash);
      if (!settled) return this.steps.keepClashApart(need, target);
      target = await this.ctx.paths.resolve(global.path, { createParents: true });
    }
    // Same content already here (metadata change, or an identical concurrent edit): no transfer; mode and mtime
    // applied with other installs under one hold of the lock and one index commit.
    if (local && sameContent(local, global) && diskMatches(target.stats, local)) return this.installer.applyMetadata(need);
    const tempAbs = childPath(target.parentAbs, tempName(global.path, global.version));
    this.temps.set(tempAbs, { path: global.path, version: global.version });
    const movedFrom = await this.moveRenamedSource(global, tempAbs);
    if (!movedFrom) {
      const durable = await this.fetch(global, tempAbs, signal);
      fetched?.();
      // Installed with whatever else finished meanwhile: one lock hold, one index commit per batch (and
      // the data of its small files made durable together, before their renames).
      return this.installer.install(need, tempAbs, durable);
    }
    let outcome: StepOutcome = 'failed';
    try {
      outcome = await this.installer.install(need, tempAbs);
    } finally {
      if (outcome !== 'done') await this.moveBack(movedFrom, tempAbs);
    }
    return outcome;
  }

  /**
   * A symlink: made beside its target under a temp name (through the target's directory held open, never a symlinked
   * parent), then renamed over it by the installer with the other installs of its batch.
   */
  async pullSymlink(need: NeededPath): Promise<StepOutcome> {
    const { global, local } = need;
    const target = await this.ctx.paths.resolve(global.path, { createParents: true });
    if (target.clash) return this.steps.keepClashApart(need, target);
    if (target.stats?.isSymbolicLink() && (await readlink(target.abs)) === global.linkTarget) return this.installer.installSymlink(need, null);
    if (!diskMatches(target.stats, local)) return this.steps.changedOnDisk(global.path);
    const name = tempName(global.path, global.version);
    const parent = this.ctx.paths.dirs.open(parentOfDiskRel(target));
    try {
      await rm(parent.entry(name), { force: true });
      await this.ctx.paths.io.symlink(global.linkTarget!, parent.entry(name));
    } finally {
      parent.close();
    }
    const tempAbs = childPath(target.parentAbs, name);
    const outcome = await this.installer.installSymlink(need, tempAbs).catch(async (err: unknown) => {
      await rm(tempAbs, { force: true }).catch(() => undefined);
      throw err;
    });
    if (outcome !== 'done') await rm(tempAbs, { force: true }).catch(() => undefined);
    return outcome;
  }

  /** Fills the temp file; false when its data is not durable yet (see fetchIntoTemp). */
  private async fetch(global: FileRecord, tempAbs: string, signal: AbortSignal): Promise<boolean> {
    const path = global.path;
    try {
      return await this.fetchBlocks(global, tempAbs, signal, (bytes) => this.partial.set(path, (this.partial.get(path) ?? 0) + bytes));
    } finally {
      this.partial.delete(path);
    }
  }

  private async fetchBlocks(global: FileRecord, tempAbs: string, signal: AbortSignal, progress: (bytes: number) => void): Promise<boolean> {
    const prefetched = global.size > 0 ? await this.ctx.adoptPrefetched?.(global, tempAbs) : undefined;
    return fetchIntoTemp({
      ...(prefetched ? { prefetched } : {}),
      progress,
      folderId: this.ctx.folderId,
      root: this.ctx.root,
      index: this.ctx.index,
      record: global,
      tempAbs,
      peers: global.size > 0 ? this.ctx.peersFor(global) : [],
      budget: this.ctx.budget,
      buffers: this.buffers,
      direct: this.directBuffers,
      relocated: (path) => this.moved.get(path),
      stats: this.ctx.stats,
      download: this.ctx.download,
      signal,
      logger: this.ctx.logger,
      io: this.ctx.paths.io,
      dirs: this.ctx.paths.dirs,
    });
  }

  /**
   * A renamed or moved file arrives as a new path plus a tombstone for the old one. When a local
   * file whose deletion is due holds exactly the new content (and the disk still matches its
   * record), it is moved to the new path's temp file instead of being copied block by block: a
   * 1 GiB rename costs one rename. The old path's deletion then finds nothing left to archive.
   */
  private async moveRenamedSource(global: FileRecord, tempAbs: string): Promise<{ path: string; abs: string } | undefined> {
    if (global.size === 0 || global.blocks.length === 0) return undefined;
    const source = this.ctx.index.findBlock(global.blocks[0]!)?.path ?? this.renameSources.find(global.blocks[0]!);
    if (source === undefined || source === global.path || this.moved.has(source)) return undefined;
    const dueForDeletion = (): FileRecord | undefined => {
      const holder = this.ctx.index.getLocal(source);
      const tombstone = this.ctx.index.getGlobal(source);
      if (!holder || !tombstone?.deleted || !sameContent(holder, global)) return undefined;
      // Only a deletion that will really be applied (not an RO or conflicting local edit that stays).
      return compareVersions(holder.version, tombstone.version) === 'older' ? holder : undefined;
    };
    if (!dueForDeletion()) return undefined;
    return this.ctx.exclusive(async () => {
      const holder = dueForDeletion();
      if (!holder || this.moved.has(source)) return undefined;
      try {
        const from = await this.ctx.paths.resolve(source);
        if (!from.stats || !diskMatches(from.stats, holder)) return undefined;
        await rename(from.abs, tempAbs);
        // Other files pulled meanwhile copy the same blocks from here.
        this.moved.set(source, tempAbs);
        this.ctx.paths.noteRemoved(from.parentAbs, from.diskName);
        OWN_WRITES.note(from.abs, undefined);
        return { path: source, abs: from.abs };
      } catch (err) {
        // Another file system below the folder (EXDEV), an unsafe path: copy the blocks instead.
        this.ctx.logger.debug('cannot move a renamed file; copying it', { path: global.path, from: source, err: err instanceof Error ? err : String(err) });
        return undefined;
      }
    });
  }

  /** The moved file could not be installed: it goes back where it was (its deletion then archives it as usual). */
  private async moveBack(from: { path: string; abs: string }, tempAbs: string): Promise<void> {
    this.moved.delete(from.path);
    await this.ctx.exclusive(async () => {
      if (await exists(from.abs)) return; // something new is there: the temp stays and is reused or swept
      await rename(tempAbs, from.abs).catch(() => undefined);
      OWN_WRITES.note(from.abs, await lstat(from.abs).catch(() => undefined));
    });
  }
}
