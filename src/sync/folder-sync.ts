// FolderSync: one shared folder's data plane, wired together: its links (folder-links.ts), the pull loop and puller, block serving, the archive's purge, held mass deletes and its report (folder-status.ts).

import { setMaxListeners } from 'node:events';
import { FerryError } from '../errors.js';
import type { FolderKeys, GrantBook } from '../keys/index.js';
import type { FolderIndex } from '../index/types.js';
import type { PeerConnection } from '../protocol/connection.js';
import type { HashingMessage, IndexMessage, RequestMessage } from '../protocol/messages.js';
import type { HashingEvent } from '../scan/scanner.js';
import { MIN_BLOCK_SIZE } from '../scan/blocksize.js';
import { WarmFiles } from '../scan/warm-files.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import type { Archive } from './archive.js';
import { ByteBudget } from './budget.js';
import { DeleteGuard, type HeldDeletionsReport } from './delete-guard.js';
import { bumpVersion, mergeVersions } from '../index/records.js';
import type { NewFileRecord } from '../index/types.js';
import { EncBridge } from './enc-bridge.js';
import { FailedItems, printable } from './failed-items.js';
import { emptyTransferStats, type TransferStats } from './fetcher.js';
import { FolderLinks, type PeerFolderLink } from './folder-links.js';
import { FolderStatus, type FolderSyncReport } from './folder-status.js';
import { HashingFiles } from './hashing.js';
import { Prefetcher, type PrefetchReport } from './prefetch.js';
import { directWriteBuffers } from './fetcher.js';
import { RecordCache } from './record-cache.js';
import { sweepOrphanTemps } from './temp-sweep.js';
import { DiskPaths } from './paths.js';
import { Puller } from './puller.js';
import { PullLoop } from './pull-loop.js';
import type { ArchivePolicy } from './archive-policy.js';
import type { FileIo } from '../util/file-io.js';
import type { TransferRates } from './rate-limit.js';
import { revertLocalChanges } from './revert.js';
import { BlockServer, type BlockAnswer } from './serve.js';

/** @default values of FolderSyncLimits */
export const SYNC_DEFAULTS = {
  /**
   * Block bytes requested and not yet written. A few MiB cover the bandwidth-delay product of a LAN
   * or a home uplink (4 MiB a peer: 320 Mbit/s at 100 ms); more only holds memory (and garbage the
   * GC must find) without adding speed. 4 and 8 MiB, not 8 and 16 (with the sender's
   * SERVE_BYTES_IN_FLIGHT 4 MiB, not 8): the pair's anonymous peak on `mixed` 149-168 -> 131-136 MiB,
   * `large` 137 -> 121, no measured cost in time (bench/results/user-memory-session8.md).
   */
  folderBytesInFlight: 8 * 1024 * 1024,
  peerBytesInFlight: 4 * 1024 * 1024,
  /** Files fetched at once: many small files need many in flight to keep the link and the disk busy. */
  maxFilesInFlight: 32,
  /** Wrong blocks from one peer before its connection is dropped. */
  maxBadBlocksPerPeer: 3,
  retryIntervalMs: 30_000,
  purgeIntervalMs: 3_600_000,
} as const;

