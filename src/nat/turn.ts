// TURN client (RFC 8656 over UDP) with long-term credentials (RFC 8489 §9.2): Allocate (the 401 and
// nonce dance, 438 stale nonce), Refresh before the allocation, its permissions and its channels
// expire, CreatePermission, ChannelBind and ChannelData, Send and Data indications. It speaks from
// a UDP socket of its own to one server, and exposes the allocation as a datagram socket
// (send/handle, what UtpEndpoint needs), so µTP, TLS and the Ferry handshake run over the relay
// unchanged. Hand-written on the STUN codec of stun.ts: the npm TURN clients are browser/WebRTC
// stacks or unmaintained, and the part Ferry needs is small.
//
// Safeguards: only datagrams from the server's address are read; every response must carry a
// valid MESSAGE-INTEGRITY (a 401 without one is the only exception, and only before we have a
// nonce) and match a transaction in flight; the peer and channel tables are bounded; the password
// is held as the derived key only and never appears in a message, a log line or a report.

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { crc32 } from 'node:zlib';
import { FerryError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { STUN_MAGIC_COOKIE, isStunMessage, readAddress, type UdpEndpoint } from './stun.js';

// Methods and classes (RFC 8489 §5: methods below 0x10 leave the class bits 4 and 8 free).
export const METHOD_ALLOCATE = 0x003;
export const METHOD_REFRESH = 0x004;
export const METHOD_SEND = 0x006;
export const METHOD_DATA = 0x007;
export const METHOD_CREATE_PERMISSION = 0x008;
export const METHOD_CHANNEL_BIND = 0x009;
export const CLASS_REQUEST = 0x000;
export const CLASS_INDICATION = 0x010;
export const CLASS_SUCCESS = 0x100;
export const CLASS_ERROR = 0x110;

export const ATTR_USERNAME = 0x0006;
export const ATTR_MESSAGE_INTEGRITY = 0x0008;
export const ATTR_ERROR_CODE = 0x0009;
export const ATTR_CHANNEL_NUMBER = 0x000c;
export const ATTR_LIFETIME = 0x000d;
export const ATTR_XOR_PEER_ADDRESS = 0x0012;
export const ATTR_DATA = 0x0013;
export const ATTR_REALM = 0x0014;
export const ATTR_NONCE = 0x0015;
export const ATTR_XOR_RELAYED_ADDRESS = 0x0016;
export const ATTR_REQUESTED_TRANSPORT = 0x0019;
export const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
export const ATTR_FINGERPRINT = 0x8028;
const FINGERPRINT_XOR = 0x5354554e;
const HEADER_BYTES = 20;
const UDP_TRANSPORT = 17;

/** A datagram relayed to the server is at most this large (the allocation's µTP packets are smaller). */
export const MAX_TURN_MESSAGE_BYTES = 2048;
/** Peers (IP:port) the relayed socket talks to at once; channels are 0x4000 upwards, one per peer. */
export const MAX_TURN_PEERS = 64;
/** @default of TurnClientOptions: RFC 8489's RTO, doubled each try. */
export const TURN_RTO_MS = 500;
export const TURN_TRIES = 5;
/** Permissions last 300 s and channels 600 s (RFC 8656 §9, §12): renewed well before. */
export const PERMISSION_REFRESH_MS = 240_000;
export const CHANNEL_REFRESH_MS = 480_000;
/** The lifetime asked for; the allocation is refreshed at half the lifetime granted. */
export const REQUESTED_LIFETIME_S = 600;
/** Channel numbers: 0x4000–0x4FFF, taken in turn (a number is reused only after wrapping round). */
const FIRST_CHANNEL = 0x4000;
const LAST_CHANNEL = 0x4fff;
/** A peer unused this long may give its place to a new one when the table is full; it is not refreshed either. */
export const PEER_IDLE_MS = 60_000;
const BIND_RETRY_MS = 30_000;

export type Attribute = [type: number, value: Buffer];

export interface StunMessage {
  method: number;
  cls: number;
  transactionId: Buffer;
  attributes: Attribute[];
  /** Offset of MESSAGE-INTEGRITY's header, or -1. */
  integrityAt: number;
  /** Whether a FINGERPRINT was present and right (true when absent: it is optional). */
  fingerprintOk: boolean;
}

const pad4 = (n: number): number => Math.ceil(n / 4) * 4;

/** The long-term credential key: MD5(username ":" realm ":" password) (RFC 8489 §9.2.2). */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

/**
 * A STUN message: the header, the attributes, then MESSAGE-INTEGRITY (HMAC-SHA1 under `key`) and
 * FINGERPRINT when asked. Each attribute is padded to 4 bytes.
 */
export function encodeMessage(type: number, transactionId: Buffer, attributes: Attribute[], options: { key?: Buffer; fingerprint?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const [attr, value] of attributes) {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(attr, 0);
    head.writeUInt16BE(value.length, 2);
    parts.push(head, value, Buffer.alloc(pad4(value.length) - value.length));
  }
  let body = Buffer.concat(parts);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(type, 0);
  header.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  transactionId.copy(header, 8, 0, 12);
  if (options.key) {
    // The length covers the MESSAGE-INTEGRITY attribute itself (24 bytes) when the HMAC is taken.
    header.writeUInt16BE(body.length + 24, 2);
    const hmac = createHmac('sha1', options.key).update(header).update(body).digest();
    const head = Buffer.alloc(4);
    head.writeUInt16BE(ATTR_MESSAGE_INTEGRITY, 0);
    head.writeUInt16BE(20, 2);
    body = Buffer.concat([body, head, hmac]);
  }
  if (options.fingerprint) {
    header.writeUInt16BE(body.length + 8, 2);
    const crc = (crc32(Buffer.concat([header, body])) ^ FINGERPRINT_XOR) >>> 0;
    const attr = Buffer.alloc(8);
    attr.writeUInt16BE(ATTR_FINGERPRINT, 0);
    attr.writeUInt16BE(4, 2);
    attr.writeUInt32BE(crc, 4);
    body = Buffer.concat([body, attr]);
  }
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
}

/** Parses a STUN message; null when malformed (an attribute running past the end, say). */
export function decodeMessage(buf: Buffer): StunMessage | null {
  if (!isStunMessage(buf) || buf.length > MAX_TURN_MESSAGE_BYTES) return null;
  const type = buf.readUInt16BE(0);
  const attributes: Attribute[] = [];
  let integrityAt = -1;
  let fingerprintOk = true;
  for (let offset = HEADER_BYTES; offset < buf.length; ) {
    if (offset + 4 > buf.length) return null;
    const attr = buf.readUInt16BE(offset);
    const length = buf.readUInt16BE(offset + 2);
    if (offset + 4 + length > buf.length) return null;
    const value = buf.subarray(offset + 4, offset + 4 + length);
    if (attr === ATTR_FINGERPRINT) {
      // The last attribute: CRC-32 of everything before it, the length field as it is.
      if (length !== 4 || offset + 8 !== buf.length) return null;
      fingerprintOk = ((crc32(buf.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0) === value.readUInt32BE(0);
      break;
    }
    // After MESSAGE-INTEGRITY only FINGERPRINT counts (RFC 8489 §14.5): the rest is ignored.
    if (integrityAt < 0) attributes.push([attr, value]);
    if (attr === ATTR_MESSAGE_INTEGRITY && integrityAt < 0) {
      if (length !== 20) return null;
      integrityAt = offset;
    }
    offset += 4 + pad4(length);
  }
  return { method: type & 0xfeef, cls: type & 0x0110, transactionId: Buffer.from(buf.subarray(8, 20)), attributes, integrityAt, fingerprintOk };
}

/** Whether `buf`'s MESSAGE-INTEGRITY is the HMAC-SHA1 under `key` (RFC 8489 §14.5). */
export function verifyIntegrity(buf: Buffer, message: StunMessage, key: Buffer): boolean {
  if (message.integrityAt < 0) return false;
  const header = Buffer.from(buf.subarray(0, HEADER_BYTES));
  header.writeUInt16BE(message.integrityAt + 24 - HEADER_BYTES, 2);
  const expected = createHmac('sha1', key).update(header).update(buf.subarray(HEADER_BYTES, message.integrityAt)).digest();
  return timingSafeEqual(expected, buf.subarray(message.integrityAt + 4, message.integrityAt + 24));
}

export function attribute(message: StunMessage, type: number): Buffer | undefined {
  return message.attributes.find(([t]) => t === type)?.[1];
}

/** An ERROR-CODE attribute as `code` and a printable reason. */
export function errorOf(message: StunMessage): { code: number; reason: string } | null {
  const value = attribute(message, ATTR_ERROR_CODE);
  if (!value || value.length < 4) return null;
  return { code: (value[2]! & 0x07) * 100 + value[3]!, reason: value.subarray(4).toString('utf8').replace(/[^\x20-\x7e]/g, '?').slice(0, 100) };
}

/** An XOR-…-ADDRESS value for `at` (IPv4 or IPv6). */
export function encodeXorAddress(at: UdpEndpoint, transactionId: Buffer): Buffer {
  const v4 = isIP(at.address) === 4;
  const out = Buffer.alloc(v4 ? 8 : 20);
  out[1] = v4 ? 0x01 : 0x02;
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(STUN_MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4, 0, 12);
  out.writeUInt16BE(at.port ^ mask.readUInt16BE(0), 2);
  const bytes = v4 ? Buffer.from(at.address.split('.').map(Number)) : ipv6Bytes(at.address);
  for (let i = 0; i < bytes.length; i++) out[4 + i] = bytes[i]! ^ mask[i]!;
  return out;
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const groups = (s: string | undefined): number[] => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

export function decodeXorAddress(value: Buffer, transactionId: Buffer): UdpEndpoint | null {
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(STUN_MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4, 0, 12);
  return readAddress(value, mask);
}

/** A ChannelData message (RFC 8656 §12.4): channel, length, data (not padded: this is UDP). */
export function encodeChannelData(channel: number, data: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(channel, 0);
  head.writeUInt16BE(data.length, 2);
  return Buffer.concat([head, data]);
}

/** A ChannelData message's channel and data, or null (padding after the data is allowed). */
export function decodeChannelData(buf: Buffer): { channel: number; data: Buffer } | null {
  if (buf.length < 4 || (buf[0]! & 0xc0) !== 0x40) return null;
  const channel = buf.readUInt16BE(0);
  const length = buf.readUInt16BE(2);
  if (channel > 0x4fff || 4 + length > buf.length || buf.length - 4 - length > 3) return null;
  return { channel, data: buf.subarray(4, 4 + length) };
}

/** A `turn://USER:PASSWORD@HOST:PORT` URL (port 3478 when left out). */
export interface TurnServer {
  host: string;
  port: number;
  username: string;
  password: string;
}

/** Parses a TURN URL; USAGE when malformed. The message never repeats the password. */
export function parseTurnUrl(text: string): TurnServer {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new FerryError('USAGE', 'a TURN server must be turn://USER:PASSWORD@HOST[:PORT]');
  }
  if (url.protocol !== 'turn:' || !url.username || !url.password || !url.hostname || (url.pathname !== '' && url.pathname !== '/')) {
    throw new FerryError('USAGE', `a TURN server must be turn://USER:PASSWORD@HOST[:PORT] (got one for ${url.hostname || 'no host'})`);
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : 3478,
    username: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
}

/** What reports show in place of a TURN password; sent back in a settings change, it keeps the stored one. */
export const TURN_PASSWORD_MASK = '********';

/** A TURN URL as reports show it: the user name, host and port, the password masked. */
export function maskTurnUrl(text: string): string {
  const server = parseTurnUrl(text);
  return `turn://${encodeURIComponent(server.username)}:${TURN_PASSWORD_MASK}@${turnServerLabel(server)}`;
}

/** What may be shown of a TURN server: its host and port, never the credentials. */
export function turnServerLabel(server: Pick<TurnServer, 'host' | 'port'>): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

export interface TurnClientOptions {
  /** The server as an IP address and port (the caller resolves names). */
  server: UdpEndpoint;
  username: string;
  password: string;
  /** Local address to bind (0.0.0.0 / :: by default). */
  bindHost?: string;
  rtoMs?: number;
  tries?: number;
  logger?: Logger;
}

interface Transaction {
  method: number;
  resolve: (message: StunMessage) => void;
  reject: (err: Error) => void;
}

interface Peer {
  at: UdpEndpoint;
  channel: number;
  bound: boolean;
  binding: boolean;
  lastUsedMs: number;
  /** When a ChannelBind last failed: not tried again for BIND_RETRY_MS (Send indications meanwhile). */
  bindFailedAtMs?: number;
  /** Datagrams sent before the first permission for the peer's IP: sent once the channel is bound. */
  queue: Buffer[];
}

/** Datagrams held per peer while its first channel is bound (a SYN or two, a tracker request). */
const MAX_QUEUED = 4;

type Handler = (buf: Buffer, from: UdpEndpoint) => void;

export type TurnState = 'idle' | 'allocating' | 'allocated' | 'failed' | 'closed';

/**
 * One allocation on one TURN server. open() allocates (TIMEOUT when the server does not answer,
 * HANDSHAKE on bad credentials, REQUEST_FAILED on any other refusal); then send()/handle() are a
 * datagram socket whose address() is the relayed address.
 */
export class TurnClient extends Resource {
  private socket: Socket | null = null;
  private readonly log: Logger;
  private readonly transactions = new Map<string, Transaction>();
  private readonly peers = new Map<string, Peer>();
  private readonly channels = new Map<number, Peer>();
  /** IPs permitted by permit() (renewed); a bound channel keeps its peer's IP permitted by itself. */
  private readonly permitted = new Set<string>();
  private readonly users: Array<{ classify: (buf: Buffer) => boolean; handler: Handler }> = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private realm = '';
  private nonce: Buffer | null = null;
  private key: Buffer | null = null;
  private relayed: UdpEndpoint | null = null;
  private mapped: UdpEndpoint | null = null;
  private lifetimeS = 0;
  private nextChannel = FIRST_CHANNEL;
  state: TurnState = 'idle';
  error: string | null = null;
  /** Datagrams from anyone but the server, malformed, unmatched or failing integrity. */
  dropped = 0;

  constructor(private readonly options: TurnClientOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    if (isIP(options.server.address) === 0) throw new FerryError('USAGE', `TURN server must be an IP address here (got '${options.server.address}')`);
  }

  /** The relayed transport address peers send to. */
  address(): UdpEndpoint {
    if (!this.relayed) throw new FerryError('CLOSED', 'no TURN allocation');
    return this.relayed;
  }

  /** Our address as the server saw it (XOR-MAPPED-ADDRESS of the Allocate response). */
  mappedAddress(): UdpEndpoint | null {
    return this.mapped;
  }

  get server(): UdpEndpoint {
    return this.options.server;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  protected async _open(): Promise<void> {
    const family = isIP(this.options.server.address) === 6 ? 'udp6' : 'udp4';
    const socket = createSocket(family);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, this.options.bindHost, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => this.log.debug('TURN socket error', { reason: err.message }));
    socket.on('message', (buf, rinfo) => this.onDatagram(buf, { address: rinfo.address, port: rinfo.port }));
    this.socket = socket;
    this.state = 'allocating';
    try {
      await this.allocate();
    } catch (err) {
      this.state = 'failed';
      this.error = (err as Error).message;
      this.socket = null;
      socket.close();
      throw err;
    }
    this.state = 'allocated';
    this.schedule(() => void this.refreshAllocation(), Math.max(30, this.lifetimeS / 2) * 1000);
    this.schedule(() => void this.refreshPermissions(), PERMISSION_REFRESH_MS);
    this.schedule(() => void this.refreshChannels(), CHANNEL_REFRESH_MS);
  }

  protected async _close(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    if (this.state === 'allocated') {
      // Lifetime 0 deletes the allocation at once (best effort: the server times it out anyway).
      await this.request(METHOD_REFRESH, [[ATTR_LIFETIME, u32(0)]], 1).catch(() => undefined);
    }
    this.state = 'closed';
    for (const t of this.transactions.values()) t.reject(new FerryError('CLOSED', 'TURN client closed'));
    this.transactions.clear();
    const socket = this.socket;
    this.socket = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  /**
   * Lets peers at `address` (any port) send to the allocation: the server drops everything from
   * an IP without a permission. Renewed until close.
   */
  async permit(address: string): Promise<void> {
    if (!this.permitted.has(address) && this.permitted.size >= MAX_TURN_PEERS) throw new FerryError('IO', 'too many TURN permissions');
    await this.request(METHOD_CREATE_PERMISSION, [[ATTR_XOR_PEER_ADDRESS, encodeXorAddress({ address, port: 1 }, Buffer.alloc(12))]]);
    this.permitted.add(address);
  }

  /**
   * Sends `buf` to `host:port` through the relay: as ChannelData once the peer's channel is bound,
   * and until then as a Send indication (after binding the channel, which also installs the
   * permission). Errors are dropped as UDP drops packets.
   */
  send(buf: Buffer, port: number, host: string): void {
    if (this.state !== 'allocated' || !this.socket) return;
    const peer = this.peerFor({ address: host, port });
    if (!peer) {
      this.dropped++;
      return;
    }
    peer.lastUsedMs = Date.now();
    if (peer.bound) {
      this.socket.send(encodeChannelData(peer.channel, buf), this.options.server.port, this.options.server.address);
      return;
    }
    if (!peer.binding && (peer.bindFailedAtMs === undefined || Date.now() - peer.bindFailedAtMs >= BIND_RETRY_MS)) void this.bind(peer);
    if (this.permitted.has(host)) {
      const tid = randomBytes(12);
      const message = encodeMessage(METHOD_SEND | CLASS_INDICATION, tid, [
        [ATTR_XOR_PEER_ADDRESS, encodeXorAddress(peer.at, tid)],
        [ATTR_DATA, buf],
      ]);
      this.socket.send(message, this.options.server.port, this.options.server.address);
    } else if (peer.queue.length < MAX_QUEUED) peer.queue.push(Buffer.from(buf));
  }

  /** Registers a receiver of relayed datagrams (as UdpSocket.handle): returns its removal. */
  handle(classify: (buf: Buffer) => boolean, handler: Handler): () => void {
    const user = { classify, handler };
    this.users.push(user);
    return () => {
      const at = this.users.indexOf(user);
      if (at >= 0) this.users.splice(at, 1);
    };
  }

  report(): { state: TurnState; relayed: string | null; peers: number; error: string | null } {
    return { state: this.state, relayed: this.relayed ? turnServerLabel({ host: this.relayed.address, port: this.relayed.port }) : null, peers: this.peers.size, error: this.error };
  }

  private peerFor(at: UdpEndpoint): Peer | null {
    const key = `${at.address}|${at.port}`;
    const known = this.peers.get(key);
    if (known) return known;
    if (this.peers.size >= MAX_TURN_PEERS && !this.evictIdle()) return null;
    let channel = this.nextChannel;
    while (this.channels.has(channel)) channel = channel === LAST_CHANNEL ? FIRST_CHANNEL : channel + 1;
    this.nextChannel = channel === LAST_CHANNEL ? FIRST_CHANNEL : channel + 1;
    const peer: Peer = { at: { address: at.address, port: at.port }, channel, bound: false, binding: false, lastUsedMs: Date.now(), queue: [] };
    this.peers.set(key, peer);
    this.channels.set(peer.channel, peer);
    return peer;
  }

  /** Forgets the least recently used peer when it has been idle PEER_IDLE_MS; false when none has. */
  private evictIdle(nowMs = Date.now()): boolean {
    let oldest: Peer | null = null;
    for (const peer of this.peers.values()) if (!peer.binding && (!oldest || peer.lastUsedMs < oldest.lastUsedMs)) oldest = peer;
    if (!oldest || nowMs - oldest.lastUsedMs < PEER_IDLE_MS) return false;
    this.forget(oldest);
    return true;
  }

  private forget(peer: Peer): void {
    this.peers.delete(`${peer.at.address}|${peer.at.port}`);
    if (this.channels.get(peer.channel) === peer) this.channels.delete(peer.channel);
  }

  private async bind(peer: Peer): Promise<void> {
    peer.binding = true;
    try {
      await this.request(METHOD_CHANNEL_BIND, [
        [ATTR_CHANNEL_NUMBER, Buffer.from([peer.channel >> 8, peer.channel & 0xff, 0, 0])],
        [ATTR_XOR_PEER_ADDRESS, encodeXorAddress(peer.at, Buffer.alloc(12))],
      ]);
      peer.bound = true;
      for (const held of peer.queue.splice(0)) this.socket?.send(encodeChannelData(peer.channel, held), this.options.server.port, this.options.server.address);
    } catch (err) {
      peer.bindFailedAtMs = Date.now();
      if (!this.closed) this.log.debug('TURN channel bind failed', { peer: `${peer.at.address}:${peer.at.port}`, reason: (err as Error).message });
    } finally {
      peer.binding = false;
    }
  }

  private async allocate(): Promise<void> {
    const response = await this.request(METHOD_ALLOCATE, [
      [ATTR_REQUESTED_TRANSPORT, Buffer.from([UDP_TRANSPORT, 0, 0, 0])],
      [ATTR_LIFETIME, u32(REQUESTED_LIFETIME_S)],
    ]);
    const tid = response.transactionId;
    const relayedValue = attribute(response, ATTR_XOR_RELAYED_ADDRESS);
    const relayed = relayedValue && decodeXorAddress(relayedValue, tid);
    if (!relayed) throw new FerryError('PROTOCOL', 'TURN Allocate response carries no relayed address');
    const mappedValue = attribute(response, ATTR_XOR_MAPPED_ADDRESS);
    this.mapped = (mappedValue && decodeXorAddress(mappedValue, tid)) || null;
    this.relayed = relayed;
    this.lifetimeS = attribute(response, ATTR_LIFETIME)?.readUInt32BE(0) ?? REQUESTED_LIFETIME_S;
    this.log.info('TURN allocation made', { server: turnServerLabel({ host: this.options.server.address, port: this.options.server.port }), relayed: `${relayed.address}:${relayed.port}`, lifetimeS: this.lifetimeS });
  }

  private async refreshAllocation(): Promise<void> {
    try {
      const response = await this.request(METHOD_REFRESH, [[ATTR_LIFETIME, u32(REQUESTED_LIFETIME_S)]]);
      this.lifetimeS = attribute(response, ATTR_LIFETIME)?.readUInt32BE(0) ?? this.lifetimeS;
    } catch (err) {
      if (this.closed) return;
      this.error = `refresh failed: ${(err as Error).message}`;
      this.state = 'failed';
      this.log.info('TURN refresh failed', { reason: (err as Error).message });
    }
  }

  private async refreshPermissions(): Promise<void> {
    for (const address of this.permitted) await this.permit(address).catch(() => undefined);
  }

  private async refreshChannels(): Promise<void> {
    // Idle peers are let go: their channels (and permissions) expire at the server.
    const nowMs = Date.now();
    for (const peer of [...this.peers.values()]) {
      if (nowMs - peer.lastUsedMs >= CHANNEL_REFRESH_MS) this.forget(peer);
      else if (peer.bound) await this.bind(peer);
    }
  }

  private schedule(run: () => void, everyMs: number): void {
    const timer = setInterval(run, everyMs);
    timer.unref();
    this.timers.push(timer);
  }

  /**
   * One authenticated request, retransmitted on RFC 8489's schedule. A 401 (or 438 stale nonce)
   * takes the realm and nonce and asks once more; a second 401 is bad credentials.
   */
  private async request(method: number, attributes: Attribute[], tries = this.options.tries ?? TURN_TRIES): Promise<StunMessage> {
    for (let round = 0; ; round++) {
      const response = await this.transact(method, attributes, tries);
      if (response.cls === CLASS_SUCCESS) return response;
      const error = errorOf(response);
      const code = error?.code ?? 0;
      if ((code === 401 || code === 438) && round < 2) {
        const realm = attribute(response, ATTR_REALM);
        const nonce = attribute(response, ATTR_NONCE);
        if (nonce) {
          const hadKey = this.key !== null && code === 401;
          if (realm) this.realm = realm.toString('utf8');
          this.nonce = Buffer.from(nonce);
          this.key = longTermKey(this.options.username, this.realm, this.options.password);
          if (!hadKey) continue;
        }
      }
      if (code === 401) throw new FerryError('HANDSHAKE', `the TURN server refused the credentials (401 ${error?.reason ?? ''})`.trim());
      throw new FerryError('REQUEST_FAILED', `the TURN server answered ${code || 'an error'} ${error?.reason ?? ''}`.trim());
    }
  }

  private transact(method: number, attributes: Attribute[], tries: number): Promise<StunMessage> {
    const socket = this.socket;
    if (!socket) return Promise.reject(new FerryError('CLOSED', 'TURN client closed'));
    const tid = randomBytes(12);
    // Peer addresses are XORed with the transaction ID: re-encode those for this one.
    const attrs = attributes.map(([t, v]): Attribute => (t === ATTR_XOR_PEER_ADDRESS ? [t, reXor(v, tid)] : [t, v]));
    if (this.key && this.nonce) {
      attrs.push([ATTR_USERNAME, Buffer.from(this.options.username, 'utf8')], [ATTR_REALM, Buffer.from(this.realm, 'utf8')], [ATTR_NONCE, this.nonce]);
    }
    const message = encodeMessage(method | CLASS_REQUEST, tid, attrs, { key: this.key && this.nonce ? this.key : undefined, fingerprint: true });
    const key = tid.toString('hex');
    const rto = this.options.rtoMs ?? TURN_RTO_MS;
    const server = this.options.server;
    return new Promise<StunMessage>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let sent = 0;
      const done = (): void => {
        clearTimeout(timer);
        this.transactions.delete(key);
      };
      this.transactions.set(key, {
        method,
        resolve: (m) => {
          done();
          resolve(m);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      const transmit = (): void => {
        if (sent === tries || !this.socket) {
          done();
          reject(new FerryError('TIMEOUT', `no answer from the TURN server ${turnServerLabel({ host: server.address, port: server.port })} after ${sent} tries`));
          return;
        }
        this.socket.send(message, server.port, server.address);
        timer = setTimeout(transmit, rto * 2 ** sent++);
      };
      transmit();
    });
  }

  private onDatagram(buf: Buffer, from: UdpEndpoint): void {
    const server = this.options.server;
    if (from.port !== server.port || from.address.replace(/^::ffff:/, '') !== server.address) {
      this.dropped++;
      return;
    }
    const channelData = decodeChannelData(buf);
    if (channelData) {
      const peer = this.channels.get(channelData.channel);
      if (!peer || !peer.bound) {
        this.dropped++;
        return;
      }
      peer.lastUsedMs = Date.now();
      this.deliver(channelData.data, peer.at);
      return;
    }
    const message = decodeMessage(buf);
    if (!message || !message.fingerprintOk) {
      this.dropped++;
      return;
    }
    if (message.cls === CLASS_INDICATION && message.method === METHOD_DATA) {
      const peerValue = attribute(message, ATTR_XOR_PEER_ADDRESS);
      const data = attribute(message, ATTR_DATA);
      const peer = peerValue && decodeXorAddress(peerValue, message.transactionId);
      if (!peer || !data) {
        this.dropped++;
        return;
      }
      this.deliver(data, peer);
      return;
    }
    const transaction = this.transactions.get(message.transactionId.toString('hex'));
    if (!transaction || transaction.method !== message.method || (message.cls !== CLASS_SUCCESS && message.cls !== CLASS_ERROR)) {
      this.dropped++;
      return;
    }
    const code = message.cls === CLASS_ERROR ? (errorOf(message)?.code ?? 0) : 0;
    // Once we hold a key every response must be signed with it, except a challenge (401, 438)
    // carrying a fresh nonce; before, a challenge is what comes (or a server without auth).
    const challenge = code === 401 || code === 438;
    if (this.key && !challenge && !verifyIntegrity(buf, message, this.key)) {
      this.log.debug('TURN response with bad or no integrity dropped');
      this.dropped++;
      return;
    }
    transaction.resolve(message);
  }

  private deliver(data: Buffer, from: UdpEndpoint): void {
    for (const user of this.users) {
      if (!user.classify(data)) continue;
      try {
        user.handler(data, from);
      } catch (err) {
        this.log.error('TURN handler failed', { err });
      }
      return;
    }
    this.dropped++;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/** An XOR-PEER-ADDRESS encoded under the zero transaction ID, re-encoded under `tid`. */
function reXor(value: Buffer, tid: Buffer): Buffer {
  const at = decodeXorAddress(value, Buffer.alloc(12));
  return at ? encodeXorAddress(at, tid) : value;
}
