// What the sync benchmarks need from two peers of one tool (Ferry or Syncthing) on loopback.

import type { PairSampler } from './lib.js';

export interface FolderTotals {
  files: number;
  bytes: number;
}

/** Two running instances of one tool: A holds the source folder, B receives it. */
export interface Pair {
  readonly tool: 'ferry' | 'syncthing';
  /** Starts both processes (no folder yet) and connects what can be connected before timing. */
  start(): Promise<void>;
  /** At t0: A shares `source`, B takes it into the empty `target`. */
  beginSync(source: string, target: string): Promise<void>;
  /** B holds `totals` and has nothing left to do. */
  complete(totals: FolderTotals): Promise<boolean>;
  /** Asks A to rescan its folder now. */
  rescan(): Promise<void>;
  /** Protocol bytes A has sent to B so far. */
  bytesSent(): Promise<number>;
  /** Starts sampling both processes' memory and CPU time. */
  sample(): PairSampler;
  stop(): Promise<void>;
}
