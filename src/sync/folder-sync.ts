// FolderSync: one shared folder's data plane: peer links, index exchange, the puller loop, block serving, archive purge, status.

import { setMaxListeners } from 'node:events';
import { FerryError, isFerryError } from '../errors.js';
import type { FolderKeys, GrantBook } from '../keys/index.js';
import type { Access } from '../keys/types.js';
import { checkIndexPath, remoteDevice } from '../index/keys.js';
import type { FileRecord } from '../index/records.js';
import type { FolderIndex } from '../index/types.js';
import type { PeerConnection } from '../protocol/connection.js';
import type { ClusterFolder, IndexMessage, RequestMessage } from '../protocol/messages.js';
import { MIN_BLOCK_SIZE } from '../scan/blocksize.js';
import { IgnoreRules, isLocalOnly } from '../scan/ignore.js';
import { WarmFiles } from '../scan/warm-files.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { sleep } from '../util/abort.js';
import type { Archive } from './archive.js';
import { ByteBudget } from './budget.js';
import { DeleteGuard, type HeldDeletionsReport } from './delete-guard.js';
import { bumpVersion, mergeVersions } from '../index/records.js';
import type { NewFileRecord } from '../index/types.js';
import { EncBridge } from './enc-bridge.js';
import { FailedItems, printable, type FailedItem } from './failed-items.js';
import { emptyTransferStats, type BlockPeer, type TransferStats } from './fetcher.js';
import { checkIncomingIndex, folderKeyLink, IndexSender } from './index-exchange.js';
import { RecordCache } from './record-cache.js';
import { sweepOrphanTemps } from './temp-sweep.js';
import { PeerCompletionCache } from './peer-completion.js';
import { DiskPaths } from './paths.js';
import type { PullOutcome } from './pull-context.js';
import { Puller } from './puller.js';
import type { ArchivePolicy } from './archive-policy.js';
import type { FileIo } from '../util/file-io.js';
import type { TransferRates } from './rate-limit.js';
import { revertLocalChanges, isLocalChange } from './revert.js';
import { BlockServer, type BlockAnswer } from './serve.js';

/** @default values of FolderSyncLimits */
export const SYNC_DEFAULTS = {
  /**
   * Block bytes requested and not yet written. A few MiB cover the bandwidth-delay product of a LAN
   * or a home uplink; more only holds memory (and garbage the GC must find) without adding speed.
   */
  folderBytesInFlight: 16 * 1024 * 1024,
  peerBytesInFlight: 8 * 1024 * 1024,
  /** Files fetched at once: many small files need many in flight to keep the link and the disk busy. */
  maxFilesInFlight: 32,
  /** Wrong blocks from one peer before its connection is dropped. */
  maxBadBlocksPerPeer: 3,
  retryIntervalMs: 30_000,
  purgeIntervalMs: 3_600_000,
} as const;

/** Least time between pull passes after one that had failures. */
const PASS_GAP_AFTER_FAILURE_MS = 1000;

export type FolderSyncLimits = { -readonly [K in keyof typeof SYNC_DEFAULTS]?: number };

/** One connection's view of one shared folder, as the handshake established it. */
export interface PeerFolderLink {
  deviceId: string;
  deviceName: string;
  address: string;
  connection: PeerConnection;
  /** The access the peer proved to us. */
  peerAccess: Access;
  /** The peer proved it holds the folder key: with ours, records between us need no signature. */
  peerHoldsFolderKey: boolean;
  /** What the peer said in ClusterState (its index ID, what it has of ours). */
  peerState: ClusterFolder;
}

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
}

export interface PeerReport {
  device: string;
  name: string;
  address: string;
  connected: boolean;
  bytesIn: number;
  bytesOut: number;
  inRateBps: number;
  outRateBps: number;
  /** Why the last link to this peer closed (`CODE: reason`), once one did. */
  lastClose?: string;
  lastCloseAtMs?: number;
  /** The peer's index: the last sequence of it stored here, and the highest it announced (equal when complete). */
  indexSequence: number;
  indexAnnounced: number;
  /**
   * How complete the peer's copy is as far as its index tells (0–100, by bytes), and what it still
   * needs of the global state; absent while a large folder's first computation runs.
   */
  completion?: number;
  needFiles?: number;
  needBytes?: number;
}