export type FolderSyncLimits = { -readonly [K in keyof typeof SYNC_DEFAULTS]?: number };
export interface FolderSyncOptions {
  keys: FolderKeys;
  root: string;
  index: FolderIndex;
  device: { id: string; shortId: string };
  logger: Logger;
  archive: Archive;
  /** A number, or read at each purge (a live setting). */
  archiveDays: number | (() => number);
  /** The folder's own archive policy (staggered, size cap), read at each purge; absent: keep archiveDays days. */
  archivePolicy?: () => ArchivePolicy | undefined;
  /** Scans a subtree (the daemon's scanner, under the folder lock). */
  requestScan: (under: string) => Promise<void>;
  /** The folder lock shared with the scanner. */
  exclusive: <T>(work: () => Promise<T>) => Promise<T>;
  limits?: FolderSyncLimits;
  /** The folder's known grants: records signed under a valid RW grant are accepted too. */
  grants?: GrantBook;
  /** The daemon's transfer limits; only `download` is used here (uploads are limited per PeerSession). */
  rates?: TransferRates;
  /** Small files the folder's scanner just hashed; the puller adds those it installs. @default an empty one */
  warmFiles?: WarmFiles;
  /** Keep out (and report) names Windows and SMB clients cannot hold. @default false */
  portableNames?: boolean;
  /** Subtrees this device does not take (selective sync, this device's folder settings). @default none */
  excluded?: readonly string[];
  /** Whether the folder's volume is case-sensitive. @default probed once */
  caseSensitive?: boolean;
  /** Peers' deletions of more than this many files are held for the owner (setting massDeleteFiles). @default 1000 */
  massDeleteFiles?: () => number;
  /**
   * No pull pass starts before this settles: the first scan of a folder whose index holds no local
   * record yet (a rebuilt index, a join into a folder with files), so files already on disk are
   * known (and their blocks) before a peer's index would have them fetched again.
   */
  pullsAfter?: Promise<unknown>;
  /** The writing file operations of the puller (temp files, installs, directories). @default NODE_FILE_IO (tests inject faults) */
  io?: FileIo;
  /**
   * Why the folder's volume cannot be used now (scan/volume.ts: path or marker missing), checked
   * before each pull pass and each of the puller's steps under the folder lock: nothing is written,
   * installed, archived or deleted into an unmounted folder. @default none (not checked)
   */
  volumeCheck?: () => Promise<Error | undefined>;
}
/** Keeps one folder in sync with the peers attached to it. */
export class FolderSync extends Resource {
  readonly keys: FolderKeys;
  readonly index: FolderIndex;
  readonly root: string;
  /** Where blocks came from (counters for status and tests). */
  readonly stats: TransferStats = emptyTransferStats();
  /** The folder's bytes in flight; `peak` shows the most ever outstanding. */
  readonly budget: ByteBudget;
  /** Paths skipped and why (reportFailed). */
  readonly failed = new FailedItems();
  /** RW and RO folders: the link to encrypted (ENC) peers (none for grantees, who hold no content key). */
  readonly enc: EncBridge | undefined;
  /** Signed and sealed records, shared by every link (issue 25: reconnects do not re-sign the index). */
  readonly records = new RecordCache();

  private readonly options: FolderSyncOptions;
  private readonly limits: Required<FolderSyncLimits>;
  private readonly logger: Logger;
  private readonly links: FolderLinks;
  private readonly puller: Puller;
  private readonly loop: PullLoop;
  private readonly status: FolderStatus;
  private readonly server: BlockServer;
  /** Large files being hashed now whose block hashes were announced (streaming). */
  private readonly hashingFiles = new HashingFiles();
  /** Blocks of files peers are hashing now, fetched before their records arrive (streaming). */
  private readonly prefetcher: Prefetcher;
  /** Held mass deletes (none for an ENC folder: it has no files of its own to lose). */
  private readonly deleteGuard: DeleteGuard | undefined;
  private readonly lifetime = new AbortController();
  private purgeTimer: NodeJS.Timeout | null = null;

