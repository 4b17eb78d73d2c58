// The µTP endpoint on a shared UDP socket: matches packets to connections by source address and
// connection ID, accepts SYNs into a bounded half-open table, dials. Safeguards (issue 19, and the
// reflection attacks on BitTorrent Sync, USENIX WOOT '15):
// - a SYN is answered by one STATE no larger than it, and the acceptor sends nothing else until
//   the peer echoes the random sequence number that STATE carried (the round trip is proved);
//   only then is the connection handed on;
// - malformed, truncated, unmatched and out-of-window packets are dropped without creating state;
// - half-open and established connections are bounded; beyond either bound SYNs are ignored.

import { EventEmitter } from 'node:events';
import { FerryError } from '../errors.js';
import { isLoopback } from '../util/address.js';
import { silentLogger, type Logger } from '../util/log.js';
import { ST_SYN, decodePacket, isUtpPacket } from './utp-packet.js';
import { LOOPBACK_PAYLOAD, MAX_PAYLOAD, UtpConnection, type UtpConnectionOptions, type UtpHost } from './utp-connection.js';
import type { UdpEndpoint } from './udp-socket.js';
import { BufferChurn } from './young-gc.js';

/** @default of UtpEndpointOptions.maxConnections */
export const MAX_CONNECTIONS = 256;
/** @default of UtpEndpointOptions.maxHalfOpen */
export const MAX_HALF_OPEN = 64;
/** Remotes remembered as dialled, for telling a punched connection (both sides sent SYNs). */
const MAX_PROBED = 256;
const PROBED_MEMORY_MS = 60_000;

/** What the endpoint needs of a UDP socket (UdpSocket is one). */
export interface DatagramSocket {
  send(buf: Buffer, port: number, host: string): void;
  /** One datagram gathered from several buffers (sendmsg); without it the pieces are joined for send(). */
  sendv?(bufs: readonly Buffer[], port: number, host: string): void;
  handle(classify: (buf: Buffer) => boolean, handler: (buf: Buffer, from: UdpEndpoint) => void): () => void;
}

export interface UtpEndpointOptions {
  maxConnections?: number;
  maxHalfOpen?: number;
  connection?: UtpConnectionOptions;
  logger?: Logger;
}

export interface UtpConnectOptions {
  /** How long SYNs are sent (every ~200 ms, jittered) before giving up. */
  timeoutMs: number;
  signal?: AbortSignal;
}

const keyOf = (remote: UdpEndpoint, recvId: number): string => `${remote.address}|${remote.port}|${recvId}`;
const remoteKey = (remote: UdpEndpoint): string => `${remote.address}|${remote.port}`;

export interface UtpEndpointEvents {
  connection: [UtpConnection];
}

export class UtpEndpoint extends EventEmitter<UtpEndpointEvents> {
  private readonly connections = new Map<string, UtpConnection>();
  private readonly halfOpen = new Set<UtpConnection>();
  private readonly probed = new Map<string, number>();
  private readonly unhandle: () => void;
  private readonly host: UtpHost;
  private readonly log: Logger;
  private closing = false;
  private last: UtpConnection | null = null;
  readonly churn = new BufferChurn();
  /** Packets dropped: malformed, unmatched, or over a bound (reported in status and tests). */
  dropped = 0;

  constructor(private readonly socket: DatagramSocket, private readonly options: UtpEndpointOptions = {}) {
    super();
    this.log = options.logger ?? silentLogger;
    this.host = {
      send: (header, payload, remote) => {
        if (payload.length === 0) this.socket.send(header, remote.port, remote.address);
        else if (this.socket.sendv) this.socket.sendv([header, ...payload], remote.port, remote.address);
        else this.socket.send(Buffer.concat([header, ...payload]), remote.port, remote.address);
      },
      release: (connection) => this.release(connection),
      proved: (connection) => this.proved(connection),
      allocated: (bytes) => this.churn.add(bytes),
    };
    this.unhandle = socket.handle(isUtpPacket, (buf, from) => this.onDatagram(buf, from));
  }

  get size(): number {
    return this.connections.size;
  }

  get halfOpenCount(): number {
    return this.halfOpen.size;
  }