/** What a link knows of a peer, before its completion is worked out. */
type PeerLinkReport = Omit<PeerReport, 'completion' | 'needFiles' | 'needBytes'>;

export interface FolderSyncReport {
  /** `idle` only when nothing is needed; `stalled` when something is needed and nothing is moving (see stalledReason). */
  state: 'idle' | 'syncing' | 'stalled' | 'error';
  error?: string;
  /** Why a stalled folder cannot make progress. */
  stalledReason?: string;
  needFiles: number;
  needBytes: number;
  /** Needed files left alone because they lie in subtrees this device does not take (selective sync). */
  unselectedFiles?: number;
  /** RO folders: local edits that are not (and will not be) synced. */
  localChanges: number;
  /** Paths skipped (refused records, names this device cannot hold), counted and the newest listed. */
  failedItems: number;
  failed: FailedItem[];
  peers: PeerReport[];
  /** Block bytes being fetched for this folder, per second (from every peer). */
  inRateBps: number;
  /** Files being fetched now, and their bytes already in temp files (part of needBytes still). */
  filesInProgress: number;
  partialBytes: number;
  /** A mass delete by peers, held until the owner applies it or restores the files. */
  heldDeletions?: HeldDeletionsReport;
}

interface LinkState {
  link: PeerFolderLink;
  sender: IndexSender;
  budget: ByteBudget;
  /** Last sequence of the peer's index stored here. */
  received: number;
  /** Highest lastSequence received on this link (-1: none yet): within one link sequences only move forward. */
  linkSequence: number;
  /** The peer is ENC and we are not: records and blocks go through the EncBridge. */
  enc: boolean;
  /** Records travel unsigned both ways (folderKeyLink). */
  unsigned: boolean;
  badBlocks: number;
  sample: { atMs: number; bytesIn: number; bytesOut: number; inRateBps: number; outRateBps: number };
}

/**
 * The highest sequence of the peer's index we expect, once its index has begun to arrive on this
 * link; until then what we have (a peer that sends us nothing for this folder, a grantee skipping
 * an ENC device say, must not look like an exchange that never ends).
 */