  constructor(options: FolderSyncOptions) {
    super();
    this.options = options;
    this.keys = options.keys;
    this.index = options.index;
    this.root = options.root;
    this.limits = { ...SYNC_DEFAULTS, ...options.limits };
    this.logger = options.logger;
    this.budget = new ByteBudget(this.limits.folderBytesInFlight);
    // Every file in flight listens on the pass signal (and a few waits besides), and so may every block
    // in flight (blocks copied locally wait for staging buffers on it; the folder's byte budget bounds
    // them): not a leak, so no warning.
    const blocksInFlight = Math.ceil(this.limits.folderBytesInFlight / MIN_BLOCK_SIZE);
    setMaxListeners(blocksInFlight + 4 * this.limits.maxFilesInFlight + 16, this.lifetime.signal);
    const warmFiles = options.warmFiles ?? new WarmFiles();
    this.server = new BlockServer({
      root: this.root,
      index: this.index,
      logger: this.logger,
      requestScan: (p) => this.scan(p),
      warmFiles,
      hashing: (path) => this.hashingFiles.get(path),
    });
    if (this.keys.access !== 'enc' && this.keys.readSecret) {
      this.enc = new EncBridge({
        keys: this.keys,
        index: this.index,
        logger: this.logger,
        cache: this.records,
        readBlock: async (path, offset, size, hash) => {
          const request = { type: 'Request' as const, id: 0, folderId: this.keys.folderId, path, offset, size, hash: Buffer.from(hash) };
          const answer = await this.server.answer(request);
          return 'data' in answer ? answer.data : undefined;
        },
      });
    }
    const massDeleteFiles = options.massDeleteFiles ?? (() => 1000);
    this.deleteGuard = this.keys.access === 'enc' ? undefined : new DeleteGuard({ maxFiles: massDeleteFiles });
    this.links = new FolderLinks({
      keys: this.keys,
      index: this.index,
      logger: this.logger,
      limits: this.limits,
      grants: options.grants,
      enc: this.enc,
      records: this.records,
      server: this.server,
      failed: this.failed,
      reportFailed: (path, reason, source) => this.reportFailed(path, reason, source),
      attached: (state) => this.status.attached(state),
      detached: (state) => this.status.detached(state),
      newGlobal: () => this.status.localChangesMoved(),
      schedulePull: () => this.schedulePull(),
    });
    const paths = new DiskPaths(this.root, { ...(options.caseSensitive === undefined ? {} : { caseSensitive: options.caseSensitive }), ...(options.io ? { io: options.io } : {}) });
    const direct = directWriteBuffers();
    this.prefetcher = new Prefetcher({
      folderId: this.keys.folderId,
      root: this.root,
      index: this.index,
      paths,
      logger: this.logger,
      budget: this.budget,
      io: paths.io,
      ...(direct ? { direct } : {}),
      readOnly: this.keys.access === 'ro',
      excluded: options.excluded ?? [],
      ...(options.rates?.download ? { download: options.rates.download } : {}),
      source: (deviceId) => this.links.hashingSource(deviceId),
      signal: this.lifetime.signal,
    });
    this.puller = new Puller({
      deleteGuard: this.deleteGuard,
      folderId: this.keys.folderId,
      root: this.root,
      index: this.index,
      archive: options.archive,
      paths,
      portableNames: options.portableNames === true,
      excluded: options.excluded ?? [],
      deviceShortId: options.device.shortId,
      readOnly: this.keys.access === 'ro',
      logger: this.logger,
      budget: this.budget,
      stats: this.stats,
      download: options.rates?.download,
      maxFilesInFlight: this.limits.maxFilesInFlight,
      warmFiles,
      exclusive: options.volumeCheck
        ? (work) =>
            options.exclusive(async () => {
              await this.requireVolume();
              return work();
            })
        : options.exclusive,
      requestScan: (under) => this.scan(under),
      peersFor: (record) => this.links.peersFor(record),
      adoptPrefetched: (record, tempAbs) => this.prefetcher.adopt(record, tempAbs),
      committed: () => this.publish(),
      pullRequests: () => this.loop.requests,
      outcome: (path, outcome, reason) => this.loop.outcome(path, outcome, reason),
    });
    this.loop = new PullLoop({
      // No pass while the folder's volume is gone: the pass fails with why (the loop retries).
      pass: async (signal) => {
        await this.requireVolume();
        return this.puller.pass(signal);
      },
      ...(options.pullsAfter ? { pullsAfter: options.pullsAfter } : {}),
      retryIntervalMs: this.limits.retryIntervalMs,
      logger: this.logger,
      signal: this.lifetime.signal,
      closed: () => this.closed,
      failed: this.failed,
      reportFailed: (path, reason, source) => this.reportFailed(path, reason, source),
    });
    this.status = new FolderStatus({
      keys: this.keys,
      index: this.index,
      logger: this.logger,
      links: this.links,
      loop: this.loop,
      puller: this.puller,
      failed: this.failed,
      deleteGuard: this.deleteGuard,
      stats: this.stats,
    });
  }

