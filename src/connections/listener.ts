// The TLS listener for peers: accepts sockets, bounds how many are in a handshake at once, hands finished TLS sockets on.

import type { AddressInfo, Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import { ioError } from '../errors.js';
import type { DeviceIdentity } from '../keys/index.js';
import { serverTlsOptions } from '../protocol/index.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { LogLimit } from '../util/log-limit.js';
import { socketAddress, type HostPort } from '../util/address.js';
import { HandshakeSlots, MAX_PENDING_HANDSHAKES } from './handshake-slots.js';

export { MAX_PENDING_HANDSHAKES };
/** @default of PeerListenerOptions.closeDeadlineMs */
export const LISTENER_CLOSE_DEADLINE_MS = 10_000;

export interface PeerListenerOptions {
  identity: Pick<DeviceIdentity, 'certPem' | 'keyPem'>;
  listen: HostPort;
  /** Deadline of the TLS handshake; the Ferry handshake has its own (see establishPeer). */
  tlsHandshakeTimeoutMs: number;
  /** Sockets accepted but not yet through the Ferry handshake; beyond, the oldest is dropped (handshake-slots.ts). @default MAX_PENDING_HANDSHAKES */
  maxPendingHandshakes?: number;
  /** Of those, from one IP address. @default MAX_PENDING_PER_SOURCE */
  maxPendingPerSource?: number;
  /** From TCP accept to the end of the Ferry handshake. @default PENDING_HANDSHAKE_DEADLINE_MS */
  pendingDeadlineMs?: number;
  /** After close() began, sockets still open this long are destroyed. @default LISTENER_CLOSE_DEADLINE_MS */
  closeDeadlineMs?: number;
  logger?: Logger;
  /** Runs the Ferry handshake on a socket past TLS; its slot stays taken until the promise settles. Must not reject. */
  onSecureSocket: (socket: TLSSocket) => Promise<void>;
}

const keyOf = (socket: Socket): string => `${socket.remoteAddress}|${socket.remotePort}`;
/** The source IP address (IPv4-mapped shown as IPv4). */
const sourceOf = (socket: Socket): string => {
  const host = socket.remoteAddress ?? '?';
  return host.startsWith('::ffff:') ? host.slice(7) : host;
};

export class PeerListener extends Resource {
  private readonly log: Logger;
  /** Refusals a stranger can repeat at will: info level, rate-limited. */
  private readonly refusals: LogLimit;
  private readonly slots: HandshakeSlots<Socket>;
  private server: tls.Server | null = null;
  /**
   * With the IPv4 wildcard (0.0.0.0, the default listen host), a second, IPv6-only server on `::`
   * and the same port, so peers with IPv6 addresses reach this device over TCP too (issue 19).
   * Null where IPv6 is unavailable (logged) or the listen host is not the IPv4 wildcard.
   */
  private server6: tls.Server | null = null;
  /** Every accepted TCP socket still open (destroyed at the close deadline). */
  private readonly sockets = new Set<Socket>();
  /** Accepted TCP sockets whose TLS or Ferry handshake has not finished, by remote address and port. */
  private readonly inHandshake = new Map<string, Socket>();
  private bound: HostPort | null = null;
  private bound6: HostPort | null = null;

  constructor(private readonly options: PeerListenerOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    this.refusals = new LogLimit(this.log);
    this.slots = new HandshakeSlots<Socket>({
      maxTotal: options.maxPendingHandshakes,
      maxPerSource: options.maxPendingPerSource,
      deadlineMs: options.pendingDeadlineMs,
      hasSpoken: (raw) => raw.bytesRead > 0,
      onDrop: (raw, why, source) => {
        raw.destroy();
        const message = why === 'evicted' ? 'dropped the oldest pending handshake for a new connection' : 'dropped a handshake past its deadline';
        this.refusals.emit('info', why, message, { from: socketAddress(raw.remoteAddress, raw.remotePort), source, pending: this.slots.size });
      },
    });
  }

  /** The bound address (the real port when 0 was asked for). */
  address(): HostPort {
    if (!this.bound) throw new Error('PeerListener is not open');
    return this.bound;
  }

  /** Every bound address: the listen address, and `::` on the same port when IPv6 is also accepted. */
  addresses(): HostPort[] {
    return [this.address(), ...(this.bound6 ? [this.bound6] : [])];
  }

  /** Whether peers can connect over IPv6 (an IPv6 listen host, or the IPv6 sibling of 0.0.0.0). */
  get ipv6(): boolean {
    return this.bound6 !== null || (this.bound?.host.includes(':') ?? false);
  }

  get pendingHandshakes(): number {
    return this.inHandshake.size;
  }

  protected async _open(): Promise<void> {
    const { listen } = this.options;
    const server = this.createServer();
    this.server = server;
    await listenOn(server, { port: listen.port, host: listen.host }).catch((err: unknown) => {
      this.server = null;
      throw ioError(`cannot listen for peers on ${listen.host}:${listen.port}`, err);
    });
    server.on('error', (err) => this.log.warn('peer listener error', { err }));
    const address = server.address() as AddressInfo;
    this.bound = { host: address.address, port: address.port };
    if (listen.host === '0.0.0.0') await this.openSecond(address.port);
  }

  /** The IPv6 sibling of an IPv4 wildcard listener, on the same port; without it (logged) peers reach us over IPv4 only. */
  private async openSecond(port: number): Promise<void> {
    const server = this.createServer();
    try {
      await listenOn(server, { port, host: '::', ipv6Only: true });
    } catch (err) {
      server.close();
      this.log.info('no IPv6 TCP listener on the sync port: peers reach this device over IPv4 only', { port, reason: (err as Error).message });
      return;
    }
    server.on('error', (err) => this.log.warn('peer listener error (IPv6)', { err }));
    this.server6 = server;
    this.bound6 = { host: '::', port };
  }

  private createServer(): tls.Server {
    // noDelay: a block request and its answer are small writes; Nagle's algorithm with delayed ACKs held each ~40 ms.
    const server = tls.createServer({ ...serverTlsOptions(this.options.identity), handshakeTimeout: this.options.tlsHandshakeTimeoutMs, noDelay: true });
    server.on('connection', (raw: Socket) => this.onConnection(raw));
    server.on('secureConnection', (socket: TLSSocket) => this.onSecureConnection(socket));
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      // Node leaves a timed-out handshake open: always destroy.
      socket.destroy();
      this.log.debug('TLS handshake with a peer failed', { reason: err });
    });
    return server;
  }

  protected async _close(): Promise<void> {
    const servers = [this.server, this.server6].filter((server): server is tls.Server => server !== null);
    if (servers.length === 0) return;
    const allClosed = Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())))).then(() => undefined);
    for (const raw of this.inHandshake.values()) raw.destroy();
    this.inHandshake.clear();
    this.slots.clear();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.closeDeadlineMs ?? LISTENER_CLOSE_DEADLINE_MS)));
    await Promise.race([allClosed, deadline]);
    clearTimeout(timer);
    for (const raw of this.sockets) raw.destroy();
    await allClosed;
  }

  private onConnection(raw: Socket): void {
    raw.on('error', () => undefined);
    if (this.closed) {
      raw.destroy();
      return;
    }
    const key = keyOf(raw);
    this.sockets.add(raw);
    this.inHandshake.set(key, raw);
    this.slots.admit(raw, sourceOf(raw));
    raw.once('close', () => {
      this.sockets.delete(raw);
      this.slots.release(raw);
      if (this.inHandshake.get(key) === raw) this.inHandshake.delete(key);
    });
  }

  private onSecureConnection(socket: TLSSocket): void {
    const key = keyOf(socket);
    const raw = this.inHandshake.get(key);
    if (this.closed) {
      socket.destroy();
      return;
    }
    socket.on('error', () => undefined);
    if (raw) this.slots.secured(raw);
    void this.options
      .onSecureSocket(socket)
      .catch((err: unknown) => this.log.error('peer handshake failed unexpectedly', { err }))
      .then(() => {
        if (raw && this.inHandshake.get(key) === raw) this.inHandshake.delete(key);
        if (raw) this.slots.release(raw);
      });
  }
}

function listenOn(server: tls.Server, options: { port: number; host: string; ipv6Only?: boolean }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
