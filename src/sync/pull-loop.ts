// Runs one folder's pull passes: coalesces the requests for one, paces passes after failures and retries later, and keeps what the last pass left (its failure, ignored and unselected paths) for status.

import { isFerryError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { sleep } from '../util/abort.js';
import type { FailedItems } from './failed-items.js';
import type { PullOutcome } from './pull-context.js';
import type { PassResult } from './puller.js';

/** Least time between pull passes after one that had failures; also the first retry's wait when nothing else asks for a pass. */
const PASS_GAP_AFTER_FAILURE_MS = 1000;

export interface PullLoopOptions {
  /** One pass over everything needed (the puller's). */
  pass(signal: AbortSignal): Promise<PassResult>;
  /** No pass starts before this settles (see FolderSyncOptions.pullsAfter). */
  pullsAfter?: Promise<unknown>;
  /** The longest wait before a pass that left failures is retried (the wait doubles from 1 s up to this). */
  retryIntervalMs: number;
  logger: Logger;
  /** Aborted when the folder closes. */
  signal: AbortSignal;
  closed(): boolean;
  failed: FailedItems;
  reportFailed(path: string, reason: string, source: string): void;
}

export class PullLoop {
  private pulling: Promise<void> | null = null;
  private pullWanted = false;
  /** Every schedule() counted: a pass sweeps again when this moved. */
  private pullRequests = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Wait before the next retry: a failure that clears in a second (a busy peer, a file being rewritten) costs a
   * second, not the whole interval; one that persists backs off to retryIntervalMs. */
  private retryDelayMs: number | undefined;
  private error: string | undefined;
  /** The last file the puller could not sync this time round, and why (for a stalled folder's reason). */
  private failure: { path: string; reason: string } | undefined;
  /** Needed paths the last pull pass left alone because this device's .ferryignore ignores them. */
  private ignoredNeeded = 0;
  private ignoredInPass = 0;
  /** Needed paths the last pass left alone because they lie in subtrees this device does not take. */
  private unselectedNeeded = 0;
  private unselectedInPass = 0;

  constructor(private readonly options: PullLoopOptions) {}

  /** Whether a pass is running or about to. */
  get running(): boolean {
    return this.pulling !== null;
  }

  /** How many passes were asked for so far. */
  get requests(): number {
    return this.pullRequests;
  }

  /** Why the last pass failed as a whole, while no later one succeeded. */
  get lastError(): string | undefined {
    return this.error;
  }

  get lastPullFailure(): { path: string; reason: string } | undefined {
    return this.failure;
  }

  /** Needed paths the last pass left alone: ignored by .ferryignore, and in unselected subtrees. */
  get ignored(): number {
    return this.ignoredNeeded;
  }

  get unselected(): number {
    return this.unselectedNeeded;
  }

  /** The folder closes: no retry any more. */
  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /** Resolves once the pass running now (if any) has ended. */
  async ended(): Promise<void> {
    await this.pulling?.catch(() => undefined);
  }

  /** Resolves once no pull pass is running or wanted. */
  async idle(): Promise<void> {
    while (this.pulling) await this.pulling.catch(() => undefined);
  }

  /** Runs a pull pass soon (coalesced with one already running). */
  schedule(): void {
    if (this.options.closed()) return;
    this.pullRequests++;
    this.pullWanted = true;
    if (this.pulling) return;
    this.pulling = this.pullLoop().finally(() => {
      this.pulling = null;
    });
  }

  private async pullLoop(): Promise<void> {
    if (this.options.pullsAfter) await this.options.pullsAfter.catch(() => undefined);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    let failed = 0;
    while (this.pullWanted && !this.options.closed()) {
      // After failures, pace the passes: a path that keeps failing (and asking for scans) must not spin.
      if (failed > 0) await sleep(Math.min(PASS_GAP_AFTER_FAILURE_MS, this.options.retryIntervalMs), this.options.signal).catch(() => undefined);
      if (this.options.closed()) return;
      this.pullWanted = false;
      try {
        this.ignoredInPass = 0;
        this.unselectedInPass = 0;
        const result = await this.options.pass(this.options.signal);
        this.ignoredNeeded = this.ignoredInPass;
        this.unselectedNeeded = this.unselectedInPass;
        failed = result.failed;
        this.error = undefined;
        if (result.done > 0) this.options.logger.debug('pull pass', { ...result });
      } catch (err) {
        if (isFerryError(err, 'ABORTED') || this.options.closed()) return;
        failed = 1;
        this.error = `pull failed: ${err instanceof Error ? err.message : String(err)}`;
        this.options.logger.error(this.error);
      }
    }
    if (failed === 0) {
      this.retryDelayMs = undefined;
    } else if (!this.options.closed()) {
      const longest = this.options.retryIntervalMs;
      const delay = Math.min(this.retryDelayMs ?? PASS_GAP_AFTER_FAILURE_MS, longest);
      this.retryDelayMs = Math.min(delay * 2, longest);
      this.retryTimer = setTimeout(() => this.schedule(), delay);
      this.retryTimer.unref();
    }
  }

  /** What the puller made of one path: a refused name is a failed item; a retryable failure names a stall. */
  outcome(path: string, outcome: PullOutcome, reason?: string): void {
    if (outcome === 'unselected') {
      this.unselectedInPass++;
    } else if (outcome === 'ignored') {
      this.ignoredInPass++;
    } else if (outcome === 'done') {
      this.options.failed.clear(path, 'local');
      if (this.failure?.path === path) this.failure = undefined;
    } else if (outcome === 'refused') {
      this.options.reportFailed(path, reason ?? 'refused', 'local');
    } else {
      this.failure = { path, reason: reason ?? 'failed' };
    }
  }
}