  protected async _open(): Promise<void> {
    this.index.indexId();
    void this.purgeArchive();
    this.purgeTimer = setInterval(() => void this.purgeArchive(), this.limits.purgeIntervalMs);
    this.purgeTimer.unref();
    // Temps a killed run left behind (none of this process's: it started after them), before any pull.
    await sweepOrphanTemps(this.root, this.index, performance.timeOrigin, this.logger);
    this.schedulePull(); // after a restart: finish what was needed
  }

  protected async _close(): Promise<void> {
    this.lifetime.abort();
    this.status.close();
    this.loop.close();
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    this.links.detachAll();
    await this.loop.ended();
    await this.prefetcher.close();
    this.server.close();
  }

  /**
   * Starts syncing with a peer over an established connection. Returns false (and does nothing)
   * when the peer is ENC and this device holds no content key (a grantee).
   */
  async attach(link: PeerFolderLink): Promise<boolean> {
    if (this.closed) return false;
    const attached = await this.links.attach(link);
    // Files being hashed now: the peer hears what is known of them so far, then the rest as it comes.
    if (attached && this.keys.access === 'rw') {
      for (const message of this.hashingFiles.snapshot(this.keys.folderId)) this.links.broadcastHashing(message, link.deviceId);
    }
    return attached;
  }

  /** Stops syncing with a device; given a connection, only if that is still the device's link (a replaced one must not detach its successor). */
  detach(deviceId: string, connection?: PeerConnection): void {
    this.links.detach(deviceId, connection);
  }

  /** The scanner wrote records: announce them, and pull if a local change lost against the global version. */
  localChanged(): void {
    this.status.localChangesMoved();
    this.publish();
    this.schedulePull();
  }

  /**
   * A path that is skipped rather than synced: a peer's record that failed validation, a name this
   * device cannot hold, a local entry the scanner refused. Listed in status (bounded) and logged
   * once per path; never a reason to stop the folder or drop a link.
   */
  reportFailed(path: string, reason: string, source: string): void {
    if (this.failed.report(path, reason, source)) {
      this.logger.warn('item skipped', { path: printable(path), reason: printable(reason), source });
    }
  }

  /** Records sent to a peer so far on its current link (tests, status). */
  recordsSentTo(deviceId: string): number {
    return this.links.recordsSentTo(deviceId);
  }

  /**
   * An Index or IndexUpdate from an attached peer, over `connection`. Throws PROTOCOL or
   * SIGNATURE_INVALID: drop the connection. A batch that arrives over a connection this device's
   * link has since been replaced by is dropped unstored.
   */
  receiveIndex(deviceId: string, incoming: IndexMessage, connection?: PeerConnection): Promise<void> {
    return this.links.receiveIndex(deviceId, incoming, connection);
  }

  /**
   * The scanner's news of a large file being hashed: its known block hashes go to the peers that
   * take them (RW folders only: an RO device's changes are never published).
   */
  hashing(event: HashingEvent): void {
    if (this.closed || this.keys.access !== 'rw') return;
    for (const message of this.hashingFiles.note(this.keys.folderId, event)) this.links.broadcastHashing(message);
  }

  /** A peer's Hashing message (advisory): blocks of a file it is hashing, fetched before its record (prefetch.ts). */
  receiveHashing(deviceId: string, message: HashingMessage): void {
    if (this.closed || this.keys.access === 'enc') return;
    void this.prefetcher.receive(deviceId, message);
  }

  /** What the prefetcher did (status, tests). */
  prefetchReport(): PrefetchReport {
    return this.prefetcher.report();
  }

  /** A block Request from an attached peer. */
  answer(deviceId: string, request: RequestMessage, allocate?: (size: number) => Buffer): Promise<BlockAnswer> {
    return this.links.answer(deviceId, request, allocate);
  }

