// What one folder reports: its state (idle, syncing, stalled, error) and why it is stalled, each peer (rates, index progress, last close, completion), its receive rate and an RO folder's local changes.

import type { PrefetchReport } from './prefetch.js';
import type { FolderKeys } from '../keys/index.js';
import type { FolderIndex } from '../index/types.js';
import type { Logger } from '../util/log.js';
import type { DeleteGuard, HeldDeletionsReport } from './delete-guard.js';
import { printable, type FailedItem, type FailedItems } from './failed-items.js';
import type { TransferStats } from './fetcher.js';
import { indexAnnounced, type FolderLinks, type LinkState } from './folder-links.js';
import { PeerCompletionCache } from './peer-completion.js';
import type { Puller } from './puller.js';
import type { PullLoop } from './pull-loop.js';
import { isLocalChange } from './revert.js';

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
  /** Streaming large files: what the prefetcher did (absent when no announcement came). */
  prefetch?: PrefetchReport;
}

export interface FolderStatusOptions {
  keys: FolderKeys;
  index: FolderIndex;
  logger: Logger;
  links: FolderLinks;
  loop: PullLoop;
  puller: Puller;
  failed: FailedItems;
  deleteGuard: DeleteGuard | undefined;
  stats: TransferStats;
}

/** Works out a folder's report from its links, its pull loop and its index; remembers peers after they leave. */
export class FolderStatus {
  private readonly keys: FolderKeys;
  private readonly index: FolderIndex;
  private readonly links: FolderLinks;
  private readonly loop: PullLoop;
  private readonly known = new Map<string, PeerLinkReport>();
  private readonly completion: PeerCompletionCache;
  private rateSample = { atMs: Date.now(), bytes: 0, rateBps: 0 };
  private localChangeCount: number | undefined;

  constructor(private readonly options: FolderStatusOptions) {
    this.keys = options.keys;
    this.index = options.index;
    this.links = options.links;
    this.loop = options.loop;
    this.completion = new PeerCompletionCache(this.index, (err) =>
      options.logger.warn('peer completion not worked out', { err: err instanceof Error ? err.message : String(err) }),
    );
  }

  close(): void {
    this.completion.close();
  }

  /** A link began: its peer is reported as connected. */
  attached(state: LinkState): void {
    this.known.set(state.link.deviceId, this.peerReport(state, true));
  }

  /** A link ended: its peer stays in the report, disconnected, with why the link closed. */
  detached(state: LinkState): void {
    const { closeCode, closeReason } = state.link.connection;
    this.known.set(state.link.deviceId, {
      ...this.peerReport(state, false),
      inRateBps: 0,
      outRateBps: 0,
      ...(closeCode ? { lastClose: printable(`${closeCode}: ${closeReason ?? ''}`).slice(0, 300), lastCloseAtMs: Date.now() } : {}),
    });
  }

  /** Local or global records changed: an RO folder's local changes are counted again when next asked. */
  localChangesMoved(): void {
    this.localChangeCount = undefined;
  }

  report(): FolderSyncReport {
    const counts = this.index.counts();
    const now = Date.now();
    for (const state of this.links.values()) this.known.set(state.link.deviceId, this.peerReport(state, true, now));
    // What is needed only in subtrees this device does not take leaves the folder idle.
    const needed = counts.needFiles > this.loop.unselected;
    const moving = this.loop.running || this.links.receiving > 0;
    // A peer's index still arriving is syncing even while nothing is needed yet; one that stopped
    // arriving (the peer went away) is a stall, never idle.
    const exchanging = [...this.links.values()].some((link) => link.received < indexAnnounced(link));
    const incomplete = [...this.known.values()].some((peer) => !peer.connected && peer.indexSequence < peer.indexAnnounced);
    // A deletion, a directory or a mode the puller keeps failing to apply is needed too, though it counts no file.
    const failing = this.loop.lastPullFailure !== undefined && this.index.hasNeeded();
    const state = (moving && needed) || exchanging ? 'syncing' : this.loop.lastError ? 'error' : needed || incomplete || failing ? 'stalled' : 'idle';
    return {
      state,
      ...(this.loop.lastError ? { error: this.loop.lastError } : {}),
      ...(state === 'stalled' ? { stalledReason: this.stalledReason(counts.needFiles) } : {}),
      needFiles: counts.needFiles,
      needBytes: counts.needBytes,
      ...(this.loop.unselected > 0 ? { unselectedFiles: this.loop.unselected } : {}),
      localChanges: this.countLocalChanges(),
      failedItems: this.options.failed.count,
      failed: this.options.failed.list(),
      peers: this.peerCompletion(counts),
      inRateBps: this.receiveRate(now),
      filesInProgress: this.options.puller.inProgress(),
      partialBytes: this.options.puller.partialBytes(),
      ...(this.options.deleteGuard?.report() ? { heldDeletions: this.options.deleteGuard.report() } : {}),
    };
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
    const failure = this.loop.lastPullFailure;
    if (failure) {
      return printable(`${files}; ${failure.path}: ${failure.reason} (retrying)`).slice(0, 600);
    }
    if (this.keys.access === 'ro' && this.countLocalChanges() > 0) return `${files}; local changes of a read-only folder are kept ('ferry revert' undoes them)`;
    if (this.loop.unselected > 0) return `${files}; ${this.loop.unselected} of what peers have lies in subtrees this device does not sync ('ferry select')`;
    if (this.loop.ignored > 0) return `${files}; ${this.loop.ignored} of what peers have is ignored here by this device's .ferryignore`;
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
    const stamp = `${this.index.localSequence()}:${counts.globalFiles}:${counts.globalBytes}:${this.links.indexBatches}`;
    const known = this.completion.get(peers.map((peer) => peer.device), stamp, counts.globalFiles);
    return peers.map((peer) => ({ ...peer, ...known.get(peer.device) }));
  }

  /** Block bytes requested from peers per second, sampled at most once a second. */
  private receiveRate(now: number): number {
    const sample = this.rateSample;
    const elapsedMs = now - sample.atMs;
    if (elapsedMs >= 1000) {
      sample.rateBps = Math.round(((this.options.stats.bytesRequested - sample.bytes) * 1000) / elapsedMs);
      Object.assign(sample, { atMs: now, bytes: this.options.stats.bytesRequested });
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
}
