// PeerSession: one established connection: attaches it to each shared folder and runs its single read loop.

import { FerryError, isFerryError } from '../errors.js';
import type { PeerConnection } from '../protocol/connection.js';
import type { HandshakeResult } from '../protocol/handshake.js';
import {
  isRelayMessage,
  type GrantsMessage, type IndexMessage, type IntroduceFailedMessage, type IntroduceMessage, type IntroduceRequestMessage, type Message, type PeerExchangeMessage, type RelayMessage, type RequestMessage,
} from '../protocol/messages.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { ByteBudget } from './budget.js';
import type { FolderSync } from './folder-sync.js';
import type { RateLimiter } from './rate-limit.js';

/**
 * @default of PeerSessionOptions.maxServeBytes: block bytes being read for this peer, or written to
 * its socket, at once. As much as a receiver asks of one peer (SYNC_DEFAULTS.peerBytesInFlight).
 */
export const SERVE_BYTES_IN_FLIGHT = 4 * 1024 * 1024;
/** Index batches received and waiting to be stored before the read loop waits for them. */
export const MAX_QUEUED_INDEX_MESSAGES = 4;

export interface PeerSessionOptions {
  /** The peer's address, for status. */
  address?: string;
  maxServeBytes?: number;
  /** The daemon's upload limit: the bytes of each block Response are taken before it is sent. */
  upload?: RateLimiter;
  /** Receives the peer's PeerExchange for a folder shared on this connection (discovery's business). */
  onPeerExchange?: (message: PeerExchangeMessage) => void;
  /** Receives the peer's Grants for a folder shared on this connection (the daemon's grant registry checks them). */
  onGrants?: (message: GrantsMessage) => Promise<void>;
  /** Receives the peer's IntroduceRequest, Introduce and IntroduceFailed for a folder shared on this connection (hole punching: the daemon's business). */
  onIntroduce?: (message: IntroduceRequestMessage | IntroduceMessage | IntroduceFailedMessage) => void;
  /** Receives relay messages (src/relay/); must not block; throws PROTOCOL for a broken rule. Without it they are a protocol error. */
  onRelay?: (message: RelayMessage) => void;
}

export class PeerSession extends Resource {
  readonly deviceId: string;
  /** Folder ID (hex) → the folder attached on this connection. */
  private readonly attached = new Map<string, FolderSync>();
  /** Shared folders this layer leaves alone on this connection (ENC). */
  private readonly skipped = new Set<string>();
  private readonly serveBudget: ByteBudget;
  private readLoop: Promise<void> = Promise.resolve();
  private readonly serving = new Set<Promise<void>>();
  /** Index batches being stored, in order (see queueIndex). */
  private indexChain: Promise<void> = Promise.resolve();
  private indexQueued = 0;
  private indexFailed = false;
  /** Fired when the session closes: ends waits for the upload limit. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly connection: PeerConnection,
    private readonly handshake: HandshakeResult,
    private readonly folders: (folderIdHex: string) => FolderSync | undefined,
    private readonly logger: Logger,
    private readonly options: PeerSessionOptions = {},
  ) {
    super();
    this.deviceId = handshake.peer.deviceId;
    this.serveBudget = new ByteBudget(options.maxServeBytes ?? SERVE_BYTES_IN_FLIGHT);
  }

  /** Attaches the connection to every shared folder, then starts the read loop. */
  start(): Promise<void> {
    return this.open();
  }

  /** Resolves when the connection is gone and every folder was detached. */
  get finished(): Promise<void> {
    return this.readLoop;
  }

  protected async _open(): Promise<void> {
    for (const shared of this.handshake.folders) {
      const hex = shared.keys.folderIdHex;
      const folder = this.folders(hex);
      if (!folder) {
        this.logger.debug('shared folder is not running here', { folder: hex.slice(0, 8) });
        continue;
      }
      const attached = await folder.attach({
        deviceId: this.deviceId,
        deviceName: this.handshake.peer.deviceName,
        address: this.options.address ?? '',
        connection: this.connection,
        peerAccess: shared.peerAccess,
        peerHoldsFolderKey: shared.peerHoldsFolderKey,
        peerState: shared.peerState,
        peerFeatures: this.handshake.peer.features ?? [],
      });
      if (attached) this.attached.set(hex, folder);
      else this.skipped.add(hex);
    }
    this.readLoop = this.run();
  }

  protected async _close(): Promise<void> {
    await this.connection.close('SHUTDOWN', 'closing');
    await this.readLoop;
  }