  /** RO folders: archives the local edits and pulls the global versions back. Returns how many paths were reverted. */
  async revertLocalChanges(): Promise<number> {
    if (this.keys.access !== 'ro') throw new FerryError('USAGE', 'only a read-only folder has local changes to revert');
    const count = await revertLocalChanges({
      root: this.root,
      index: this.index,
      archive: this.options.archive,
      exclusive: this.options.exclusive,
      logger: this.logger,
    });
    this.status.localChangesMoved();
    this.schedulePull();
    return count;
  }

  report(): FolderSyncReport {
    const report = this.status.report();
    const prefetch = this.prefetcher.report();
    return prefetch.announcements + prefetch.dropped > 0 ? { ...report, prefetch } : report;
  }

  /** A held mass delete, if any. */
  heldDeletions(): HeldDeletionsReport | undefined {
    return this.deleteGuard?.report();
  }

  /** The owner applies a held mass delete: the files go to the archive on the next pass. Returns how many. */
  applyHeldDeletions(): number {
    const count = this.deleteGuard?.approve() ?? 0;
    if (count > 0) {
      this.logger.info('held deletions applied by the owner', { files: count });
      this.schedulePull();
    }
    return count;
  }

  /**
   * The owner rejects a held mass delete: each file still here becomes a new version of itself
   * (newer than the deletion), so every peer gets it back. Returns how many files were restored.
   */
  async restoreHeldDeletions(): Promise<number> {
    const guard = this.deleteGuard;
    if (!guard) return 0;
    const paths = guard.takeHeld();
    const readOnly = this.keys.access === 'ro';
    const device = this.options.device.shortId;
    let restored = 0;
    for (let start = 0; start < paths.length; start += 500) {
      const slice = paths.slice(start, start + 500);
      restored += await this.options.exclusive(async () => {
        const records: NewFileRecord[] = [];
        for (const path of slice) {
          const local = this.index.getLocal(path);
          const global = this.index.getGlobal(path);
          if (!local || local.deleted || !global?.deleted) continue;
          const { sequence: _sequence, signature: _signature, ...rest } = local;
          records.push({ ...rest, version: bumpVersion(mergeVersions(local.version, global.version), device), modifiedBy: device });
        }
        // A read-only device cannot publish: the files stay as its local changes.
        if (records.length > 0) await this.index.putLocal(records, { updateGlobal: !readOnly });
        return records.length;
      });
    }
    this.logger.info('held deletions rejected by the owner: files restored on every peer', { files: restored });
    this.status.localChangesMoved();
    this.publish();
    this.schedulePull();
    return restored;
  }

  /** Resolves once no pull pass is running or wanted (tests; the daemon's shutdown). */
  async idle(): Promise<void> {
    await this.loop.idle();
    await this.links.settled();
  }

  /** Runs a pull pass soon (coalesced with one already running). */
  schedulePull(): void {
    this.loop.schedule();
  }

  private async requireVolume(): Promise<void> {
    const problem = await this.options.volumeCheck?.();
    if (problem) throw problem;
  }

  private publish(): void {
    this.links.publish();
  }

  private scan(under: string): void {
    if (this.keys.access === 'enc') return; // an ENC folder holds only what it fetched: nothing to scan
    this.options.requestScan(under).catch((err: unknown) => this.logger.warn('scan request failed', { under, err: String(err) }));
  }

  /** The policy a purge applies now: the folder's own, else the archiveDays setting. */
  archivePolicy(): ArchivePolicy {
    const days = this.options.archiveDays;
    return this.options.archivePolicy?.() ?? { kind: 'days', days: typeof days === 'function' ? days() : days };
  }

  private async purgeArchive(): Promise<void> {
    try {
      await this.options.archive.purgeWith(this.archivePolicy());
    } catch (err) {
      this.logger.warn('archive purge failed', { err: err instanceof Error ? err : String(err) });
    }
  }
}
