// The peers attached to one folder: attaching and detaching their links, storing their index batches, answering their block requests, and the block peers a fetch asks.

import { FerryError } from '../errors.js';
import type { FolderKeys, GrantBook } from '../keys/index.js';
import type { Access } from '../keys/types.js';
import { checkIndexPath, remoteDevice } from '../index/keys.js';
import type { FileRecord } from '../index/records.js';
import type { FolderIndex } from '../index/types.js';
import type { PeerConnection } from '../protocol/connection.js';
import type { ClusterFolder, HashingMessage, IndexMessage, RequestMessage } from '../protocol/messages.js';
import { IgnoreRules, isLocalOnly } from '../scan/ignore.js';
import type { Logger } from '../util/log.js';
import { ByteBudget } from './budget.js';
import type { EncBridge } from './enc-bridge.js';
import type { FailedItems } from './failed-items.js';
import type { BlockPeer } from './fetcher.js';
import { checkIncomingIndex, folderKeyLink, IndexSender } from './index-exchange.js';
import type { RecordCache } from './record-cache.js';
import type { BlockAnswer, BlockServer } from './serve.js';

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
  /** Its ClusterState `features` (messages it takes that older peers refuse). @default none */
  peerFeatures?: readonly string[];
}

export interface LinkState {
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
export function indexAnnounced(state: LinkState): number {
  return state.linkSequence >= 0 ? Math.max(state.received, state.link.peerState.maxSequence) : state.received;
}

export interface FolderLinksOptions {
  keys: FolderKeys;
  index: FolderIndex;
  logger: Logger;
  limits: { peerBytesInFlight: number; maxBadBlocksPerPeer: number };
  /** The folder's known grants: records signed under a valid RW grant are accepted too. */
  grants: GrantBook | undefined;
  /** The link to encrypted (ENC) peers (none for grantees and ENC folders). */
  enc: EncBridge | undefined;
  records: RecordCache;
  server: BlockServer;
  failed: FailedItems;
  reportFailed(path: string, reason: string, source: string): void;
  /** A link began or ended (for the peers' reports). */
  attached(state: LinkState): void;
  detached(state: LinkState): void;
  /** A peer's records became new global versions. */
  newGlobal(): void;
  schedulePull(): void;
}

/** The folder's links, one per device. */
export class FolderLinks {
  private readonly links = new Map<string, LinkState>();
  /** The latest attach begun per device (see attach()). */
  private readonly attaching = new Map<string, number>();
  /** Index batches being stored now. */
  private storing = 0;
  /** Peer index batches stored so far: part of the completion cache's stamp. */
  private batches = 0;

  private readonly keys: FolderKeys;
  private readonly index: FolderIndex;
  private readonly logger: Logger;
  private readonly enc: EncBridge | undefined;
  private readonly failed: FailedItems;

  constructor(private readonly options: FolderLinksOptions) {
    this.keys = options.keys;
    this.index = options.index;
    this.logger = options.logger;
    this.enc = options.enc;
    this.failed = options.failed;
  }

  get size(): number {
    return this.links.size;
  }

  values(): IterableIterator<LinkState> {
    return this.links.values();
  }

  /** Index batches being stored now. */
  get receiving(): number {
    return this.storing;
  }

  /** Peer index batches stored so far. */
  get indexBatches(): number {
    return this.batches;
  }

  /** Detaches every link (the folder closes). */
  detachAll(): void {
    for (const deviceId of [...this.links.keys()]) this.detach(deviceId);
  }

  /** Resolves once every link's index sender has nothing left to send. */
  async settled(): Promise<void> {
    for (const state of this.links.values()) await state.sender.settled();
  }

