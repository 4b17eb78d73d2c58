// One shared folder at run time: scanner, watcher, periodic rescan, and its FolderSync, under one folder lock.

import { decodeGrant, SHORT_ID_LENGTH, type FolderKeys, type GrantBook, type GrantCredential } from '../keys/index.js';
import type { FolderConfig, FolderIndex } from '../index/types.js';
import { FOLDER_MARKER, HashPool, IgnoreRules, Scanner, FolderWatcher, SubtreeSet, volumeProblem, WarmFiles, type ScanResult } from '../scan/index.js';
import {
  Archive, ConflictList, findLocalUnselected, LOCAL_UNSELECTED_REASON, LOCAL_UNSELECTED_SOURCE, type LocalUnselected, FolderSync, readOnlyScanIndex, resolveConflict, type ConflictKeep, type ConflictResolution, type FolderSyncLimits,
  type TransferRates,
} from '../sync/index.js';
import { FerryError, isFerryError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { compareVersions } from '../index/records.js';
import { insideSubtrees } from '../scan/ignore.js';
import type { TreeEntry, ConflictListing, FolderReport, FolderState, GrantReport, PeerReport } from '../web/daemon-api.js';

/** The folder's own hidden directory; its presence proves the folder's volume is mounted (the rule: scan/volume.ts). */
export { FOLDER_MARKER };

/** How often a folder whose volume is gone (path or marker missing) looks for it again. */
export const VOLUME_RECHECK_MS = 5_000;

/**
 * Subtrees waiting for a rescan. Past this many the deepest fold into their parents; merging every
 * waiting request into one common parent made two edits in two top-level directories a full rescan.
 */
export const MAX_PENDING_SUBTREES = 1024;

/**
 * How old status lets its measure of the archive (size, what a purge would free) grow before measuring again in
 * the background: 20 × what the last measuring took, at least 2 s and at most a minute. Measuring then takes at
 * most ~5 % of the daemon's time while status is polled, and a small archive's figures follow a deletion or a
 * restore within seconds instead of up to a minute later.
 */
export function archivePlanMaxAgeMs(measuringMs: number): number {
  return Math.min(60_000, Math.max(2_000, 20 * measuringMs));
}

export interface SharedFolderOptions {
  config: FolderConfig;
  keys: FolderKeys;
  index: FolderIndex;
  pool: HashPool;
  device: { id: string; shortId: string };
  logger: Logger;
  rescanIntervalMs: number;
  unwatchedRescanIntervalMs: number;
  /** Read at each purge: the setting changes while the daemon runs. */
  archiveDays: number | (() => number);
  /** Setting massDeleteFiles, read when a pass reviews deletions. */
  massDeleteFiles?: () => number;
  syncLimits?: FolderSyncLimits;
  /** The daemon's upload/download limiters, shared by every folder. */
  rates?: TransferRates;
  /** How each peer reached us ('known', 'incoming', 'lan', …), for status. */
  peerSource: (deviceId: string) => string | undefined;
  /** The connected peer's transport path ('tcp', 'udp', 'udp punched') and round-trip time, for status. */
  peerLink?: (deviceId: string) => { path: string; rttMs?: number } | undefined;
  /** The folder's known grants (records signed under valid RW grants are accepted; a grantee's own grant shows in status). */
  grants?: GrantBook;
  /** Each finished scan of some subtrees ('' = the whole folder), with what it visited and changed. */
  onScanned?: (subtrees: readonly string[], result: ScanResult) => void;
  /** A device's name by its short ID, when known (this device's own, a peer's). */
  deviceName?: (shortId: string) => string | undefined;
  /** @default VOLUME_RECHECK_MS */
  volumeRecheckMs?: number;
  /** The folder started after open() (its volume was missing then): connected peers must hear of it (a new handshake). */
  onStartedLate?: () => void;
}

export class SharedFolder extends Resource {
  readonly config: FolderConfig;
  readonly keys: FolderKeys;
  private readonly index: FolderIndex;
  private readonly logger: Logger;
  private readonly abort = new AbortController();
  private scanner: Scanner | null = null;
  private watcher: FolderWatcher | null = null;
  /** The watcher is still to be set up (by the first scan: see start()). */
  private watchPending = false;
  /** Null when the marker is missing. */
  sync: FolderSync | null = null;
  private rescanTimer: NodeJS.Timeout | null = null;
  /** Lets the first pull pass start (see FolderSync pullsAfter). */
  private releasePulls: (() => void) | undefined;
  private state: FolderState = 'idle';
  private error: string | undefined;
  private lastScanMs: number | null = null;
  /** The archive as last measured, when, and how long that took (archivePlanMaxAgeMs). */
  private archivePlan: { files: number; bytes: number; purgeFiles: number; purgeBytes: number; atMs: number; tookMs: number } | undefined;
  private archivePlanning = false;
  /** Local files inside unselected subtrees at the last check (checkLocalUnselected). */
  private localUnselected = 0;
  private localUnselectedPaths: string[] = [];
  /** The folder lock: scans and the puller's commits run one at a time, in order. */
  private lock: Promise<unknown> = Promise.resolve();
  private readonly pending = new SubtreeSet(MAX_PENDING_SUBTREES);
  private scanQueued: Promise<void> | null = null;
  /** Conflict copies whose original is still there, followed from the index. */
  private readonly conflictList: ConflictList;
  /** The volume was found gone (path or marker missing): on its return the watcher starts again and everything is rescanned. */
  private volumeLost = false;
  private volumeTimer: NodeJS.Timeout | null = null;
  private volumeRechecking = false;

  constructor(private readonly options: SharedFolderOptions) {
    super();
    this.config = options.config;
    this.keys = options.keys;
    this.index = options.index;
    this.logger = options.logger.child(options.config.id.slice(0, 8));
    this.conflictList = new ConflictList(options.index);
  }

  protected async _open(): Promise<void> {
    const problem = await volumeProblem(this.config.path);
    if (problem) {
      // Scanning or pulling into a missing or unmounted folder would turn every file into a deletion:
      // nothing starts until the volume is back.
      this.lostVolume(problem);
      return;
    }
    await this.start();
  }

  /** Scanner, FolderSync, watcher and the first scan: the folder runs. */
  private async start(): Promise<void> {
    const encrypted = this.config.access === 'enc';
    const scanIndex = this.config.access === 'ro' ? readOnlyScanIndex(this.index) : this.index;
    const warmFiles = new WarmFiles();
    // An encrypted (ENC) folder holds ciphertext written by its FolderSync only: nothing to scan or watch.
    if (!encrypted) this.scanner = new Scanner({
      root: this.config.path,
      index: scanIndex,
      deviceShortId: this.options.device.shortId,
      pool: this.options.pool,
      logger: this.logger,
      onCommitted: () => this.sync?.localChanged(),
      // A large file's block hashes go to peers as they are known (streaming: docs/protocol.md).
      onHashing: (event) => this.sync?.hashing(event),
      // Reported as 'scan': a full scan starts that list afresh, so a renamed entry leaves it.
      onRefused: (path, reason) => this.reportFailed(path, reason, 'scan'),
      // An entry that cannot be read (EIO, EACCES) is skipped and listed, never taken for a deletion.
      onUnreadable: (path, reason) => this.reportFailed(path, reason, 'scan'),
      // A volume unmounted during a scan fails it before its deletion pass (never "everything deleted").
      requireMarker: true,
      warmFiles,
      excluded: this.config.excluded ?? [],
      // no `ignore`: the scanner re-reads .ferryignore on every scan, so edits apply at once
    });
    // A folder whose index holds no local record (a rebuilt index, a join into a folder with files):
    // its first scan comes before any pull, so what is on disk is not fetched again.
    const pullsAfter = !encrypted && this.index.counts().localFiles === 0 ? new Promise<void>((resolve) => (this.releasePulls = resolve)) : undefined;
    this.sync = new FolderSync({
      ...(pullsAfter ? { pullsAfter } : {}),
      keys: this.keys,
      root: this.config.path,
      index: this.index,
      device: this.options.device,
      logger: this.logger.child('sync'),
      archive: new Archive(this.config.path, this.logger.child('archive')),
      archiveDays: this.options.archiveDays,
      archivePolicy: () => this.config.archive,
      requestScan: (under) => this.requestScan(under),
      exclusive: (work) => this.exclusive(work),
      limits: this.options.syncLimits,
      grants: this.options.grants,
      rates: this.options.rates,
      warmFiles,
      portableNames: this.config.portableNames === true,
      excluded: this.config.excluded ?? [],
      ...(this.options.massDeleteFiles ? { massDeleteFiles: this.options.massDeleteFiles } : {}),
      // Nothing is pulled, installed or deleted while the volume is gone.
      volumeCheck: async () => {
        const problem = await volumeProblem(this.config.path);
        if (problem) this.lostVolume(problem);
        return problem;
      },
    });
    if (encrypted) {
      await this.sync.open();
      return;
    }
    // The watches are set up by the first scan, under the folder lock and before it walks the tree: on a large
    // tree they take a listing of every directory (minutes at 1,000,000 files on a busy NAS), which `share` and
    // `join` no longer wait for. The first scan runs before the puller, so local edits made while the daemon was
    // down are seen first.
    this.watchPending = true;
    const firstScan = this.requestScan('');
    void firstScan.finally(() => this.releasePulls?.());
    await this.sync.open();
    this.scheduleRescan();
  }

  /** A watcher on the folder's root as it is now (again after the volume came back: the old one watched what was unmounted). */
  private async watch(): Promise<void> {
    await this.watcher?.close();
    this.watcher = new FolderWatcher({
      root: this.config.path,
      ignore: (await IgnoreRules.load(this.config.path)).withExcluded(this.config.excluded),
      logger: this.logger,
      onChange: (under: string) => void this.requestScan(under),
    });
    await this.watcher.open();
  }

  /** The volume is gone: the folder says so and looks for it again every volumeRecheckMs. */
  private lostVolume(problem: Error): void {
    this.volumeLost = true;
    this.setError(problem.message);
    if (this.volumeTimer || this.abort.signal.aborted) return;
    this.volumeTimer = setInterval(() => void this.recheckVolume(), this.options.volumeRecheckMs ?? VOLUME_RECHECK_MS);
    this.volumeTimer.unref();
  }

  private async recheckVolume(): Promise<void> {
    if (this.volumeRechecking || this.abort.signal.aborted) return;
    this.volumeRechecking = true;
    try {
      if (await volumeProblem(this.config.path)) return;
      if (this.volumeTimer) clearInterval(this.volumeTimer);
      this.volumeTimer = null;
      this.logger.info('folder volume is back; resuming', { path: this.config.path });
      if (this.sync) {
        if (this.scanner) {
          await this.requestScan(''); // rewatches and rescans everything (volumeLost)
        } else {
          this.volumeLost = false; // an ENC folder: nothing to scan
          this.state = 'idle';
          this.error = undefined;
        }
        this.sync.schedulePull();
        return;
      }
      this.state = 'idle';
      this.error = undefined;
      this.volumeLost = false;
      if (this.abort.signal.aborted) return;
      await this.start();
      this.options.onStartedLate?.();
    } catch (err) {
      this.logger.warn('resuming the folder failed', { err: err instanceof Error ? err : String(err) });
    } finally {
      this.volumeRechecking = false;
    }
  }

  protected async _close(): Promise<void> {
    this.abort.abort();
    if (this.volumeTimer) clearInterval(this.volumeTimer);
    this.releasePulls?.();
    if (this.rescanTimer) clearTimeout(this.rescanTimer);
    await this.watcher?.close();
    await this.sync?.close();
    await this.conflictList.close();
    await this.lock.catch(() => undefined);
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.lock.then(work, work);
    this.lock = run.catch(() => undefined);
    return run;
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
      void this.requestScan('');
      this.scheduleRescan();
    }, delayMs);
    this.rescanTimer.unref();
  }

  /**
   * Queues a scan of a subtree ('' = everything). Requests arriving before it starts join the
   * waiting set of subtrees, each scanned on its own: work stays proportional to what changed.
   */
  requestScan(under: string): Promise<void> {
    if (!this.scanner || this.abort.signal.aborted) return Promise.resolve();
    this.pending.add(under);
    this.scanQueued ??= this.exclusive(() => this.runPendingScan());
    return this.scanQueued;
  }

  private async runPendingScan(): Promise<void> {
    this.scanQueued = null;
    let subtrees = this.pending.take();
    if (subtrees.length === 0 || !this.scanner || this.abort.signal.aborted) return;
    const problem = await volumeProblem(this.config.path);
    if (problem) {
      this.lostVolume(problem);
      return;
    }
    // Said before the watches are set up (minutes on a large tree): status must not read idle meanwhile.
    this.state = 'scanning';
    if (this.volumeLost || this.watchPending) {
      // The first scan, or back after the volume was gone: watch the root as it is now, and look at everything.
      this.volumeLost = false;
      this.watchPending = false;
      await this.watch();
      if (this.abort.signal.aborted) {
        await this.watcher?.close(); // closed meanwhile: close() has already passed the watcher
        return;
      }
      subtrees = [''];
      // Directories left unwatched at the inotify limit: the shorter rescan interval applies from now on.
      if (this.watcher?.status().limitReached && this.rescanTimer) {
        clearTimeout(this.rescanTimer);
        this.scheduleRescan();
      }
    }
    this.state = 'scanning';
    try {
      // One run for all of them: their changes share transactions and one announcement to peers.
      if (subtrees.includes('')) this.sync?.failed.clearSource('scan');
      const result = await this.scanner.scan({ subtrees, signal: this.abort.signal });
      this.options.onScanned?.(subtrees, result);
      if (subtrees.includes('')) await this.checkLocalUnselected();
      if (result.changed || result.deleted) {
        const under = subtrees.length === 1 ? subtrees[0] || '/' : `${subtrees.length} subtrees (${subtrees.slice(0, 3).join(', ')}…)`;
        this.logger.info('scanned', { under, changed: result.changed, deleted: result.deleted });
        this.sync?.localChanged();
      }
      this.lastScanMs = Date.now();
      this.state = 'idle';
      this.error = undefined;
    } catch (err) {
      if (this.abort.signal.aborted) return;
      if (isFerryError(err, 'FOLDER_NOT_FOUND') || isFerryError(err, 'FOLDER_NOT_DIRECTORY')) this.lostVolume(err);
      else this.setError(`scan failed: ${(err as Error).message}`);
    }
  }

  /** The archive's size and what a purge would free now, for status: measured in the background (archivePlanMaxAgeMs). */
  private archiveReport(): { archive?: { files: number; bytes: number; purgeFiles: number; purgeBytes: number } } {
    const sync = this.sync;
    if (!sync || this.config.access === 'enc') return {};
    const last = this.archivePlan;
    if (!this.archivePlanning && (!last || Date.now() - last.atMs > archivePlanMaxAgeMs(last.tookMs))) {
      this.archivePlanning = true;
      const startMs = Date.now();
      new Archive(this.config.path, this.logger.child('archive'))
        .plan(sync.archivePolicy())
        .then((plan) => {
          const atMs = Date.now();
          this.archivePlan = { files: plan.keptFiles + plan.remove.length, bytes: plan.keptBytes + plan.freedBytes, purgeFiles: plan.remove.length, purgeBytes: plan.freedBytes, atMs, tookMs: atMs - startMs };
        })
        .catch((err: unknown) => this.logger.debug('archive not measured', { err: err instanceof Error ? err : String(err) }))
        .finally(() => (this.archivePlanning = false));
    }
    if (!this.archivePlan) return {};
    const { atMs: _atMs, tookMs: _tookMs, ...archive } = this.archivePlan;
    return { archive };
  }

  /**
   * Files made here inside unselected subtrees: reported as failed items ("local in unselected"),
   * kept on disk, not sent. Runs after each full scan and for each selection listing.
   */
  async checkLocalUnselected(): Promise<LocalUnselected> {
    const excluded = this.config.excluded ?? [];
    if (this.config.access === 'enc' || excluded.length === 0) return { count: 0, paths: [] };
    const found = await findLocalUnselected(this.config.path, this.index, excluded, this.abort.signal);
    this.sync?.failed.clearSource(LOCAL_UNSELECTED_SOURCE);
    for (const path of found.paths) this.reportFailed(path, LOCAL_UNSELECTED_REASON, LOCAL_UNSELECTED_SOURCE);
    this.localUnselected = found.count;
    this.localUnselectedPaths = found.paths;
    return found;
  }

  /** What the last checkLocalUnselected found. */
  lastLocalUnselected(): LocalUnselected {
    return { count: this.localUnselected, paths: [...this.localUnselectedPaths] };
  }

  /**
   * One page of a directory of the folder's tree from the index (global records: sizes even for
   * parts not on disk here), directories first. The walk covers the directory's subtree once.
   */
  tree(dir: string, offset: number, limit: number): { entries: TreeEntry[]; total: number } {
    const prefix = dir === '' ? '' : dir + '/';
    const excluded = this.config.excluded ?? [];
    const children = new Map<string, TreeEntry>();
    for (const record of this.index.globalRecords(dir === '' ? {} : { under: dir })) {
      if (record.deleted || record.path === dir || !record.path.startsWith(prefix)) continue;
      const rest = record.path.slice(prefix.length);
      const slash = rest.indexOf('/');
      const name = slash < 0 ? rest : rest.slice(0, slash);
      const path = prefix + name;
      let entry = children.get(name);
      if (!entry) {
        const type = slash < 0 ? record.type : 'dir';
        entry = { path, type, size: 0, files: 0, selected: !insideSubtrees(path, excluded), present: true };
        children.set(name, entry);
      }
      if (slash < 0 && record.type === 'dir') entry.type = 'dir';
      if (record.type === 'dir') {
        if (slash < 0) {
          const local = this.index.getLocal(record.path);
          if (!local || local.deleted) entry.present = false;
        }
        continue;
      }
      entry.size += record.size;
      entry.files++;
      if (entry.present) {
        const local = this.index.getLocal(record.path);
        if (!local || local.deleted || compareVersions(local.version, record.version) !== 'equal') entry.present = false;
      }
    }
    const sorted = [...children.values()].sort((a, b) => (a.type === 'dir') !== (b.type === 'dir') ? (a.type === 'dir' ? -1 : 1) : a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    return { entries: sorted.slice(offset, offset + limit), total: sorted.length };
  }

  /** A path skipped rather than synced (the scanner's refusals, say): listed in status, never a reason to stop. */
  reportFailed(path: string, reason: string, source = 'local'): void {
    this.sync?.reportFailed(path, reason, source);
  }

  /** Current conflicts by path, `offset` of them skipped. An encrypted folder has none it can read. */
  async conflicts(limit: number, offset: number): Promise<ConflictListing> {
    if (this.config.access === 'enc') return { folderId: this.config.id, conflicts: [], total: 0, offset, truncated: false };
    const peerNames = new Map<string, string>();
    for (const peer of this.sync?.report().peers ?? []) if (peer.name) peerNames.set(peer.device.slice(0, SHORT_ID_LENGTH), peer.name);
    const names = (shortId: string): string | undefined => this.options.deviceName?.(shortId) ?? peerNames.get(shortId);
    return { folderId: this.config.id, offset, ...(await this.conflictList.list(offset, limit, names)) };
  }

  /** `conflicts` for the report: absent while the first pass over a large index runs in the background. */
  private conflictCount(): { conflicts?: number } {
    if (this.config.access === 'enc') return { conflicts: 0 };
    const count = this.conflictList.count();
    return count === undefined ? {} : { conflicts: count };
  }

  /** Resolves one conflict (see sync/conflicts.ts); a read-only or encrypted device cannot. */
  async resolveConflict(path: string, keep: ConflictKeep, name?: string): Promise<ConflictResolution> {
    if (this.config.access !== 'rw') throw new FerryError('KEY_ACCESS', 'only a read-write folder can resolve a conflict: its edits would not be accepted by peers');
    if (!this.scanner || !this.sync) throw new FerryError('FOLDER_UNKNOWN', `folder ${this.config.id} is not running (${this.error ?? 'paused'})`);
    // An absolute path inside the folder is taken relative to it.
    if (path.startsWith(`${this.config.path}/`)) path = path.slice(this.config.path.length + 1);
    return resolveConflict(
      {
        root: this.config.path,
        index: this.index,
        archive: new Archive(this.config.path, this.logger.child('archive')),
        conflicts: this.conflictList,
        exclusive: (work) => this.exclusive(work),
        rescan: async (subtrees) => {
          await Promise.all(subtrees.map((under) => this.requestScan(under)));
        },
        logger: this.logger,
      },
      path,
      keep,
      name,
    );
  }

  /** The grant this device holds the folder by (joined with an invite), for status. */
  private grantReport(credential: GrantCredential): GrantReport {
    const grant = decodeGrant(credential.bytes);
    const status = this.options.grants?.status(grant) ?? (Date.now() >= grant.expiresAtMs ? 'expired' : 'active');
    return {
      id: grant.idHex,
      level: grant.level,
      expiresAtMs: grant.expiresAtMs,
      expiresAt: new Date(grant.expiresAtMs).toISOString(),
      ...(grant.device ? { device: grant.device } : {}),
      status,
    };
  }

  report(): FolderReport {
    const counts = this.index.counts();
    const sync = this.sync?.report();
    const peers: PeerReport[] = (sync?.peers ?? []).map((peer) => ({
      ...peer,
      source: this.options.peerSource(peer.device) ?? 'known',
      ...(peer.connected ? this.options.peerLink?.(peer.device) : undefined),
    }));
    let state: FolderState = this.state;
    if (this.config.paused) state = 'paused';
    else if (state === 'idle' && sync) state = sync.state;
    const error = this.error ?? sync?.error;
    return {
      id: this.config.id,
      path: this.config.path,
      access: this.config.access,
      state,
      ...(error ? { error } : {}),
      ...(state === 'stalled' && sync?.stalledReason ? { stalledReason: sync.stalledReason } : {}),
      ...counts,
      inRateBps: sync?.inRateBps ?? 0,
      filesInProgress: sync?.filesInProgress ?? 0,
      partialBytes: sync?.partialBytes ?? 0,
      localChanges: sync?.localChanges ?? 0,
      failedItems: sync?.failedItems ?? 0,
      failed: sync?.failed ?? [],
      portableNames: this.config.portableNames === true,
      ...(this.config.excluded?.length ? { excluded: this.config.excluded, localUnselected: this.localUnselected } : {}),
      ...this.archiveReport(),
      ...(sync?.unselectedFiles ? { unselectedFiles: sync.unselectedFiles } : {}),
      ...(this.keys.grant ? { grant: this.grantReport(this.keys.grant) } : {}),
      lastScanMs: this.lastScanMs,
      watcher: this.watcher?.status() ?? { watchedDirs: 0, unwatchedDirs: 0, limitReached: false },
      peers,
      ...(sync?.heldDeletions ? { heldDeletions: sync.heldDeletions } : {}),
      ...this.conflictCount(),
      ...(sync?.prefetch ? { prefetch: sync.prefetch } : {}),
    };
  }
}