function indexAnnounced(state: LinkState): number {
  return state.linkSequence >= 0 ? Math.max(state.received, state.link.peerState.maxSequence) : state.received;
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

  private readonly options: FolderSyncOptions;
  private readonly limits: Required<FolderSyncLimits>;
  private readonly logger: Logger;
  private readonly links = new Map<string, LinkState>();
  private readonly known = new Map<string, PeerLinkReport>();
  private readonly completion: PeerCompletionCache;
  /** Peer index batches stored so far: part of the completion cache's stamp. */
  private indexBatches = 0;
  private rateSample = { atMs: Date.now(), bytes: 0, rateBps: 0 };
  private readonly puller: Puller;
  private readonly server: BlockServer;
  /** Held mass deletes (none for an ENC folder: it has no files of its own to lose). */
  private readonly deleteGuard: DeleteGuard | undefined;
  /** RW and RO folders: the link to encrypted (ENC) peers (none for grantees, who hold no content key). */
  readonly enc: EncBridge | undefined;
  /** Signed and sealed records, shared by every link (issue 25: reconnects do not re-sign the index). */
  readonly records = new RecordCache();
  private readonly lifetime = new AbortController();
  private pulling: Promise<void> | null = null;
  private pullWanted = false;
  /** Every schedulePull() counted: a pass sweeps again when this moved. */
  private pullRequests = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private purgeTimer: NodeJS.Timeout | null = null;
  private lastError: string | undefined;
  /** The last file the puller could not sync this time round, and why (for a stalled folder's reason). */
  private lastPullFailure: { path: string; reason: string } | undefined;
  /** Index batches being stored now. */
  private receiving = 0;
  /** Needed paths the last pull pass left alone because this device's .ferryignore ignores them. */
  private ignoredNeeded = 0;
  private ignoredInPass = 0;
  /** Needed paths the last pass left alone because they lie in subtrees this device does not take. */
  private unselectedNeeded = 0;
  private unselectedInPass = 0;
  private localChangeCount: number | undefined;

  constructor(options: FolderSyncOptions) {
    super();
    this.options = options;
    this.keys = options.keys;
    this.index = options.index;
    this.root = options.root;
    this.limits = { ...SYNC_DEFAULTS, ...options.limits };
    this.logger = options.logger;
    this.budget = new ByteBudget(this.limits.folderBytesInFlight);
    this.completion = new PeerCompletionCache(this.index, (err) =>
      this.logger.warn('peer completion not worked out', { err: err instanceof Error ? err.message : String(err) }),
    );
    // Every file in flight listens on the pass signal (and a few waits besides), and so may every block
    // in flight (blocks copied locally wait for staging buffers on it; the folder's byte budget bounds
    // them): not a leak, so no warning.
    const blocksInFlight = Math.ceil(this.limits.folderBytesInFlight / MIN_BLOCK_SIZE);
    setMaxListeners(blocksInFlight + 4 * this.limits.maxFilesInFlight + 16, this.lifetime.signal);
    const warmFiles = options.warmFiles ?? new WarmFiles();
    this.server = new BlockServer({ root: this.root, index: this.index, logger: this.logger, requestScan: (p) => this.scan(p), warmFiles });
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
    this.puller = new Puller({
      deleteGuard: this.deleteGuard,
      folderId: this.keys.folderId,
      root: this.root,
      index: this.index,
      archive: options.archive,
      paths: new DiskPaths(this.root, { ...(options.caseSensitive === undefined ? {} : { caseSensitive: options.caseSensitive }), ...(options.io ? { io: options.io } : {}) }),
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
      exclusive: options.exclusive,
      requestScan: (under) => this.scan(under),
      peersFor: (record) => this.peersFor(record),
      committed: () => this.publish(),
      pullRequests: () => this.pullRequests,
      outcome: (path, outcome, reason) => this.pullOutcome(path, outcome, reason),
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
    this.completion.close();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.purgeTimer) clearInterval(this.purgeTimer);
    for (const deviceId of [...this.links.keys()]) this.detach(deviceId);
    await this.pulling?.catch(() => undefined);
    this.server.close();
  }

  /**
   * Starts syncing with a peer over an established connection. Returns false (and does nothing)
   * when the peer is ENC and this device holds no content key (a grantee).
   */
  async attach(link: PeerFolderLink): Promise<boolean> {
    if (this.closed) return false;
    const enc = this.keys.access !== 'enc' && link.peerAccess === 'enc';
    if (enc && !this.enc) {
      this.logger.info('skipping an encrypted peer: a grantee holds no content key', { device: link.deviceId });
      return false;
    }
    // A link that replaces another (a direct link after a relayed one) keeps the device's bytes in
    // flight: requests still answered on the old link are counted against the same budget.
    const previous = this.links.get(link.deviceId);
    const carried = previous && !previous.enc && !enc ? previous.budget : undefined;
    this.detach(link.deviceId);
    const { peerState } = link;
    // A new index ID (or one that shrank) means the peer started over: forget its old records.
    const storedId = this.index.peerIndexId(link.deviceId);
    let received = this.index.peerSequence(link.deviceId);
    if (enc && received > 0 && !this.enc!.knows(link.deviceId)) {
      // How to fetch from an ENC peer lives in memory: after a restart, take its full index again.
      await this.index.setPeerSequence(link.deviceId, 0, Buffer.alloc(peerState.indexId.length));
      this.logger.info('reconnecting to an encrypted peer for its full index', { device: link.deviceId });
      void link.connection.close('RESYNC', 'full index needed');
      return false;
    }
    if (!storedId?.equals(peerState.indexId) || peerState.maxSequence < received) {
      await this.index.clearRemote(link.deviceId);
      await this.index.setPeerSequence(link.deviceId, 0, peerState.indexId);
      received = 0;
      this.failed.clearSource(link.deviceId); // its refused records are judged again as the full index comes
    }
    const ours = this.index.indexId();
    const resume = peerState.receivedIndexId.equals(ours) && peerState.receivedSequence <= this.index.localSequence();
    const translate = enc ? (record: FileRecord) => this.enc!.outgoing(record) : undefined;
    const unsigned = !enc && folderKeyLink(this.keys, link.peerHoldsFolderKey);
    const sender = new IndexSender(this.keys, this.index, link.connection, this.logger, {
      sentSequence: resume ? peerState.receivedSequence : 0,
      full: !resume,
      unsigned,
      cache: this.records,
      ...(translate ? { translate } : {}),
    });
    const state: LinkState = {
      link,
      sender,
      budget: carried ?? new ByteBudget(this.limits.peerBytesInFlight),
      received,
      linkSequence: -1,
      enc,
      unsigned,
      badBlocks: 0,
      sample: { atMs: Date.now(), bytesIn: link.connection.bytesIn, bytesOut: link.connection.bytesOut, inRateBps: 0, outRateBps: 0 },
    };
    this.links.set(link.deviceId, state);
    this.known.set(link.deviceId, this.peerReport(state, true));
    this.logger.info('peer attached', { device: link.deviceId, access: link.peerAccess, resumeAfter: resume ? peerState.receivedSequence : 0 });
    sender.kick();
    this.schedulePull();
    return true;
  }

  /** Stops syncing with a device; given a connection, only if that is still the device's link (a replaced one must not detach its successor). */
  detach(deviceId: string, connection?: PeerConnection): void {
    const state = this.links.get(deviceId);
    if (!state || (connection && state.link.connection !== connection)) return;
    state.sender.stop();
    this.links.delete(deviceId);
    if (state.enc) {
      // What we know of an ENC peer's blocks is not kept: its full index comes again next time.
      this.enc!.forget(deviceId);
      void this.index.setPeerSequence(deviceId, 0, Buffer.alloc(state.link.peerState.indexId.length)).catch(() => undefined);
    }
    const { closeCode, closeReason } = state.link.connection;
    this.known.set(deviceId, {
      ...this.peerReport(state, false),
      inRateBps: 0,
      outRateBps: 0,
      ...(closeCode ? { lastClose: printable(`${closeCode}: ${closeReason ?? ''}`).slice(0, 300), lastCloseAtMs: Date.now() } : {}),
    });
  }

  /** The scanner wrote records: announce them, and pull if a local change lost against the global version. */
  localChanged(): void {
    this.localChangeCount = undefined;
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
    return this.links.get(deviceId)?.sender.recordsSent ?? 0;
  }

  /**
   * An Index or IndexUpdate from an attached peer, over `connection`. Throws PROTOCOL or
   * SIGNATURE_INVALID: drop the connection. A batch that arrives over a connection this device's
   * link has since been replaced by (still queued when the peer reconnected) is dropped unstored:
   * the new link resumes from what was stored when its handshake ran.
   */
  async receiveIndex(deviceId: string, incoming: IndexMessage, connection?: PeerConnection): Promise<void> {
    const state = this.requireLink(deviceId);
    if (connection && state.link.connection !== connection) {
      this.logger.debug('index batch from a replaced connection; dropped', { device: deviceId, lastSequence: incoming.lastSequence });
      return;
    }
    // While a batch is being stored, what it needs is about to be pulled: not a stall.
    this.receiving++;
    try {
      await this.storeIndex(state, incoming);
    } finally {
      this.receiving--;
    }
  }

  private async storeIndex(state: LinkState, incoming: IndexMessage): Promise<void> {
    const deviceId = state.link.deviceId;
    let message = incoming;
    const expected = { indexId: state.link.peerState.indexId, afterSequence: state.received, linkSequence: state.linkSequence };
    const checks = { grants: this.options.grants, logger: this.logger };
    // Records the validator refused: skipped and reported, and the stream goes on past them.
    for (const bad of message.rejected ?? []) this.reportFailed(bad.path || '(no path)', `refused from peer: ${bad.reason}`, deviceId);
    if (state.enc) {
      // ENC-facing records are signed too: check them, then check the plaintext records they seal.
      await checkIncomingIndex(this.keys, message, expected, checks);
      message = this.enc!.incoming(deviceId, message, (path, reason) => this.reportFailed(path, `refused from peer: ${reason}`, deviceId));
    }
    const signed = await checkIncomingIndex(this.keys, message, expected, { ...checks, unsignedAccepted: state.unsigned });
    const builtIn = IgnoreRules.builtIn();
    const records = signed.filter((record) => {
      if (isLocalOnly(record.path)) {
        // A peer's .ferryignore (an older version sends it): each device keeps its own rules.
        this.logger.debug("peer's .ferryignore not taken: ignore rules are local to each device", { device: deviceId });
        return false;
      }
      if (builtIn.ignores(record.path, record.type === 'dir')) {
        this.logger.warn('peer sent a record for a reserved path; ignored', { device: deviceId, path: record.path });
        return false;
      }
      try {
        checkIndexPath(record.path);
        return true;
      } catch (err) {
        this.reportFailed(record.path, `cannot be indexed here: ${err instanceof Error ? err.message : String(err)}`, deviceId);
        return false;
      }
    });
    // A record of this peer's that was refused before and now came valid is no longer a failure.
    if (this.failed.count > 0) for (const record of records) this.failed.clear(record.path, deviceId);
    // Issued together, so the three writes share one durable commit instead of waiting for three.
    const writes: Array<Promise<unknown>> = [];
    const taken = records.length > 0 ? this.index.offerGlobal(records) : Promise.resolve([]);
    if (records.length > 0) writes.push(this.index.putRemote(deviceId, records), taken);
    state.linkSequence = Math.max(state.linkSequence, message.lastSequence);
    // A resumed stream may start before what an earlier link stored: never move backwards.
    const received = Math.max(state.received, message.lastSequence);
    writes.push(this.index.setPeerSequence(deviceId, received, message.indexId));
    state.received = received;
    await Promise.all(writes);
    this.indexBatches++;
    const newGlobal = (await taken).length > 0;
    if (newGlobal) this.localChangeCount = undefined;
    // New remote records may be new versions, or new sources for what could not be fetched before;
    // a peer's echo of what we already have (most of its updates) needs no pass.
    if (newGlobal || (records.length > 0 && this.index.hasNeeded())) this.schedulePull();
  }

  /** A block Request from an attached peer. */
  async answer(deviceId: string, request: RequestMessage, allocate?: (size: number) => Buffer): Promise<BlockAnswer> {
    const state = this.requireLink(deviceId);
    return state.enc ? this.enc!.answer(request) : this.server.answer(request, allocate);
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
    this.localChangeCount = undefined;
    this.schedulePull();
    return count;
  }

  report(): FolderSyncReport {
    const counts = this.index.counts();
    const now = Date.now();
    for (const state of this.links.values()) this.known.set(state.link.deviceId, this.peerReport(state, true, now));
    // What is needed only in subtrees this device does not take leaves the folder idle.
    const needed = counts.needFiles > this.unselectedNeeded;
    const moving = this.pulling !== null || this.receiving > 0;
    // A peer's index still arriving is syncing even while nothing is needed yet; one that stopped
    // arriving (the peer went away) is a stall, never idle.
    const exchanging = [...this.links.values()].some((link) => link.received < indexAnnounced(link));
    const incomplete = [...this.known.values()].some((peer) => !peer.connected && peer.indexSequence < peer.indexAnnounced);
    // A deletion, a directory or a mode the puller keeps failing to apply is needed too, though it counts no file.
    const failing = this.lastPullFailure !== undefined && this.index.hasNeeded();
    const state = (moving && needed) || exchanging ? 'syncing' : this.lastError ? 'error' : needed || incomplete || failing ? 'stalled' : 'idle';
    return {
      state,
      ...(this.lastError ? { error: this.lastError } : {}),
      ...(state === 'stalled' ? { stalledReason: this.stalledReason(counts.needFiles) } : {}),
      needFiles: counts.needFiles,
      needBytes: counts.needBytes,
      ...(this.unselectedNeeded > 0 ? { unselectedFiles: this.unselectedNeeded } : {}),
      localChanges: this.countLocalChanges(),
      failedItems: this.failed.count,
      failed: this.failed.list(),
      peers: this.peerCompletion(counts),
      inRateBps: this.receiveRate(now),
      filesInProgress: this.puller.inProgress(),
      partialBytes: this.puller.partialBytes(),
      ...(this.deleteGuard?.report() ? { heldDeletions: this.deleteGuard.report() } : {}),
    };
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
    this.localChangeCount = undefined;
    this.publish();
    this.schedulePull();
    return restored;
  }

  /** Resolves once no pull pass is running or wanted (tests; the daemon's shutdown). */
  async idle(): Promise<void> {
    while (this.pulling) await this.pulling.catch(() => undefined);
    for (const state of this.links.values()) await state.sender.settled();
  }

  /** Runs a pull pass soon (coalesced with one already running). */
  schedulePull(): void {
    if (this.closed) return;
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
    while (this.pullWanted && !this.closed) {
      // After failures, pace the passes: a path that keeps failing (and asking for scans) must not spin.
      if (failed > 0) await sleep(Math.min(PASS_GAP_AFTER_FAILURE_MS, this.limits.retryIntervalMs), this.lifetime.signal).catch(() => undefined);
      if (this.closed) return;
      this.pullWanted = false;
      try {
        this.ignoredInPass = 0;
        this.unselectedInPass = 0;
        const result = await this.puller.pass(this.lifetime.signal);
        this.ignoredNeeded = this.ignoredInPass;
        this.unselectedNeeded = this.unselectedInPass;
        failed = result.failed;
        this.lastError = undefined;
        if (result.done > 0) this.logger.debug('pull pass', { ...result });
      } catch (err) {
        if (isFerryError(err, 'ABORTED') || this.closed) return;
        failed = 1;
        this.lastError = `pull failed: ${err instanceof Error ? err.message : String(err)}`;
        this.logger.error(this.lastError);
      }
    }
    if (failed > 0 && !this.closed) {
      this.retryTimer = setTimeout(() => this.schedulePull(), this.limits.retryIntervalMs);
      this.retryTimer.unref();
    }
  }

  /** What the puller made of one path: a refused name is a failed item; a retryable failure names a stall. */
  private pullOutcome(path: string, outcome: PullOutcome, reason?: string): void {
    if (outcome === 'unselected') {
      this.unselectedInPass++;
    } else if (outcome === 'ignored') {
      this.ignoredInPass++;
    } else if (outcome === 'done') {
      this.failed.clear(path, 'local');
      if (this.lastPullFailure?.path === path) this.lastPullFailure = undefined;
    } else if (outcome === 'refused') {
      this.reportFailed(path, reason ?? 'refused', 'local');
    } else {
      this.lastPullFailure = { path, reason: reason ?? 'failed' };
    }
  }

  private publish(): void {
    for (const state of this.links.values()) state.sender.kick();
  }

  private scan(under: string): void {
    if (this.keys.access === 'enc') return; // an ENC folder holds only what it fetched: nothing to scan
    this.options.requestScan(under).catch((err: unknown) => this.logger.warn('scan request failed', { under, err: String(err) }));
  }

  private requireLink(deviceId: string): LinkState {
    const state = this.links.get(deviceId);
    if (!state) throw new FerryError('PROTOCOL', `folder ${this.keys.folderIdHex.slice(0, 8)} is not shared with ${deviceId}`);
    return state;
  }

  private peersFor(record: FileRecord): BlockPeer[] {
    const holders = new Set(this.index.devicesWith(record.path, record.version));
    const peers: BlockPeer[] = [];
    for (const state of this.links.values()) {
      if (!holders.has(remoteDevice(state.link.deviceId))) continue;
      const { deviceId } = state.link;
      // Each request goes over the device's link at the moment it is sent: when a direct link
      // replaces a relayed one, new requests take it at once while those in flight are answered on
      // the old one (it drains before it closes). A link of another kind (ENC) is not this peer.
      const current = (): LinkState | undefined => {
        const now = this.links.get(deviceId);
        return now && now.enc === state.enc && !now.link.connection.closed ? now : undefined;
      };
      const servedBy = new WeakMap<Buffer, PeerConnection>();
      peers.push({
        deviceId,
        budget: state.budget,
        usable: () => current()?.budget === state.budget,
        // Ciphertext blocks each carry their own tag: an ENC side serves and is served one at a time.
        multiBlock: !state.enc && this.keys.access !== 'enc',
        request: async (params, signal) => {
          const link = current();
          if (!link) throw new FerryError('CLOSED', `no link to ${deviceId}`);
          const { connection } = link.link;
          if (link.enc) return this.enc!.request(deviceId, params, (encParams) => connection.request(encParams, { signal }));
          const data = await connection.request(params, { signal });
          servedBy.set(data, connection);
          return data;
        },
        // Encrypted peers' blocks are decrypted into fresh buffers: nothing to give back.
        recycle: (data) => servedBy.get(data)?.buffers.recycle(data),
        reportBadBlock: (path, offset) => {
          const link = current() ?? state;
          link.badBlocks++;
          if (link.badBlocks >= this.limits.maxBadBlocksPerPeer) {
            this.logger.warn('peer keeps sending wrong blocks; dropping it', { device: deviceId, path, offset });
            void link.link.connection.close('BLOCK_MISMATCH', `${link.badBlocks} blocks failed their hash check`);
          }
        },
      });
    }
    return peers;
  }

  /** Why needed files are not moving: no peer, a failure the puller keeps hitting, or nobody has them. */
  private stalledReason(needFiles: number): string {
    if (needFiles === 0) {
      const peer = [...this.known.values()].find((p) => !p.connected && p.indexSequence < p.indexAnnounced);
      if (peer) {
        const who = printable(peer.name || peer.device.slice(0, 7));
        return `the index of ${who} is incomplete (${peer.indexSequence} of ${peer.indexAnnounced}) and it is not connected${peer.lastClose ? `; last close ${peer.lastClose}` : ''}`;
      }
    }
    const files = needFiles === 0 ? 'changes needed' : `${needFiles} ${needFiles === 1 ? 'file' : 'files'} needed`;
    if (this.links.size === 0) return `${files}, no peer connected`;
    if (this.lastPullFailure) {
      return printable(`${files}; ${this.lastPullFailure.path}: ${this.lastPullFailure.reason} (retrying)`).slice(0, 600);
    }
    if (this.keys.access === 'ro' && this.countLocalChanges() > 0) return `${files}; local changes of a read-only folder are kept ('ferry revert' undoes them)`;
    if (this.unselectedNeeded > 0) return `${files}; ${this.unselectedNeeded} of what peers have lies in subtrees this device does not sync ('ferry select')`;
    if (this.ignoredNeeded > 0) return `${files}; ${this.ignoredNeeded} of what peers have is ignored here by this device's .ferryignore`;
    return `${files}; no connected peer can supply them`;
  }

  private countLocalChanges(): number {
    if (this.keys.access !== 'ro') return 0;
    if (this.localChangeCount === undefined) {
      let count = 0;
      for (const local of this.index.localRecords()) if (isLocalChange(local, this.index.getGlobal(local.path))) count++;
      this.localChangeCount = count;
    }
    return this.localChangeCount;
  }

  /** Every known peer with its completion (cached: worked out again only when the index moved). */
  private peerCompletion(counts: { globalFiles: number; globalBytes: number }): PeerReport[] {
    const peers = [...this.known.values()];
    const stamp = `${this.index.localSequence()}:${counts.globalFiles}:${counts.globalBytes}:${this.indexBatches}`;
    const known = this.completion.get(peers.map((peer) => peer.device), stamp, counts.globalFiles);
    return peers.map((peer) => ({ ...peer, ...known.get(peer.device) }));
  }

  /** Block bytes requested from peers per second, sampled at most once a second. */
  private receiveRate(now: number): number {
    const sample = this.rateSample;
    const elapsedMs = now - sample.atMs;
    if (elapsedMs >= 1000) {
      sample.rateBps = Math.round(((this.stats.bytesRequested - sample.bytes) * 1000) / elapsedMs);
      Object.assign(sample, { atMs: now, bytes: this.stats.bytesRequested });
    }
    return sample.rateBps;
  }

  private peerReport(state: LinkState, connected: boolean, now = Date.now()): PeerLinkReport {
    const { connection } = state.link;
    const sample = state.sample;
    const elapsedMs = now - sample.atMs;
    if (elapsedMs >= 1000) {
      sample.inRateBps = Math.round(((connection.bytesIn - sample.bytesIn) * 1000) / elapsedMs);
      sample.outRateBps = Math.round(((connection.bytesOut - sample.bytesOut) * 1000) / elapsedMs);
      Object.assign(sample, { atMs: now, bytesIn: connection.bytesIn, bytesOut: connection.bytesOut });
    }
    return {
      device: state.link.deviceId,
      name: state.link.deviceName,
      address: state.link.address,
      connected,
      bytesIn: connection.bytesIn,
      bytesOut: connection.bytesOut,
      inRateBps: sample.inRateBps,
      outRateBps: sample.outRateBps,
      indexSequence: state.received,
      indexAnnounced: indexAnnounced(state),
    };
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
