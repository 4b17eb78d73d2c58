// What the puller needs from its folder, and what its steps report: shared by puller.ts, pull-steps.ts and pull-file.ts.

import type { FileRecord } from '../index/records.js';
import type { FolderIndex, NewFileRecord } from '../index/types.js';
import type { WarmFiles } from '../scan/warm-files.js';
import type { Logger } from '../util/log.js';
import type { Archive } from './archive.js';
import type { ByteBudget } from './budget.js';
import type { DeleteGuard } from './delete-guard.js';
import type { BlockPeer, TransferStats } from './fetcher.js';
import type { DiskPaths } from './paths.js';
import type { RateLimiter } from './rate-limit.js';

/** What the puller needs from its folder. */
export interface PullContext {
  readonly folderId: Buffer;
  readonly root: string;
  readonly index: FolderIndex;
  readonly archive: Archive;
  readonly paths: DiskPaths;
  /** The folder's "portable names" option: names Windows and SMB cannot hold are not written. */
  readonly portableNames?: boolean;
  /** Subtrees this device does not take (selective sync): neither fetched nor deleted here. */
  readonly excluded?: readonly string[];
  readonly deviceShortId: string;
  /** RO folder: local edits are kept (never overwritten) until reverted. */
  readonly readOnly: boolean;
  readonly logger: Logger;
  readonly budget: ByteBudget;
  readonly stats: TransferStats;
  /** The daemon's download limit (none: unlimited). */
  readonly download?: RateLimiter;
  readonly maxFilesInFlight: number;
  /** Notes each small file installed (written moments ago), for the block server. */
  readonly warmFiles?: WarmFiles;
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /** Asks for a scan of a path (not awaited: the scan needs the lock the puller may hold). */
  requestScan(under: string): void;
  /** Connected peers whose record of the path has exactly this version. */
  peersFor(record: FileRecord): BlockPeer[];
  /** Blocks fetched while the sender hashed the file (prefetch.ts): moved into `tempAbs`, and which of them the record keeps. */
  adoptPrefetched?(record: FileRecord, tempAbs: string): Promise<readonly boolean[] | undefined>;
  /** Local records changed: tell peers. */
  committed(): void;
  /** Counts requests for a pull: a change means new records arrived. */
  pullRequests(): number;
  /** Holds back a mass delete until the owner decides (none: every deletion is applied). */
  readonly deleteGuard?: DeleteGuard;
  /** Told of each path synced, refused for good (a name this device will not write) or failed for now, with the reason. */
  outcome?(path: string, outcome: PullOutcome, reason?: string): void;
}

/** What became of one needed path: 'unselected' lies in a subtree this device does not take. */
export type PullOutcome = 'done' | 'failed' | 'refused' | 'ignored' | 'unselected';

/** What one step did: 'skipped' is left alone on purpose, 'failed' is worth another pass. */
export type StepOutcome = 'done' | 'failed' | 'skipped';

/** What a batch of directory or deletion steps leaves to record once the disk work is done. */
export interface Commit {
  records: NewFileRecord[];
  /** Conflict copies to have scanned once the lock is released. */
  scans: string[];
}
