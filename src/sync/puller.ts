// The puller: brings the disk to the global versions, directories first, then files and symlinks, then deletions (children first).

import { isDiskFull, isFerryError } from '../errors.js';
import { compareVersions } from '../index/records.js';
import type { NeededPath } from '../index/types.js';
import { IgnoreRules, isLocalOnly } from '../scan/ignore.js';
import { throwIfAborted } from '../util/abort.js';
import { refusedName } from '../util/names.js';
import type { DestructiveDeletion } from './delete-guard.js';
import type { Commit, PullContext, StepOutcome } from './pull-context.js';
import { FilePuller } from './pull-file.js';
import { sameContent } from './pull-records.js';
import { PullSteps } from './pull-steps.js';

export interface PassResult {
  done: number;
  /** Failed for now (no source, I/O error, changed on disk): worth another pass later. */
  failed: number;
  /** Left alone on purpose (unsafe path, ignored, RO local change, clash already kept apart). */
  skipped: number;
}

/** Directories or deletions applied under one hold of the folder lock and one index transaction. */
const COMMIT_BATCH = 200;
/**
 * Files fetched and waiting for their install batch, at most, per file being fetched: a file's fetch slot
 * is free once its content is in its temp file, so fetching goes on while a batch is made durable and
 * installed (each batch's fdatasyncs, directory fsync and index commit took the whole pipeline's slots).
 */
const AWAITING_INSTALL_PER_SLOT = 8;

export class Puller {
  private ignore = IgnoreRules.builtIn();
  /** The files (and symlinks) the current pass is fetching. */
  private running: ReadonlyMap<string, unknown> = new Map();
  /** Directories, symlinks and deletions on disk. */
  private readonly steps: PullSteps;
  /** Files: moved, or fetched and installed. */
  private readonly files: FilePuller;

  constructor(private readonly ctx: PullContext) {
    this.steps = new PullSteps(ctx);
    this.files = new FilePuller(ctx, this.steps);
  }

  /** How many files are being fetched now. */
  inProgress(): number {
    return this.running.size;
  }


  /** Bytes of the files being fetched already in their temp files. */
  partialBytes(): number {
    return this.files.partialBytes();
  }

  /** One pass over everything needed. Throws only ABORTED (and errors reading the index). */
  async pass(signal: AbortSignal): Promise<PassResult> {
    const result: PassResult = { done: 0, failed: 0, skipped: 0 };
    this.ctx.paths.forget();
    this.ignore = (await IgnoreRules.load(this.ctx.root).catch(() => IgnoreRules.builtIn())).withExcluded(this.ctx.excluded);
    const count = (outcome: StepOutcome): void => void result[outcome]++;
    const renames = this.files.renameSources;
    renames.clear();
    // The directories' walk over the needed paths also notes the small files whose deletion is due (rename sources).
    const isDir = (need: NeededPath): boolean => {
      renames.note(need);
      return need.global.type === 'dir' && !need.global.deleted;
    };
    await this.inBatches(this.ctx.index.needed(), isDir, (need, commit) => this.steps.pullDir(need, commit), count, signal);
    const running = new Map<string, Promise<void>>();
    this.running = running;
    /** Paths this pass tried and left needed (failed or skipped): not tried again until the next pass. */
    const attempted = new Set<string>();
    /** Files of `running` still fetching (the others wait for their install). */
    let fetching = 0;
    let slotFreed: (() => void) | null = null;
    const wakeLoop = (): void => {
      const wake = slotFreed;
      slotFreed = null;
      wake?.();
    };
    const busy = (): boolean => fetching >= this.ctx.maxFilesInFlight || running.size >= this.ctx.maxFilesInFlight * (1 + AWAITING_INSTALL_PER_SLOT);
    for (let requestsSeen = this.ctx.pullRequests(), sweep = true; sweep; ) {
      for (const need of this.ctx.index.needed()) {
        throwIfAborted(signal);
        const { path } = need.global;
        if (need.global.deleted) renames.note(need); // arrived since the directories were walked
        if (need.global.type === 'dir' || need.global.deleted || running.has(path) || attempted.has(path)) continue;
        while (busy()) await new Promise<void>((resolve) => (slotFreed = resolve));
        fetching++;
        let released = false;
        const fetched = (): void => {
          if (released) return;
          released = true;
          fetching--;
          wakeLoop();
        };
        const task = this.guard(need, () => (need.global.type === 'symlink' ? this.files.pullSymlink(need) : this.files.pullFile(need, signal, fetched)))
          .then((outcome) => {
            count(outcome);
            if (outcome !== 'done') attempted.add(path);
          })
          .finally(() => {
            running.delete(path);
            fetched();
            wakeLoop();
          });
        task.catch(() => undefined); // ABORTED: thrown by the Promise.all below, never unhandled meanwhile
        running.set(path, task);
      }
      // Records that arrived meanwhile (a peer still scanning, say) are pulled now, beside the large
      // files still in flight, instead of after them in the next pass.
      const requests = this.ctx.pullRequests();
      sweep = requests !== requestsSeen;
      requestsSeen = requests;
    }
    await Promise.all(running.values());
    throwIfAborted(signal);
    const held = await this.reviewDeletions();
    const isDeletion = (need: NeededPath): boolean => need.global.deleted && !held.has(need.global.path);
    await this.inBatches(this.ctx.index.needed({ reverse: true }), isDeletion, (need, commit) => this.steps.pullDeletion(need, commit), count, signal);
    await this.files.sweepTemps();
    this.files.endPass();
    // Nothing of the folder stays open between passes: its disk can be unmounted once the folder is idle.
    this.ctx.paths.dirs.closeIdle();
    return result;
  }

