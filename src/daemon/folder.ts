// One shared folder at run time: its scanner, watcher, periodic rescan and state.

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FolderConfig, FolderIndex } from '../index/types.js';
import { HashPool, IgnoreRules, Scanner, FolderWatcher } from '../scan/index.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import type { FolderReport, FolderState } from '../web/daemon-api.js';

/** The folder's own hidden directory; its presence proves the folder's volume is mounted. */
export const FOLDER_MARKER = '.ferry';

export interface SharedFolderOptions {
  config: FolderConfig;
  index: FolderIndex;
  pool: HashPool;
  deviceShortId: string;
  logger: Logger;
  rescanIntervalMs: number;
  unwatchedRescanIntervalMs: number;
}

export class SharedFolder extends Resource {
  readonly config: FolderConfig;
  private readonly index: FolderIndex;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private scanner: Scanner | null = null;
  private watcher: FolderWatcher | null = null;
  private rescanTimer: NodeJS.Timeout | null = null;
  private state: FolderState = 'idle';
  private error: string | undefined;
  private lastScanMs: number | null = null;
  private scanning: Promise<void> = Promise.resolve();
  private pendingUnder: string | null = null;

  constructor(private readonly options: SharedFolderOptions) {
    super();
    this.config = options.config;
    this.index = options.index;
    this.logger = options.logger.child(options.config.id.slice(0, 8));
  }

  protected async _open(): Promise<void> {
    if (this.config.access === 'enc') return; // ciphertext is written by the sync layer, never scanned
    if (!(await this.markerPresent())) {
      // Scanning a missing or unmounted folder would turn every file into a deletion.
      this.setError(`folder marker ${FOLDER_MARKER}/ is missing in ${this.config.path} (is the volume mounted?)`);
      return;
    }
    const ignore = await IgnoreRules.load(this.config.path);
    this.scanner = new Scanner({
      root: this.config.path,
      index: this.index,
      deviceShortId: this.options.deviceShortId,
      pool: this.options.pool,
      logger: this.logger,
      // no `ignore`: the scanner re-reads .ferryignore on every scan, so edits apply at once
    });
    this.watcher = new FolderWatcher({
      root: this.config.path,
      ignore,
      logger: this.logger,
      onChange: (under: string) => this.requestScan(under),
    });
    await this.watcher.open();
    this.requestScan('');
    this.scheduleRescan();
  }

  protected async _close(): Promise<void> {
    this.abort.abort();
    if (this.rescanTimer) clearTimeout(this.rescanTimer);
    await this.watcher?.close();
    await this.scanning;
  }

  private async markerPresent(): Promise<boolean> {
    try {
      return (await stat(join(this.config.path, FOLDER_MARKER))).isDirectory();
    } catch {
      return false;
    }
  }

  private setError(message: string): void {
    if (this.error !== message) this.logger.error(message);
    this.state = 'error';
    this.error = message;
  }

  private scheduleRescan(): void {
    const limited = this.watcher?.status().limitReached ?? false;
    const delayMs = limited ? this.options.unwatchedRescanIntervalMs : this.options.rescanIntervalMs;
    this.rescanTimer = setTimeout(() => {
      this.requestScan('');
      this.scheduleRescan();
    }, delayMs);
    this.rescanTimer.unref();
  }

  /** Queues a scan of a subtree ('' = everything); requests arriving meanwhile are merged. */
  requestScan(under: string): Promise<void> {
    if (!this.scanner || this.abort.signal.aborted) return this.scanning;
    this.pendingUnder = this.pendingUnder === null ? under : commonParent(this.pendingUnder, under);
    this.scanning = this.scanning.then(() => this.runPendingScan());
    return this.scanning;
  }

  private async runPendingScan(): Promise<void> {
    const under = this.pendingUnder;
    if (under === null || !this.scanner || this.abort.signal.aborted) return;
    this.pendingUnder = null;
    if (!(await this.markerPresent())) {
      this.setError(`folder marker ${FOLDER_MARKER}/ disappeared from ${this.config.path}; scanning stopped`);
      return;
    }
    this.state = 'scanning';
    try {
      const result = await this.scanner.scan({ under, signal: this.abort.signal });
      this.lastScanMs = Date.now();
      this.state = 'idle';
      this.error = undefined;
      if (result.changed || result.deleted) {
        this.logger.info('scanned', { under: under || '/', changed: result.changed, deleted: result.deleted });
      }
    } catch (err) {
      if (this.abort.signal.aborted) return;
      this.setError(`scan failed: ${(err as Error).message}`);
    }
  }

  report(): FolderReport {
    const counts = this.index.counts();
    return {
      id: this.config.id,
      path: this.config.path,
      access: this.config.access,
      state: this.config.paused ? 'paused' : this.state,
      ...(this.error ? { error: this.error } : {}),
      ...counts,
      lastScanMs: this.lastScanMs,
      watcher: this.watcher?.status() ?? { watchedDirs: 0, unwatchedDirs: 0, limitReached: false },
      peers: [],
    };
  }
}

/** The deepest directory containing both paths ('' is the folder root). */
export function commonParent(a: string, b: string): string {
  if (a === b) return a;
  const left = a.split('/');
  const right = b.split('/');
  const shared: string[] = [];
  for (let i = 0; i < Math.min(left.length, right.length) && left[i] === right[i]; i++) shared.push(left[i]!);
  return shared.join('/');
}
