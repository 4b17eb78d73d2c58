// Decode, then validate, before bittorrent-dht acts: a socket stand-in that hands k-rpc only
// well-formed KRPC messages (right types and sizes for what they carry), at a bounded rate.

import { randomBytes } from 'node:crypto';
import type { RemoteInfo } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import bencode from 'bencode';
import { TokenBucket } from './rate-limit.js';

export const MAX_KRPC_BYTES = 8 * 1024;
export const DHT_MAX_PACKETS_PER_S = 300;
const ID_BYTES = 20;
/** Queries this node answers; everything else (BEP 44 get/put, vendor extensions) is dropped. */
const QUERIES = new Set(['ping', 'find_node', 'get_peers', 'announce_peer']);

type Dict = Record<string, unknown>;

const isDict = (value: unknown): value is Dict =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
const isBytes = (value: unknown, min = 0, max = Infinity): value is Uint8Array =>
  value instanceof Uint8Array && value.length >= min && value.length <= max;
const isId = (value: unknown): boolean => isBytes(value, ID_BYTES, ID_BYTES);
const isPort = (value: unknown): boolean => typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535;
const text = (value: unknown): string => (value instanceof Uint8Array ? Buffer.from(value).toString('latin1') : '');

/** Why `packet` is not a KRPC message this node should look at, or null when it is fine. */
export function krpcProblem(packet: Buffer): string | null {
  if (packet.length > MAX_KRPC_BYTES) return `oversized (${packet.length} bytes)`;
  let message: unknown;
  try {
    message = bencode.decode(packet);
  } catch (err) {
    return `not bencoded (${(err as Error).message})`;
  }
  if (!isDict(message)) return 'not a dictionary';
  if (!isBytes(message.t, 1, 16)) return 'bad transaction id';
  switch (text(message.y)) {
    case 'q': {
      const a = message.a;
      if (!isDict(a) || !isId(a.id)) return 'query without a valid a.id';
      const q = text(message.q);
      if (!QUERIES.has(q)) return `unsupported query ${JSON.stringify(q.slice(0, 32))}`;
      if (q === 'find_node' && !isId(a.target)) return 'find_node: bad target';
      if ((q === 'get_peers' || q === 'announce_peer') && !isId(a.info_hash)) return `${q}: bad info_hash`;
      if (q === 'announce_peer') {
        if (!isBytes(a.token, 1, 64)) return 'announce_peer: bad token';
        if (!isPort(a.port) && a.port !== undefined) return 'announce_peer: bad port';
        if (a.implied_port !== undefined && !isPort(a.implied_port)) return 'announce_peer: bad implied_port';
      }
      return null;
    }
    case 'r': {
      const r = message.r;
      if (!isDict(r) || !isId(r.id)) return 'response without a valid r.id';
      if (r.nodes !== undefined && !(isBytes(r.nodes) && r.nodes.length % 26 === 0)) return 'bad r.nodes';
      if (r.token !== undefined && !isBytes(r.token, 1, 64)) return 'bad r.token';
      if (r.values !== undefined && !(Array.isArray(r.values) && r.values.length <= 200 && r.values.every((v) => isBytes(v, 6, 6)))) {
        return 'bad r.values';
      }
      return null;
    }
    case 'e':
      return Array.isArray(message.e) ? null : 'error without a list';
    default:
      return 'unknown message type';
  }
}

export interface GuardStats {
  passed: number;
  dropped: number;
  rateLimited: number;
  /** Replies cut to the query's size (no nodes or values) for an address not yet proven by a round trip. */
  shrunk: number;
}

/** Addresses proven by a round trip, queries awaiting our reply, our own queries: each table is bounded. */
const MAX_TRACKED = 4096;
/** How long a round trip proves an address. */
const VERIFIED_MS = 30 * 60_000;

