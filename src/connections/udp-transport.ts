// Peers over UDP: µTP on the sync port's shared UDP socket, with the same TLS 1.3 as over TCP
// (tls.connect / TLSSocket take any duplex stream), so the Ferry handshake and its key proofs run
// over it unchanged. Accepting is bounded like the TCP listener's.

import tls, { type TLSSocket } from 'node:tls';
import { FerryError, ioError } from '../errors.js';
import type { DeviceIdentity } from '../keys/index.js';
import { clientTlsOptions, serverTlsOptions } from '../protocol/index.js';
import { UdpSocket, UtpEndpoint, type DatagramSocket, type UdpEndpoint, type UtpConnection } from '../transport/index.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { formatAddress, type HostPort } from '../util/address.js';
import { awaitSecureConnect, type DialOptions } from './dial.js';

/** How a connection reached the peer: shown in status as `peers[].path`. */
export type LinkPath = 'tcp' | 'udp' | 'udp punched' | `turn ${string}` | `relay via ${string}`;

/** A datagram socket to run µTP over instead of the sync port's own: a TURN allocation. */
export interface RelayDatagrams extends DatagramSocket {
  /** Our address as peers see it (the relayed address). */
  address(): UdpEndpoint;
}

type Identity = Pick<DeviceIdentity, 'certPem' | 'keyPem'>;

/** What a TLS socket over µTP carries besides itself (a TLSSocket over a JS stream knows no addresses). */
const overUdp = new WeakMap<TLSSocket, { utp: UtpConnection; path?: LinkPath }>();

/**
 * A TLS socket's link facts: its path and round-trip time. The TLS socket over a µTP connection
 * gets the connection's addresses as its own, so everything that reads remoteAddress (the
 * handshake's observed address, logs, status) works as over TCP.
 */
export function linkOf(socket: TLSSocket): { path: () => LinkPath; rttMs: () => number | undefined } {
  const link = overUdp.get(socket);
  if (!link) return { path: () => 'tcp', rttMs: () => undefined };
  const { utp, path } = link;
  // Read when asked: the peer's SYN that shows a punch may come just after our dial completed.
  return {
    path: () => path ?? (utp.punched ? 'udp punched' : 'udp'),
    rttMs: () => (utp.srttMs === undefined ? undefined : Math.round(utp.srttMs * 10) / 10),
  };
}

function wrap(socket: TLSSocket, utp: UtpConnection, local: { address: string; port: number }, path?: LinkPath): TLSSocket {
  overUdp.set(socket, { utp, ...(path ? { path } : {}) });
  Object.defineProperties(socket, {
    remoteAddress: { value: utp.remote.address, configurable: true },
    remotePort: { value: utp.remote.port, configurable: true },
    localAddress: { value: local.address, configurable: true },
    localPort: { value: local.port, configurable: true },
  });
  socket.on('error', () => undefined);
  // The TLS socket and the µTP connection end together.
  socket.once('close', () => utp.destroy());
  utp.once('close', () => socket.destroy());
  return socket;
}

export interface UdpTransportOptions {
  identity: Identity;
  listen: HostPort;
  tlsHandshakeTimeoutMs: number;
  maxPendingHandshakes: number;
  logger?: Logger;
  /** Accepting off (dialling only), e.g. `--no-udp` keeps no UDP at all and never builds this. */
  onSecureSocket: (socket: TLSSocket) => Promise<void>;
  /** Run over this socket (a TURN allocation) instead of binding the sync port; connections show `path`. */
  over?: { socket: RelayDatagrams; path: LinkPath };
}

export class UdpTransport extends Resource {
  readonly socket: UdpSocket;
  private endpoint: UtpEndpoint | null = null;
  private readonly log: Logger;
  private pending = 0;
  private readonly open_ = new Set<TLSSocket>();

  constructor(private readonly options: UdpTransportOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    this.socket = new UdpSocket({ host: options.listen.host, port: options.listen.port, logger: this.log });
  }

  get pendingHandshakes(): number {
    return this.pending;
  }

  /** What µTP runs over: the sync port's socket, or the relayed one. */
  private get datagrams(): RelayDatagrams {
    return this.options.over?.socket ?? this.socket;
  }

  protected async _open(): Promise<void> {
    if (!this.options.over) await this.socket.open();
    // TLS over a Duplex writes fresh copies: µTP sends from them as they are.
    const endpoint = new UtpEndpoint(this.datagrams, { logger: this.log });
    endpoint.on('connection', (utp) => this.accept(utp));
    this.endpoint = endpoint;
  }

  protected async _close(): Promise<void> {
    for (const socket of this.open_) socket.destroy();
    this.endpoint?.close();
    await this.socket.close();
  }

  /** Like dialTls, over µTP: SYNs sent (and NATs punched) until the deadline. */
  async dial(target: HostPort, options: DialOptions): Promise<TLSSocket> {
    const endpoint = this.endpoint;
    const where = formatAddress(target);
    if (!endpoint || this.closed) throw new FerryError('CLOSED', 'UDP transport closed');
    const deadline = Date.now() + options.timeoutMs;
    let utp: UtpConnection;
    try {
      utp = await endpoint.connect({ address: target.host, port: target.port }, { timeoutMs: options.timeoutMs, signal: options.signal });
    } catch (err) {
      if (err instanceof FerryError) throw new FerryError(err.code, `UDP: ${err.message.replace('µTP ', '')} (${where})`);
      throw ioError(`cannot connect to ${where} over UDP`, err);
    }
    const socket = wrap(tls.connect({ ...clientTlsOptions(this.options.identity), socket: utp }), utp, this.datagrams.address(), this.options.over?.path);
    return awaitSecureConnect(socket, { where, transport: ' over UDP', timeoutMs: deadline - Date.now(), signal: options.signal });
  }

  private accept(utp: UtpConnection): void {
    if (this.closed || this.pending >= this.options.maxPendingHandshakes) {
      this.log.debug('refusing a UDP connection: too many handshakes in progress', { from: `${utp.remote.address}:${utp.remote.port}` });
      utp.destroy();
      return;
    }
    this.pending++;
    const raw = new tls.TLSSocket(utp, { isServer: true, ...serverTlsOptions(this.options.identity) });
    const socket = wrap(raw, utp, this.datagrams.address(), this.options.over?.path);
    this.open_.add(socket);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.pending--;
    };
    socket.once('close', () => {
      this.open_.delete(socket);
      release();
    });
    const timer = setTimeout(() => {
      this.log.debug('TLS handshake over UDP timed out', { from: `${utp.remote.address}:${utp.remote.port}` });
      socket.destroy();
    }, this.options.tlsHandshakeTimeoutMs);
    socket.once('secure', () => {
      clearTimeout(timer);
      if (this.closed) {
        socket.destroy();
        return;
      }
      void this.options
        .onSecureSocket(socket)
        .catch((err: unknown) => this.log.error('peer handshake failed unexpectedly', { err }))
        .finally(release);
    });
    socket.once('close', () => clearTimeout(timer));
  }
}
