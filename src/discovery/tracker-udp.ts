// BitTorrent UDP tracker client (BEP 15): connect for a connection ID (kept 1 minute), announce,
// retransmit after 15·2^n seconds, n = 0…8; replies matched by transaction ID, everything else dropped.

import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { FerryError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { ANNOUNCED_LEFT, type AnnounceParams } from './tracker-params.js';
import { clampInterval, parseCompactPeers, TrackerRefusedError, type AnnounceResult } from './tracker-response.js';
import { bindUdp, closeUdp, sendUdp } from './udp.js';

const PROTOCOL_ID = 0x41727101980n;
const ACTION_CONNECT = 0;
const ACTION_ANNOUNCE = 1;
const ACTION_ERROR = 3;
const EVENTS = { none: 0, completed: 1, started: 2, stopped: 3 } as const;
/** BEP 15: a connection ID may be used for one minute. */
const CONNECTION_ID_TTL_MS = 60_000;

/** @default values of UdpTrackerOptions */
export const UDP_BASE_TIMEOUT_MS = 15_000;
export const UDP_MAX_RETRIES = 8;

export interface UdpTrackerOptions {
  /** Wait `timeoutMs · 2^n` for the n-th try. @default UDP_BASE_TIMEOUT_MS */
  timeoutMs?: number;
  /** Tries after the first. @default UDP_MAX_RETRIES */
  maxRetries?: number;
  /** Of a tracker named by a host name: the address family to resolve it to (BEP 7: announce over each). @default the resolver's first */
  family?: 4 | 6;
  /** Resolves a tracker's host name in `family` (tests). @default node:dns lookup */
  resolve?: (host: string, family: 4 | 6 | undefined) => Promise<string>;
  logger?: Logger;
  /**
   * Send and receive through this instead of a socket of our own: a TURN allocation, so the
   * tracker records the relayed address (the sender's IP, and the port announced).
   */
  datagrams?: TrackerDatagrams;
}

/** A datagram socket shared with others: replies reach the client through a classifier. */
export interface TrackerDatagrams {
  send(buf: Buffer, port: number, host: string): void;
  handle(classify: (buf: Buffer) => boolean, handler: (buf: Buffer, from: { address: string; port: number }) => void): () => void;
}

/** A tracker reply: action 0–3 in the first 32-bit word (never a µTP or STUN packet's start). */
export const isTrackerReply = (buf: Buffer): boolean => buf.length >= 8 && buf.readUInt32BE(0) <= ACTION_ERROR;

interface Pending {
  transactionId: number;
  resolve(reply: Buffer): void;
}

export class UdpTrackerClient extends Resource {
  private readonly log: Logger;
  private socket: Socket | null = null;
  private unhandle: (() => void) | null = null;
  private family: 4 | 6 = 4;
  private address = '';
  private connectionId: Buffer | null = null;
  private connectionIdAtMs = 0;
  private pending: Pending | null = null;
  /** One transaction at a time: announces queue behind each other. */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly lifetime = new AbortController();
  ignoredPackets = 0;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly options: UdpTrackerOptions = {},
  ) {
    super();
    this.log = options.logger ?? silentLogger;
  }

  protected async _open(): Promise<void> {
    const family = this.options.family;
    const resolve = this.options.resolve ?? (async (host: string, f: 4 | 6 | undefined) => (await lookup(host, f ? { family: f } : {})).address);
    this.address = isIP(this.host) ? this.host : await resolve(this.host, family);
    this.family = isIP(this.address) === 6 ? 6 : 4;
    const shared = this.options.datagrams;
    if (shared) {
      this.unhandle = shared.handle(isTrackerReply, (packet, from) => this.receive(packet, { address: from.address, port: from.port }));
      return;
    }
    const socket = createSocket(this.family === 6 ? 'udp6' : 'udp4');
    socket.on('error', (err) => this.log.debug('UDP tracker socket error', { err }));
    socket.on('message', (packet, rinfo) => this.receive(packet, rinfo));
    await bindUdp(socket, 0, this.family === 6 ? '::' : '0.0.0.0');
    this.socket = socket;
  }

  protected async _close(): Promise<void> {
    this.lifetime.abort();
    await this.queue.catch(() => undefined);
    this.unhandle?.();
    await closeUdp(this.socket);
    this.socket = null;
  }

  announce(params: AnnounceParams, signal?: AbortSignal): Promise<AnnounceResult> {
    const run = this.queue.catch(() => undefined).then(() => this.announceNow(params, signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async announceNow(params: AnnounceParams, signal?: AbortSignal): Promise<AnnounceResult> {
    await this.open();
    const abort = AbortSignal.any([this.lifetime.signal, ...(signal ? [signal] : [])]);
    const maxRetries = this.options.maxRetries ?? UDP_MAX_RETRIES;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (!this.connectionId || Date.now() - this.connectionIdAtMs > CONNECTION_ID_TTL_MS) {
        const reply = await this.transact((tid) => connectRequest(tid), attempt, abort);
        if (!reply) continue;
        if (reply.length < 16 || reply.readUInt32BE(0) !== ACTION_CONNECT) {
          throw new FerryError('PROTOCOL', `bad connect reply (${reply.length} bytes, action ${reply.readUInt32BE(0)})`);
        }
        this.connectionId = Buffer.from(reply.subarray(8, 16));
        this.connectionIdAtMs = Date.now();
      }
      const reply = await this.transact((tid) => announceRequest(this.connectionId!, tid, params), attempt, abort);
      if (!reply) continue;
      return this.parseAnnounce(reply);
    }
    throw new FerryError('TIMEOUT', `UDP tracker ${this.host}:${this.port} did not answer after ${maxRetries + 1} tries`);
  }

  /** Sends one request and waits 15·2^attempt (scaled) for its reply; null on timeout. Error replies throw. */
  private async transact(build: (tid: number) => Buffer, attempt: number, signal: AbortSignal): Promise<Buffer | null> {
    if (signal.aborted) throw new FerryError('ABORTED', 'announce aborted');
    const transactionId = randomBytes(4).readUInt32BE(0);
    const waitMs = (this.options.timeoutMs ?? UDP_BASE_TIMEOUT_MS) * 2 ** attempt;
    const reply = await new Promise<Buffer | null>((resolve) => {
      const done = (value: Buffer | null): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (this.pending?.transactionId === transactionId) this.pending = null;
        resolve(value);
      };
      const onAbort = (): void => done(null);
      const timer = setTimeout(() => done(null), waitMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending = { transactionId, resolve: done };
      if (this.options.datagrams) {
        this.options.datagrams.send(build(transactionId), this.port, this.address);
        return;
      }
      void sendUdp(this.socket!, build(transactionId), this.port, this.address).then((err) => {
        if (err) this.log.debug('UDP tracker send failed', { tracker: this.host, err });
      });
    });
    if (signal.aborted) throw new FerryError('ABORTED', 'announce aborted');
    if (reply && reply.readUInt32BE(0) === ACTION_ERROR) {
      throw new TrackerRefusedError(reply.toString('utf8', 8, Math.min(reply.length, 208)) || 'error without a message');
    }
    if (!reply) this.log.debug('UDP tracker timeout; retrying', { tracker: `${this.host}:${this.port}`, attempt, waitMs });
    return reply;
  }

  private receive(packet: Buffer, rinfo: Pick<RemoteInfo, 'address' | 'port'>): void {
    const pending = this.pending;
    if (!pending || rinfo.port !== this.port || packet.length < 8 || packet.readUInt32BE(4) !== pending.transactionId) {
      this.ignoredPackets++;
      return;
    }
    pending.resolve(Buffer.from(packet));
  }

  private parseAnnounce(reply: Buffer): AnnounceResult {
    if (reply.readUInt32BE(0) !== ACTION_ANNOUNCE) throw new FerryError('PROTOCOL', `unexpected action ${reply.readUInt32BE(0)}`);
    if (reply.length < 20) {
      // opentracker answers an info-hash that is not on its whitelist with the 8-byte header only.
      throw new TrackerRefusedError(`short announce reply (${reply.length} bytes): info-hash not accepted`);
    }
    const peers: string[] = [];
    const truncatedBytes = parseCompactPeers(reply.subarray(20), this.family, peers);
    return { intervalS: clampInterval(reply.readUInt32BE(8)), peers, truncatedBytes };
  }
}

function connectRequest(transactionId: number): Buffer {
  const packet = Buffer.alloc(16);
  packet.writeBigUInt64BE(PROTOCOL_ID, 0);
  packet.writeUInt32BE(ACTION_CONNECT, 8);
  packet.writeUInt32BE(transactionId, 12);
  return packet;
}

function announceRequest(connectionId: Buffer, transactionId: number, params: AnnounceParams): Buffer {
  const packet = Buffer.alloc(98);
  connectionId.copy(packet, 0);
  packet.writeUInt32BE(ACTION_ANNOUNCE, 8);
  packet.writeUInt32BE(transactionId, 12);
  params.infoHash.copy(packet, 16);
  params.peerId.copy(packet, 36);
  packet.writeBigUInt64BE(0n, 56); // downloaded
  packet.writeBigUInt64BE(BigInt(ANNOUNCED_LEFT), 64);
  packet.writeBigUInt64BE(0n, 72); // uploaded
  packet.writeUInt32BE(EVENTS[params.event], 80);
  packet.writeUInt32BE(0, 84); // IP: the sender's
  packet.writeUInt32BE(params.key >>> 0, 88);
  packet.writeInt32BE(params.numWant, 92);
  packet.writeUInt16BE(params.port, 96);
  return packet;
}