  private async run(): Promise<void> {
    try {
      for await (const message of this.connection) {
        await this.dispatch(message);
      }
    } catch (err) {
      const error = isFerryError(err) ? err : new FerryError('INTERNAL', String(err));
      this.logger.warn('dropping peer connection', { device: this.deviceId, code: error.code, reason: error.message });
      await this.connection.close(error.code, error.message.slice(0, 900));
    } finally {
      this.stopping.abort();
      await Promise.allSettled([...this.serving, this.indexChain]);
      for (const folder of this.attached.values()) folder.detach(this.deviceId, this.connection);
      this.attached.clear();
    }
  }

  /** The folder a message names; undefined for one this layer skips; PROTOCOL for one not shared with this peer. */
  private folderFor(folderId: Buffer): FolderSync | undefined {
    const hex = folderId.toString('hex');
    const folder = this.attached.get(hex);
    if (folder) return folder;
    if (this.skipped.has(hex)) return undefined;
    throw new FerryError('PROTOCOL', `message for folder ${hex.slice(0, 8)}…, which is not shared on this connection`);
  }

  private async dispatch(message: Message): Promise<void> {
    if (isRelayMessage(message) && this.options.onRelay) return this.options.onRelay(message);
    switch (message.type) {
      case 'Index':
      case 'IndexUpdate':
        return this.queueIndex(message);
      case 'Request':
        return this.acceptRequest(message);
      case 'Have':
      case 'Progress':
        this.folderFor(message.folderId);
        return;
      case 'Hashing':
        this.folderFor(message.folderId)?.receiveHashing(this.deviceId, message);
        return;
      case 'PeerExchange': {
        const hex = message.folderId.toString('hex');
        if (!this.handshake.folders.some((shared) => shared.keys.folderIdHex === hex)) this.folderFor(message.folderId);
        this.options.onPeerExchange?.(message);
        return;
      }
      case 'Grants': {
        const hex = message.folderId.toString('hex');
        if (!this.handshake.folders.some((shared) => shared.keys.folderIdHex === hex)) this.folderFor(message.folderId);
        await this.options.onGrants?.(message);
        return;
      }
      case 'IntroduceRequest':
      case 'Introduce':
      case 'IntroduceFailed': {
        const hex = message.folderId.toString('hex');
        if (!this.handshake.folders.some((shared) => shared.keys.folderIdHex === hex)) this.folderFor(message.folderId);
        this.options.onIntroduce?.(message);
        return;
      }
      default:
        throw new FerryError('PROTOCOL', `unexpected ${message.type} after the handshake`);
    }
  }

  /**
   * Index batches are stored one after another, in order, but off the read loop: block Requests
   * arriving meanwhile are served at once instead of waiting for the index writes to be durable.
   * At most MAX_QUEUED_INDEX_MESSAGES wait; beyond that the read loop waits too (backpressure).
   */
  private async queueIndex(message: IndexMessage): Promise<void> {
    const folder = this.folderFor(message.folderId);
    if (!folder) return;
    this.indexQueued++;
    this.indexChain = this.indexChain
      .then(() => (this.indexFailed ? undefined : folder.receiveIndex(this.deviceId, message, this.connection)))
      .catch(async (err: unknown) => {
        if (this.indexFailed) return;
        this.indexFailed = true;
        const error = isFerryError(err) ? err : new FerryError('INTERNAL', String(err));
        this.logger.warn('dropping peer connection', { device: this.deviceId, code: error.code, reason: error.message });
        await this.connection.close(error.code, error.message.slice(0, 900));
      })
      .finally(() => void this.indexQueued--);
    if (this.indexQueued >= MAX_QUEUED_INDEX_MESSAGES) await this.indexChain;
  }

  /** Serves in the background (bounded by bytes), so the read loop keeps reading. */
  private async acceptRequest(request: RequestMessage): Promise<void> {
    const folder = this.folderFor(request.folderId);
    if (!folder) {
      await this.respond({ type: 'Response', id: request.id, error: 'NOT_SHARED' });
      return;
    }
    await this.serveBudget.acquire(request.size);
    const task = folder
      .answer(this.deviceId, request, (size) => this.connection.blockBuffer(size))
      .then(async (answer) => {
        if ('data' in answer) await this.options.upload?.take(answer.data.length, this.stopping.signal);
        return this.respond({ type: 'Response', id: request.id, ...answer });
      })
      .catch((err: unknown) => {
        if (this.stopping.signal.aborted) return;
        this.logger.warn('cannot serve a block', { path: request.path, err: err instanceof Error ? err : String(err) });
        return this.respond({ type: 'Response', id: request.id, error: 'GENERIC' });
      })
      .finally(() => {
        this.serveBudget.release(request.size);
        this.serving.delete(task);
      });
    this.serving.add(task);
  }

  private async respond(message: Message): Promise<void> {
    await this.connection.send(message).catch(() => undefined);
  }
}
