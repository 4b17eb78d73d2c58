// How complete each peer's copy of a folder is, as far as this device knows from the peer's index:
// the folder's global files (and bytes) whose version the peer has not announced yet.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { isVersionNeeded, presence } from '../index/counters.js';
import type { FolderIndex } from '../index/types.js';

export interface PeerCompletion {
  /** 0–100, by bytes (one decimal); below 100 whenever a file is still needed. */
  completion: number;
  needFiles: number;
  needBytes: number;
}

/** Least time between two computations; grows with the folder (twenty times what the last one took: at most 5 % of a core). */
const MIN_INTERVAL_MS = 2000;
/** Folders with at most this many files are worked out at once (a few ms); larger ones in the background. */
const SYNC_LIMIT_FILES = 2000;
/** Global records compared between two yields to the event loop. */
const CHUNK_RECORDS = 1000;
/**
 * Least time between two computations per global file (1 ms: 100 s at 100,000 files, 1,000 s at 1,000,000). A pass
 * reads every global record and each peer's entry for it: at 1,000,000 files in a 256 MiB cgroup, passes a status poll
 * started every few seconds while the index moved (a first scan) pushed the scan's own pages out of the page cache, and
 * the scan crawled at 11-40 files/s. While the index moves the last figures are shown meanwhile; once it is quiet, the
 * next poll after the interval has the final ones.
 */
const INTERVAL_MS_PER_FILE = 1;

/** The completion of `needBytes` out of `globalBytes`, never 100 while files are needed. */
export function completionOf(globalBytes: number, needFiles: number, needBytes: number): number {
  if (needFiles === 0) return 100;
  if (globalBytes <= 0) return 0;
  const percent = Math.floor((1000 * Math.max(0, globalBytes - needBytes)) / globalBytes) / 10;
  return Math.min(99.9, percent);
}

/**
 * One pass over the global records, each compared with every peer's record of the same path;
 * yields after each chunk, returns the result.
 */
function* completionSteps(index: FolderIndex, deviceIds: readonly string[]): Generator<void, Map<string, PeerCompletion>> {
  const needs = new Map(deviceIds.map((id) => [id, { files: 0, bytes: 0 }]));
  let globalBytes = 0;
  let seen = 0;
  for (const global of index.globalRecords()) {
    if (++seen % CHUNK_RECORDS === 0) yield;
    const wanted = presence(global);
    if (wanted.files === 0) continue;
    globalBytes += wanted.bytes;
    for (const [deviceId, need] of needs) {
      if (!isVersionNeeded(index.remoteVersion(deviceId, global.path), global)) continue;
      need.files++;
      need.bytes += wanted.bytes;
    }
  }
  const result = new Map<string, PeerCompletion>();
  for (const [deviceId, need] of needs) {
    result.set(deviceId, { completion: completionOf(globalBytes, need.files, need.bytes), needFiles: need.files, needBytes: need.bytes });
  }
  return result;
}

/** Every peer's completion, worked out at once. */
export function computePeerCompletion(index: FolderIndex, deviceIds: readonly string[]): Map<string, PeerCompletion> {
  const steps = completionSteps(index, deviceIds);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * Peer completion for status, worked out again only when the index moved (a `stamp` the caller
 * derives from sequences and counters), not more often than twenty times what it takes, and for a
 * large folder in the background in chunks (status shows the last result meanwhile).
 */
export class PeerCompletionCache {
  private stamp: string | undefined;
  private atMs = 0;
  private costMs = 0;
  private values = new Map<string, PeerCompletion>();
  private running = false;
  private closed = false;

  constructor(
    private readonly index: FolderIndex,
    private readonly failed: (err: unknown) => void,
    private readonly syncLimitFiles = SYNC_LIMIT_FILES,
  ) {}

  /** The known completions (a peer is missing until its first computation in a large folder ends). */
  get(deviceIds: readonly string[], stamp: string, globalFiles: number, now = Date.now()): Map<string, PeerCompletion> {
    if (this.running || this.closed) return this.values;
    // No peer known (a folder shared by this device alone so far): nothing to work out, and no pass over the records.
    if (deviceIds.length === 0) return this.values.size === 0 ? this.values : (this.values = new Map());
    const missing = deviceIds.some((id) => !this.values.has(id));
    const due = now - this.atMs >= Math.max(MIN_INTERVAL_MS, 20 * this.costMs, globalFiles * INTERVAL_MS_PER_FILE);
    if (!missing && (stamp === this.stamp || !due)) return this.values;
    this.atMs = now;
    this.stamp = stamp;
    if (globalFiles <= this.syncLimitFiles) {
      const started = performance.now();
      try {
        this.values = computePeerCompletion(this.index, deviceIds);
      } catch (err) {
        this.failed(err);
      }
      this.costMs = performance.now() - started;
    } else {
      this.running = true;
      void this.inBackground([...deviceIds]).finally(() => (this.running = false));
    }
    return this.values;
  }

  close(): void {
    this.closed = true;
  }

  private async inBackground(deviceIds: string[]): Promise<void> {
    const steps = completionSteps(this.index, deviceIds);
    let cost = 0;
    try {
      for (;;) {
        const started = performance.now();
        const step = steps.next();
        cost += performance.now() - started;
        if (step.done) {
          this.values = step.value;
          break;
        }
        await yieldToLoop();
        if (this.closed) return;
      }
    } catch (err) {
      if (!this.closed) this.failed(err);
    }
    this.costMs = cost;
    this.atMs = Date.now();
  }
}