  /**
   * Starts syncing with a peer over an established connection, replacing its earlier link. False (and
   * nothing attached) for an ENC peer when this device holds no content key, or when an ENC peer must
   * reconnect to send its full index.
   */
  async attach(link: PeerFolderLink): Promise<boolean> {
    // Attaches of one device may overlap (a link that replaces another arrives while the other is
    // still attaching): the one begun last wins, whichever finishes last.
    const ticket = (this.attaching.get(link.deviceId) ?? 0) + 1;
    this.attaching.set(link.deviceId, ticket);
    const enc = this.keys.access !== 'enc' && link.peerAccess === 'enc';
    if (enc && !this.enc) {
      this.logger.info('skipping an encrypted peer: a grantee holds no content key', { device: link.deviceId });
      return false;
    }
    // A link that replaces another (a direct link after a relayed one) keeps the device's bytes in
    // flight: requests still answered on the old link are counted against the same budget. With an
    // ENC peer it also keeps what we know of the peer's blocks (its index stays as stored, and the
    // new link resumes it), so nothing in flight or already known is fetched again.
    const previous = this.links.get(link.deviceId);
    const handover = previous !== undefined && previous.enc === enc;
    const carried = handover ? previous.budget : undefined;
    this.detach(link.deviceId, undefined, { handover });
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
    if (this.attaching.get(link.deviceId) !== ticket) {
      // A newer link of the device attached meanwhile: this one (draining) is answered on, not synced over.
      this.logger.debug('a newer link of the device attached meanwhile', { device: link.deviceId });
      return !link.connection.closed;
    }
    const ours = this.index.indexId();
    const resume = peerState.receivedIndexId.equals(ours) && peerState.receivedSequence <= this.index.localSequence();
    const translate = enc ? (record: FileRecord) => this.enc!.outgoing(record) : undefined;
    const unsigned = !enc && folderKeyLink(this.keys, link.peerHoldsFolderKey);
    const sender = new IndexSender(this.keys, this.index, link.connection, this.logger, {
      sentSequence: resume ? peerState.receivedSequence : 0,
      full: !resume,
      unsigned,
      cache: this.options.records,
      ...(translate ? { translate } : {}),
    });
    const state: LinkState = {
      link,
      sender,
      budget: carried ?? new ByteBudget(this.options.limits.peerBytesInFlight),
      received,
      linkSequence: -1,
      enc,
      unsigned,
      badBlocks: 0,
      sample: { atMs: Date.now(), bytesIn: link.connection.bytesIn, bytesOut: link.connection.bytesOut, inRateBps: 0, outRateBps: 0 },
    };
    this.links.set(link.deviceId, state);
    this.options.attached(state);
    this.logger.info('peer attached', { device: link.deviceId, access: link.peerAccess, resumeAfter: resume ? peerState.receivedSequence : 0 });
    sender.kick();
    this.options.schedulePull();
    return true;
  }

  /**
   * Stops syncing with a device; given a connection, only if that is still the device's link (a
   * replaced one must not detach its successor). `handover`: another link of the device takes over
   * at once (attach), so an ENC peer's blocks and index position are kept for it.
   */
  detach(deviceId: string, connection?: PeerConnection, options: { handover?: boolean } = {}): void {
    const state = this.links.get(deviceId);
    if (!state || (connection && state.link.connection !== connection)) return;
    state.sender.stop();
    this.links.delete(deviceId);
    if (state.enc && !options.handover) {
      // What we know of an ENC peer's blocks is not kept: its full index comes again next time.
      this.enc!.forget(deviceId);
      void this.index.setPeerSequence(deviceId, 0, Buffer.alloc(state.link.peerState.indexId.length)).catch(() => undefined);
    }
    this.options.detached(state);
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
    this.storing++;
    try {
      await this.storeIndex(state, incoming);
    } finally {
      this.storing--;
    }
  }

