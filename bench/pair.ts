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
  /** After beginSync() on empty folders: both sides hold the folder, idle, and are connected (bench/user.ts). */
  readyEmpty(): Promise<boolean>;
  /** Every process of each side (Syncthing: the monitor and its worker), for summed memory and CPU (bench/user.ts). */
  processes(): { a: number[]; b: number[] };
  /** Only A adds `path` as a folder (the scan comparison, bench/user.ts). */
  shareOnA(path: string): Promise<void>;
  /** A's folder is idle and indexes `files` files. */
  scannedOnA(files: number): Promise<boolean>;
}