/** Sets `key` in a bounded insertion-ordered map (the oldest entry goes). */
function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  if (map.size >= MAX_TRACKED) map.delete(map.keys().next().value!);
  map.set(key, value);
}

function decodeDict(packet: Uint8Array): Dict | undefined {
  try {
    const value: unknown = bencode.decode(packet);
    return isDict(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Wraps a bound dgram socket for k-rpc-socket (its `socket` option): same methods, but 'message'
 * is only emitted for packets krpcProblem() accepts. bind() is a no-op: the socket is already bound.
 */
/** What the guard needs of a UDP socket: a node:dgram Socket, or the sync port's shared one (dht.ts). */
export interface DatagramSocket {
  on(event: 'message', listener: (packet: Buffer, rinfo: RemoteInfo) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  send(buf: Buffer, offset: number, length: number, port: number, host: string, callback: (err: Error | null) => void): void;
  address(): AddressInfo;
  close(): void;
}

export class GuardedSocket extends EventEmitter {
  readonly stats: GuardStats = { passed: 0, dropped: 0, rateLimited: 0, shrunk: 0 };
  private readonly bucket: TokenBucket;
  /**
   * Anti-amplification: until an address has answered one of our queries (a round trip, which a
   * spoofed source cannot make), a reply to it is no larger than its query. Such a source is pinged
   * (no larger than its query either), so a real node gets full replies from its next query on.
   */
  private readonly verified = new Map<string, number>();
  /** `host:port|t` of queries received, and their size in bytes. */
  private readonly queries = new Map<string, number>();
  /** `host:port|t` of queries we sent. */
  private readonly sent = new Map<string, true>();
  /**
   * Hears each reply to a query we sent (a round trip, so not from a spoofed source) with its BEP 42
   * `ip` key, the address the responder saw us at (dht.ts votes on it).
   */
  onReplyIp: ((from: RemoteInfo, ip: Uint8Array) => void) | null = null;
  /**
   * BEP 32 on the IPv4 DHT: when set, our find_node / get_peers ask `want: ["n4","n6"]`, and the
   * `nodes6` of replies to our queries are handed here (for the IPv6 DHT to join through).
   */
  onNodes6: ((nodes6: Uint8Array) => void) | null = null;
  /** Hears the node ID of each reply to a query we sent (dht.ts checks it against BEP 42). */
  onResponder: ((from: RemoteInfo, id: Uint8Array) => void) | null = null;

  constructor(
    private readonly inner: DatagramSocket,
    private readonly onDrop: (from: string, reason: string) => void,
    maxPacketsPerS = DHT_MAX_PACKETS_PER_S,
  ) {
    super();
    this.bucket = new TokenBucket(maxPacketsPerS, maxPacketsPerS);
    inner.on('message', (packet: Buffer, rinfo: RemoteInfo) => this.filter(packet, rinfo));
    inner.on('error', (err) => this.emit('error', err));
    inner.on('close', () => {
      this.closed = true;
      this.emit('close');
    });
  }

  /** Set once the socket closed: a DHT destroyed right after it started gets no 'listening' after that. */
  private closed = false;

  bind(...args: unknown[]): void {
    const callback = args.find((arg) => typeof arg === 'function') as (() => void) | undefined;
    process.nextTick(() => {
      // bittorrent-dht asks for the address on 'listening', which a closed socket cannot give.
      if (this.closed) return;
      this.emit('listening');
      callback?.();
    });
  }

  address(): AddressInfo {
    return this.inner.address();
  }

  send(buf: Buffer, offset: number, length: number, port: number, host: string, callback?: (err: Error | null) => void): void {
    const to = `${host}:${port}`;
    const message = decodeDict(buf.subarray(offset, offset + length));
    const tid = message && isBytes(message.t) ? Buffer.from(message.t).toString('hex') : '';
    const kind = message ? text(message.y) : '';
    if (kind === 'q') {
      remember(this.sent, `${to}|${tid}`, true);
      const q = text(message!.q);
      if (this.onNodes6 && (q === 'find_node' || q === 'get_peers') && isDict(message!.a)) {
        const asked = Buffer.from(bencode.encode({ ...message, a: { ...message!.a, want: [Buffer.from('n4'), Buffer.from('n6')] } }));
        this.rawSend(asked, port, host, callback);
        return;
      }
    }
    else if ((kind === 'r' || kind === 'e') && !this.isVerified(to)) {
      const querySize = this.queries.get(`${to}|${tid}`) ?? 0;
      this.queries.delete(`${to}|${tid}`);
      if (length > querySize) {
        const small = kind === 'r' && isDict(message!.r) ? this.shrink(message!, querySize) : undefined;
        this.stats.shrunk++;
        if (small) this.rawSend(small, port, host, callback);
        else process.nextTick(() => callback?.(null));
        this.probe(message!, querySize, port, host);
        return;
      }
    }
    this.rawSend(buf.subarray(offset, offset + length), port, host, callback);
  }

  private isVerified(address: string): boolean {
    const until = this.verified.get(address);
    return until !== undefined && until > Date.now();
  }

  /** The reply without nodes or values (what amplifies), if that fits in `limit` bytes. */
  private shrink(message: Dict, limit: number): Buffer | undefined {
    const r = { ...(message.r as Dict) };
    delete r.nodes;
    delete r.nodes6;
    delete r.values;
    const small = Buffer.from(bencode.encode({ ...message, r }));
    return small.length <= limit ? small : undefined;
  }

  /** Pings an unproven source (our ping no larger than its query): its answer proves the address. */
  private probe(reply: Dict, limit: number, port: number, host: string): void {
    const id = isDict(reply.r) && isId(reply.r.id) ? reply.r.id : undefined;
    if (!id) return;
    const t = randomBytes(4);
    const ping = Buffer.from(bencode.encode({ t, y: 'q', q: 'ping', a: { id } }));
    if (ping.length > limit) return;
    remember(this.sent, `${host}:${port}|${t.toString('hex')}`, true);
    this.rawSend(ping, port, host);
  }

  private rawSend(buf: Buffer, port: number, host: string, callback?: (err: Error | null) => void): void {
    try {
      this.inner.send(buf, 0, buf.length, port, host, (err) => callback?.(err ?? null));
    } catch (err) {
      callback?.(err as Error);
    }
  }

  close(): void {
    this.closed = true;
    try {
      this.inner.close();
    } catch {
      this.emit('close'); // already closed
    }
  }

  private filter(packet: Buffer, rinfo: RemoteInfo): void {
    if (!this.bucket.take()) {
      this.stats.rateLimited++;
      return;
    }
    const problem = krpcProblem(packet);
    if (problem) {
      this.stats.dropped++;
      this.onDrop(`${rinfo.address}:${rinfo.port}`, problem);
      return;
    }
    this.stats.passed++;
    const from = `${rinfo.address}:${rinfo.port}`;
    const message = decodeDict(packet);
    const tid = message && isBytes(message.t) ? Buffer.from(message.t).toString('hex') : '';
    const kind = message ? text(message.y) : '';
    if (kind === 'q') remember(this.queries, `${from}|${tid}`, packet.length);
    else if ((kind === 'r' || kind === 'e') && this.sent.delete(`${from}|${tid}`)) {
      remember(this.verified, from, Date.now() + VERIFIED_MS);
      if (kind === 'r' && isDict(message!.r) && isBytes(message!.r.id, ID_BYTES, ID_BYTES)) this.onResponder?.(rinfo, message!.r.id);
      if (kind === 'r' && isBytes(message!.ip)) this.onReplyIp?.(rinfo, message!.ip);
      if (kind === 'r' && isDict(message!.r) && isBytes(message!.r.nodes6)) this.onNodes6?.(message!.r.nodes6);
    }
    this.emit('message', packet, rinfo);
  }
}