  /**
   * The deletion phase's check: deletions of files still on disk here go to the guard, which may hold
   * them all back (a mass delete). Renamed-away files (already moved) and approved paths are not counted.
   */
  private async reviewDeletions(): Promise<ReadonlySet<string>> {
    const guard = this.ctx.deleteGuard;
    if (!guard) return new Set();
    const destructive: DestructiveDeletion[] = [];
    const pending = new Set<string>();
    for (const { global, local } of this.ctx.index.needed({ reverse: true })) {
      if (!global.deleted || !local || local.deleted || local.type === 'dir') continue;
      pending.add(global.path);
      if (guard.isApproved(global.path)) continue;
      const target = await this.ctx.paths.resolve(global.path).catch(() => undefined);
      if (target?.stats) destructive.push({ path: global.path, modifiedBy: global.modifiedBy });
    }
    guard.keepApprovals(pending);
    const held = guard.review(destructive, this.ctx.index.counts().localFiles);
    if (guard.newlyHeld) {
      const report = guard.report();
      this.ctx.logger.warn('mass delete held: apply or restore it in the page or with `ferry deletions`', {
        files: held.size,
        devices: report?.devices.join(','),
        reason: report?.reason,
      });
    }
    return held;
  }


  /**
   * Directories and deletions are cheap on disk: up to COMMIT_BATCH of them are applied under one
   * hold of the folder lock and recorded in one index transaction.
   */
  private async inBatches(
    needs: Iterable<NeededPath>,
    select: (need: NeededPath) => boolean,
    apply: (need: NeededPath, commit: Commit) => Promise<StepOutcome>,
    count: (outcome: StepOutcome) => void,
    signal: AbortSignal,
  ): Promise<void> {
    let chunk: NeededPath[] = [];
    const flush = async (): Promise<void> => {
      const batch = chunk;
      chunk = [];
      if (batch.length === 0) return;
      const commit: Commit = { records: [], scans: [] };
      await this.ctx.exclusive(async () => {
        for (const need of batch) count(await this.guard(need, () => apply(need, commit)));
        await this.steps.record(commit);
      });
      for (const path of commit.scans) this.ctx.requestScan(path);
    };
    for (const need of needs) {
      throwIfAborted(signal);
      if (!select(need)) continue;
      chunk.push(need);
      if (chunk.length >= COMMIT_BATCH) await flush();
    }
    await flush();
  }

  private async guard(need: NeededPath, work: () => Promise<StepOutcome>): Promise<StepOutcome> {
    const { path, type } = need.global;
    if (isLocalOnly(path)) return 'skipped'; // a peer's .ferryignore stored before it became local-only
    if (this.ignore.unselected(path)) {
      // Counted as the index counts what is needed: files and symlinks, not directories or deletions.
      if (type !== 'dir' && !need.global.deleted) this.ctx.outcome?.(path, 'unselected');
      return 'skipped';
    }
    if (this.ignore.ignores(path, type === 'dir')) {
      this.ctx.outcome?.(path, 'ignored');
      return 'skipped';
    }
    // Names this device does not write (a deletion of one is never refused for portability: removing is harmless).
    const refused = refusedName(path, { portable: this.ctx.portableNames === true && !need.global.deleted });
    if (refused !== undefined) {
      this.ctx.outcome?.(path, 'refused', refused);
      return 'skipped';
    }
    if (this.ctx.readOnly && need.local && compareVersions(need.local.version, need.global.version) === 'concurrent') {
      // An RO device's own edit: kept until the user reverts it, unless it already equals the global version.
      if (!sameContent(need.local, need.global)) return 'skipped';
    }
    try {
      const outcome = await work();
      if (outcome === 'done') this.ctx.outcome?.(path, 'done');
      return outcome;
    } catch (err) {
      if (isFerryError(err, 'ABORTED')) throw err;
      const reason = err instanceof Error ? err.message : String(err);
      if (isFerryError(err, 'PATH_UNSAFE')) {
        this.ctx.logger.warn('refusing an unsafe path', { path, err });
        this.ctx.outcome?.(path, 'refused', reason);
        return 'skipped';
      }
      this.ctx.logger.warn('cannot sync, will retry', { path, err: err instanceof Error ? err : String(err) });
      // Said plainly: a full disk is not a peer's fault, and the folder reports it as such.
      const why = isDiskFull(err) && !isFerryError(err, 'DISK_FULL') ? `the folder's disk is full: ${reason}` : reason;
      this.ctx.outcome?.(path, 'failed', why);
      return 'failed';
    }
  }
}
