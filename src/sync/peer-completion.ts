// How complete each peer's copy of a folder is, as far as this device knows from the peer's index:
// the folder's global files (and bytes) whose version the peer has not announced yet.

import { isNeeded, presence } from '../index/counters.js';
import type { FolderIndex } from '../index/types.js';

export interface PeerCompletion {
  /** 0–100, by bytes (one decimal); below 100 whenever a file is still needed. */
  completion: number;
  needFiles: number;
  needBytes: number;
}

/** Least time between two full computations; grows with the folder (ten times what the last one took). */
const MIN_INTERVAL_MS = 1000;

/** The completion of `needBytes` out of `globalBytes`, never 100 while files are needed. */
export function completionOf(globalBytes: number, needFiles: number, needBytes: number): number {
  if (needFiles === 0) return 100;
  if (globalBytes <= 0) return 0;
  const percent = Math.floor((1000 * Math.max(0, globalBytes - needBytes)) / globalBytes) / 10;
  return Math.min(99.9, percent);
}

/** One pass over the global records, each compared with every peer's record of the same path. */
export function computePeerCompletion(index: FolderIndex, deviceIds: readonly string[]): Map<string, PeerCompletion> {
  const needs = new Map(deviceIds.map((id) => [id, { files: 0, bytes: 0 }]));
  let globalBytes = 0;
  for (const global of index.globalRecords()) {
    const wanted = presence(global);
    if (wanted.files === 0) continue;
    globalBytes += wanted.bytes;
    for (const [deviceId, need] of needs) {
      if (!isNeeded(index.getRemote(deviceId, global.path), global)) continue;
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

/**
 * Peer completion for status, computed again only when the index moved (a `stamp` the caller
 * derives from sequences and counters) and not more often than a fraction of the time it takes.
 */
export class PeerCompletionCache {
  private stamp: string | undefined;
  private atMs = 0;
  private costMs = 0;
  private values = new Map<string, PeerCompletion>();

  constructor(private readonly index: FolderIndex) {}

  get(deviceIds: readonly string[], stamp: string, now = Date.now()): Map<string, PeerCompletion> {
    const missing = deviceIds.some((id) => !this.values.has(id));
    const due = now - this.atMs >= Math.max(MIN_INTERVAL_MS, 10 * this.costMs);
    if (missing || (stamp !== this.stamp && due)) {
      const started = Date.now();
      this.values = computePeerCompletion(this.index, deviceIds);
      this.costMs = Date.now() - started;
      this.atMs = now;
      this.stamp = stamp;
    }
    return this.values;
  }
}