  private async storeIndex(state: LinkState, incoming: IndexMessage): Promise<void> {
    const deviceId = state.link.deviceId;
    let message = incoming;
    const expected = { indexId: state.link.peerState.indexId, afterSequence: state.received, linkSequence: state.linkSequence };
    const checks = { grants: this.options.grants, logger: this.logger };
    // Records the validator refused: skipped and reported, and the stream goes on past them.
    for (const bad of message.rejected ?? []) this.options.reportFailed(bad.path || '(no path)', `refused from peer: ${bad.reason}`, deviceId);
    if (state.enc) {
      // ENC-facing records are signed too: check them, then check the plaintext records they seal.
      await checkIncomingIndex(this.keys, message, expected, checks);
      message = this.enc!.incoming(deviceId, message, (path, reason) => this.options.reportFailed(path, `refused from peer: ${reason}`, deviceId));
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
        this.options.reportFailed(record.path, `cannot be indexed here: ${err instanceof Error ? err.message : String(err)}`, deviceId);
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
    this.batches++;
    const newGlobal = (await taken).length > 0;
    if (newGlobal) this.options.newGlobal();
    // New remote records may be new versions, or new sources for what could not be fetched before;
    // a peer's echo of what we already have (most of its updates) needs no pass.
    if (newGlobal || (records.length > 0 && this.index.hasNeeded())) this.options.schedulePull();
  }

  /** A block Request from an attached peer. */
  async answer(deviceId: string, request: RequestMessage, allocate?: (size: number) => Buffer): Promise<BlockAnswer> {
    const state = this.requireLink(deviceId);
    return state.enc ? this.enc!.answer(request) : this.options.server.answer(request, allocate);
  }

  /**
   * Sends a Hashing message to every attached peer that takes it and may read the folder (not ENC
   * links: a path is plaintext). Not awaited: a slow link only delays its own copy.
   */
  broadcastHashing(message: HashingMessage, deviceId?: string): void {
    for (const state of this.links.values()) {
      const { link } = state;
      if (deviceId !== undefined && link.deviceId !== deviceId) continue;
      if (state.enc || link.peerAccess === 'enc' || !link.peerFeatures?.includes('hashing') || link.connection.closed) continue;
      link.connection.send(message).catch(() => undefined);
    }
  }

  /** The link of a device when its access is `rw` and it is not an ENC link (where Hashing is taken from), and a block peer for it. */
  hashingSource(deviceId: string): { peer: BlockPeer; access: Access } | undefined {
    const state = this.links.get(deviceId);
    if (!state || state.enc) return undefined;
    return { peer: this.blockPeer(state), access: state.link.peerAccess };
  }

  /** Tells every attached peer of new local records. */
  publish(): void {
    for (const state of this.links.values()) state.sender.kick();
  }

  private requireLink(deviceId: string): LinkState {
    const state = this.links.get(deviceId);
    if (!state) throw new FerryError('PROTOCOL', `folder ${this.keys.folderIdHex.slice(0, 8)} is not shared with ${deviceId}`);
    return state;
  }

  /** Connected peers whose record of the path has exactly this version. */
  peersFor(record: FileRecord): BlockPeer[] {
    const holders = new Set(this.index.devicesWith(record.path, record.version));
    const peers: BlockPeer[] = [];
    for (const state of this.links.values()) {
      if (holders.has(remoteDevice(state.link.deviceId))) peers.push(this.blockPeer(state));
    }
    return peers;
  }

  /** Fetching blocks from the device of this link, over whichever link it has when each request goes. */
  private blockPeer(state: LinkState): BlockPeer {
    const { deviceId } = state.link;
    // Each request goes over the device's link at the moment it is sent: when a direct link
    // replaces a relayed one, new requests take it at once while those in flight are answered on
    // the old one (it drains before it closes). A link of another kind (ENC) is not this peer.
    const current = (): LinkState | undefined => {
      const now = this.links.get(deviceId);
      return now && now.enc === state.enc && !now.link.connection.closed ? now : undefined;
    };
    const servedBy = new WeakMap<Buffer, PeerConnection>();
    return {
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
        if (link.badBlocks >= this.options.limits.maxBadBlocksPerPeer) {
          this.logger.warn('peer keeps sending wrong blocks; dropping it', { device: deviceId, path, offset });
          void link.link.connection.close('BLOCK_MISMATCH', `${link.badBlocks} blocks failed their hash check`);
        }
      },
    };
  }
}