  /** Dials `remote`: resolves once its STATE answered our SYN. TIMEOUT, ABORTED or CLOSED otherwise. */
  connect(remote: UdpEndpoint, options: UtpConnectOptions): Promise<UtpConnection> {
    if (this.closing) return Promise.reject(new FerryError('CLOSED', 'the µTP endpoint is closed'));
    if (options.signal?.aborted) return Promise.reject(new FerryError('ABORTED', 'µTP dial aborted'));
    if (this.connections.size >= (this.options.maxConnections ?? MAX_CONNECTIONS)) {
      return Promise.reject(new FerryError('IO', 'too many µTP connections'));
    }
    let recvId: number;
    do recvId = (Math.random() * 0x10000) & 0xffff;
    while (this.connections.has(keyOf(remote, recvId)) || this.connections.has(keyOf(remote, (recvId + 1) & 0xffff)));
    this.rememberProbe(remote);
    const connection = new UtpConnection(this.host, remote, { recvId, sendId: (recvId + 1) & 0xffff }, { initiator: true }, this.connectionOptions(remote));
    connection.setConnectDeadline(Date.now() + options.timeoutMs);
    this.connections.set(keyOf(remote, recvId), connection);
    return new Promise((resolve, reject) => {
      const settle = (err?: Error): void => {
        options.signal?.removeEventListener('abort', onAbort);
        connection.off('connect', onConnect);
        connection.off('close', onClose);
        connection.off('error', onError);
        if (err) {
          connection.destroy();
          reject(err);
        } else resolve(connection);
      };
      const onConnect = (): void => settle();
      const onError = (err: Error): void => settle(err);
      const onClose = (): void => settle(new FerryError('CLOSED', `µTP connection to ${remote.address}:${remote.port} closed while connecting`));
      const onAbort = (): void => settle(new FerryError('ABORTED', 'µTP dial aborted'));
      connection.once('connect', onConnect);
      connection.once('error', onError);
      connection.once('close', onClose);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops: every connection destroyed, the socket's handler removed. */
  close(): void {
    this.closing = true;
    this.unhandle();
    for (const connection of [...this.connections.values()]) connection.destroy();
    this.connections.clear();
    this.halfOpen.clear();
  }

  private onDatagram(buf: Buffer, from: UdpEndpoint): void {
    this.churn.add(buf.length);
    const pkt = decodePacket(buf);
    if (!pkt) {
      this.dropped++;
      return;
    }
    if (pkt.type === ST_SYN) {
      const recvId = (pkt.connectionId + 1) & 0xffff;
      const existing = this.connections.get(keyOf(from, recvId));
      if (existing) {
        existing.onPacket(pkt);
        return;
      }
      if (this.closing || this.halfOpen.size >= (this.options.maxHalfOpen ?? MAX_HALF_OPEN) || this.connections.size >= (this.options.maxConnections ?? MAX_CONNECTIONS)) {
        this.dropped++;
        return;
      }
      // A clash with a connection we dialled whose send ID is this one: ignore (it would be ambiguous).
      if (this.connections.has(keyOf(from, pkt.connectionId))) {
        this.dropped++;
        return;
      }
      const connection = new UtpConnection(this.host, from, { recvId, sendId: pkt.connectionId }, { initiator: false, syn: pkt }, this.connectionOptions(from));
      connection.punched = this.wasProbed(from);
      if (connection.punched) this.markPunched(from);
      connection.on('error', () => undefined); // until handed on; its owner listens then
      this.connections.set(keyOf(from, recvId), connection);
      this.halfOpen.add(connection);
      return;
    }
    // The last match first: a bulk transfer's packets come from one connection, and building the key costs.
    const last = this.last;
    const connection =
      last && last.recvId === pkt.connectionId && last.remote.port === from.port && last.remote.address === from.address && last.state !== 'closed'
        ? last
        : this.connections.get(keyOf(from, pkt.connectionId));
    if (connection) this.last = connection;
    if (!connection) {
      this.dropped++;
      return;
    }
    connection.onPacket(pkt);
  }

  /** Bigger packets only to this host's own loopback (still probed first); everywhere else the internet's safe size. */
  private connectionOptions(remote: UdpEndpoint): UtpConnectionOptions {
    const maxPayload = isLoopback(remote.address) ? LOOPBACK_PAYLOAD : MAX_PAYLOAD;
    return { maxPayload, ...this.options.connection };
  }

  private proved(connection: UtpConnection): void {
    this.halfOpen.delete(connection);
    this.log.debug('µTP connection accepted', { from: `${connection.remote.address}:${connection.remote.port}`, punched: connection.punched });
    if (this.listenerCount('connection') === 0) {
      connection.destroy();
      return;
    }
    this.emit('connection', connection);
  }

  private release(connection: UtpConnection): void {
    const key = keyOf(connection.remote, connection.recvId);
    if (this.connections.get(key) === connection) this.connections.delete(key);
    this.halfOpen.delete(connection);
    if (this.last === connection) this.last = null;
  }

  private rememberProbe(remote: UdpEndpoint): void {
    const nowMs = Date.now();
    const key = remoteKey(remote);
    this.probed.delete(key);
    this.probed.set(key, nowMs);
    if (this.probed.size > MAX_PROBED) this.probed.delete(this.probed.keys().next().value!);
  }

  private wasProbed(remote: UdpEndpoint): boolean {
    const at = this.probed.get(remoteKey(remote));
    return at !== undefined && Date.now() - at < PROBED_MEMORY_MS;
  }

  /** Our own recent dials to the same remote took part in the punch too (its SYN may come just after ours got through). */
  private markPunched(remote: UdpEndpoint): void {
    for (const connection of this.connections.values()) {
      if (connection.initiator && connection.remote.address === remote.address && connection.remote.port === remote.port) connection.punched = true;
    }
  }
}
