// Keeps this device connected to its peers: listens, dials known addresses with backoff, keeps one connection per device pair.

import type { TLSSocket } from 'node:tls';
import { FerryError, isFerryError } from '../errors.js';
import type { UdpSocket } from '../transport/index.js';
import { HANDSHAKE_TIMEOUT_MS, PreHandshakeBudget, establishPeer, type HandshakeResult, type PeerConnection } from '../protocol/index.js';
import { CLOSE_SUPERSEDED, SUPERSEDE_DRAIN_MS } from '../protocol/connection.js';
import type { BackoffOptions } from '../util/backoff.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { formatAddress, normalizeAddress, parseAddress, socketAddress, type HostPort } from '../util/address.js';
import { dialTls } from './dial.js';
import { UdpTransport, linkOf, type LinkPath, type RelayDatagrams } from './udp-transport.js';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { clientTlsOptions, serverTlsOptions } from '../protocol/index.js';
import { awaitSecureConnect } from './dial.js';
import { prefersCandidate, type Direction, type LinkFacts } from './duplicates.js';
import { KnownAddress, type AddressStatus } from './known-address.js';
import { MAX_PENDING_HANDSHAKES, PeerListener } from './listener.js';
import { certificateDeviceId } from './peer-id.js';
import type { ConnectionManagerOptions, EstablishedPeer } from './types.js';

/** Close codes this layer sends. */
export const CLOSE_DUPLICATE = 'DUPLICATE';
export const CLOSE_SHUTDOWN = 'SHUTDOWN';
/** "Reconnect now": our folder set changed, a new handshake will share more. */
export const CLOSE_RECONNECT = 'RECONNECT';
/** A relayed link a direct one replaced: drained (requests answered both ways), then closed (docs/protocol.md). */
export { CLOSE_SUPERSEDED };

/** @default of ConnectionManagerOptions.backoff */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1_000, maxMs: 60_000 };
/** @default of ConnectionManagerOptions.stableLinkMs: a link up this long resets its device's redial backoff. */
export const STABLE_LINK_MS = 60_000;
export const SOURCE_KNOWN = 'known';
export const SOURCE_INCOMING = 'incoming';
/** Happy eyeballs: a dial tries UDP (µTP) this long after TCP began, or at once when TCP failed; the first to finish TLS wins. */
export const UDP_DIAL_DELAY_MS = 300;
/** A UDP dial sends SYNs (and so punches NATs) for at most this long. */
export const UDP_PROBE_MS = 10_000;
/** Devices whose last failed hole punch is remembered (lastPunchFailure). */
const MAX_PUNCH_FAILURES = 256;

interface Link {
  peer: EstablishedPeer;
  /** Order in which this device started or accepted the connection (for the duplicate rule). */
  order: number;
  /** Through a relay both ends know of: a Ferry relay stream, or TURN allocations at both ends. */
  relayed: boolean;
  /** A direct link replaced this one: it drains (supersede) once that link is in use. */
  handingOver?: boolean;
}

const factsOf = (link: Link): LinkFacts => ({ direction: link.peer.direction, order: link.order, relayed: link.relayed });

interface Attempt {
  direction: Direction;
  source: string;
  order: number;
  entry?: KnownAddress;
  /** A link over a stream another layer opened (a relay): its shown address and its link facts. */
  over?: OverStream;
}

/** How a stream opened by another layer (src/relay/) is shown: `address` in status, its path and round-trip time. */
export interface OverStream {
  address: string;
  path: () => LinkPath;
  rttMs: () => number | undefined;
  /** The device the stream should lead to (a client checks the certificate before the handshake). */
  device?: string;
}

export type { ConnectionManagerOptions, EstablishedPeer } from './types.js';

export class ConnectionManager extends Resource {
  private readonly log: Logger;
  /** TCP: null when off (`--no-tcp`). */
  private readonly listener: PeerListener | null;
  /** UDP (µTP on the same port number): null when off (`--no-udp`), or when its port could not be bound. */
  private udp: UdpTransport | null;
  private readonly udpWanted: boolean;
  /** µTP over relayed sockets (TURN allocations), by name: a relayed address is dialled through the relay on its IP. */
  private readonly relays = new Map<string, { socket: RelayDatagrams; transport: UdpTransport }>();
  private readonly handshakeTimeoutMs: number;
  private readonly known = new Map<string, KnownAddress>();
  /** The kept connection per device ID. */
  private readonly links = new Map<string, Link>();
  /** Every established connection not yet closed, kept or not. */
  private readonly connections = new Set<PeerConnection>();
  /** Dials and incoming handshakes in progress. */
  private readonly attempts = new Set<Promise<void>>();
  private readonly lifetime = new AbortController();
  /** Bytes received by all links still in their handshake (src/protocol/pre-handshake.ts). */
  private readonly preHandshake = new PreHandshakeBudget();
  /** Bumped by refresh(): a handshake begun under an older folder set is redone. */
  private generation = 0;
  private nextOrder = 0;
  /** Per device, the last hole punch (punchDial) that ended without a direct link: when, and why (bounded). */
  private readonly punchFailures = new Map<string, { atMs: number; error: string }>();

  constructor(private readonly options: ConnectionManagerOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    const tcp = options.tcp ?? true;
    const udp = options.udp ?? true;
    if (!tcp && !udp) throw new FerryError('USAGE', 'TCP and UDP are both off: no way to reach peers');
    this.listener = tcp
      ? new PeerListener({
          identity: options.identity,
          listen: options.listen,
          tlsHandshakeTimeoutMs: this.handshakeTimeoutMs,
          maxPendingHandshakes: options.maxPendingHandshakes,
          logger: this.log,
          onSecureSocket: (socket) => this.track(this.accept(socket)),
        })
      : null;
    this.udpWanted = udp;
    this.udp = null;
  }

  /** The bound listen address (the real port when 0 was asked for); TCP and UDP share the port number. */
  address(): HostPort {
    if (this.listener) return this.listener.address();
    const bound = this.udp!.socket.address();
    return { host: bound.address, port: bound.port };
  }

  /**
   * Where peers can connect, per transport: the listen address, and `[::]:PORT` where the IPv4
   * wildcard also accepts IPv6 (status shows it, so a user sees whether IPv6 peers get in).
   */
  listening(): { tcp: string[]; udp: string[] } {
    const tcp = this.listener?.opened ? this.listener.addresses().map(formatAddress) : [];
    const udp: string[] = [];
    if (this.udp?.opened) {
      const bound = this.udp.socket.address();
      udp.push(formatAddress({ host: bound.address, port: bound.port }));
      if (this.udp.socket.ipv6 && this.udp.socket.family === 'udp4') udp.push(formatAddress({ host: '::', port: bound.port }));
    }
    return { tcp, udp };
  }

  /** Incoming connections accepted and not yet through the handshake. */
  get pendingHandshakes(): number {
    return (this.listener?.pendingHandshakes ?? 0) + (this.udp?.pendingHandshakes ?? 0);
  }

  /** The sync port's UDP socket (STUN and others share it), when UDP is on. */
  udpSocket(): UdpSocket | null {
    return this.udp?.opened ? this.udp.socket : null;
  }

  /**
   * Runs µTP, TLS and the handshake over `socket` (a TURN allocation) too: its peers' connections
   * are accepted as any other, and addresses on its relayed IP (other allocations on the same
   * server) are dialled through it. Returns its removal (its connections close with it).
   */
  async addRelay(name: string, socket: RelayDatagrams, path: LinkPath): Promise<() => Promise<void>> {
    if (this.closed || this.relays.has(name)) throw new FerryError('USAGE', `relay ${name} cannot be added`);
    const transport = new UdpTransport({
      identity: this.options.identity,
      listen: this.options.listen,
      tlsHandshakeTimeoutMs: this.handshakeTimeoutMs,
      maxPendingHandshakes: this.options.maxPendingHandshakes ?? MAX_PENDING_HANDSHAKES,
      logger: this.log.child('relay'),
      onSecureSocket: (tlsSocket) => this.track(this.accept(tlsSocket)),
      over: { socket, path },
    });
    await transport.open();
    const entry = { socket, transport };
    this.relays.set(name, entry);
    return async () => {
      if (this.relays.get(name) === entry) this.relays.delete(name);
      await transport.close();
    };
  }

  /** The relayed sockets (discovery announces their addresses through them). */
  relaySockets(): Array<{ name: string; socket: RelayDatagrams }> {
    return [...this.relays.entries()].map(([name, { socket }]) => ({ name, socket }));
  }

  /** Dials `address` (HOST:PORT) now and keeps it connected, redialling with backoff; idempotent. USAGE if malformed. */
  addAddress(address: string, source: string = SOURCE_KNOWN): void {
    const target = parseAddress(address);
    const key = normalizeAddress(address);
    if (this.closed || this.known.has(key)) return;
    const entry = new KnownAddress(key, target, source, this.options.backoff ?? DEFAULT_BACKOFF);
    this.known.set(key, entry);
    if (this.opened) entry.schedule(0, () => this.dial(entry));
  }

  /** Stops dialling `address`; a connection already made through it stays up. */
  removeAddress(address: string): void {
    const key = normalizeAddress(address);
    this.known.get(key)?.dispose();
    this.known.delete(key);
  }

  addresses(): AddressStatus[] {
    return [...this.known.values()].map((entry) => entry.status(this.isConnected(entry.deviceId)));
  }

  /** The kept connection of every connected device. */
  peers(): EstablishedPeer[] {
    return [...this.links.values()].map((link) => link.peer);
  }

  /**
   * The folder set changed: connected peers are closed with RECONNECT and dialled again (a peer
   * that dialled us redials on that code), and addresses not connected are dialled now.
   */
  refresh(): void {
    if (!this.opened) return;
    this.generation++;
    for (const entry of this.known.values()) {
      if (entry.self || entry.dialing || this.isDirectlyConnected(entry.deviceId)) continue;
      entry.resetBackoff();
      entry.schedule(0, () => this.dial(entry));
    }
    for (const link of [...this.links.values()]) this.retire(link, CLOSE_RECONNECT, 'the folder set changed');
  }

  /**
   * Runs TLS 1.3 and the Ferry handshake over a stream another layer opened (a relay), as the
   * client or the server, and keeps the link like any other (a direct link to the same device
   * replaces it). Resolves once kept or refused; rejects with why it failed.
   */
  async connectOver(stream: Duplex, role: 'client' | 'server', over: OverStream): Promise<void> {
    if (!this.opened || this.closed) {
      stream.destroy();
      throw new FerryError('CLOSED', 'connection manager closed');
    }
    const order = this.nextOrder++;
    const identity = this.options.identity;
    let socket: TLSSocket;
    if (role === 'client') {
      socket = tls.connect({ ...clientTlsOptions(identity), socket: stream });
      await awaitSecureConnect(socket, { where: over.address, transport: '', timeoutMs: this.handshakeTimeoutMs, signal: this.lifetime.signal });
    } else {
      socket = new tls.TLSSocket(stream, { isServer: true, ...serverTlsOptions(identity) });
      socket.on('error', () => undefined);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => fail(new FerryError('TIMEOUT', `no TLS handshake over ${over.address} within ${this.handshakeTimeoutMs} ms`)), this.handshakeTimeoutMs);
        const fail = (err: Error): void => {
          clearTimeout(timer);
          socket.destroy();
          reject(err);
        };
        socket.once('secure', () => {
          clearTimeout(timer);
          socket.off('close', onClose);
          resolve();
        });
        const onClose = (): void => fail(new FerryError('CLOSED', `${over.address} closed during the TLS handshake`));
        socket.once('close', onClose);
      });
    }
    socket.once('close', () => stream.destroy());
    stream.once('close', () => socket.destroy());
    const remoteId = certificateDeviceId(socket);
    if (remoteId === identity.id || (over.device !== undefined && remoteId !== over.device)) {
      socket.destroy();
      throw new FerryError('HANDSHAKE', `the relayed stream led to ${remoteId === identity.id ? 'this device' : 'another device'}`);
    }
    const settled = (async () => {
      try {
        const established = await this.establish(socket, role);
        this.adopt(socket, established, { direction: role === 'client' ? 'out' : 'in', source: over.address, order, over });
      } catch (err) {
        socket.destroy();
        throw err;
      }
    })();
    void this.track(settled.catch(() => undefined));
    await settled;
  }

  protected async _open(): Promise<void> {
    if (this.listener) await this.listener.open();
    if (this.udpWanted) {
      const port = this.listener ? this.listener.address().port : this.options.listen.port;
      this.udp = new UdpTransport({
        identity: this.options.identity,
        listen: { host: this.options.listen.host, port },
        tlsHandshakeTimeoutMs: this.handshakeTimeoutMs,
        maxPendingHandshakes: this.options.maxPendingHandshakes ?? MAX_PENDING_HANDSHAKES,
        logger: this.log.child('udp'),
        onSecureSocket: (socket) => this.track(this.accept(socket)),
      });
      try {
        await this.udp.open();
      } catch (err) {
        if (!this.listener) throw err;
        this.log.warn('no UDP on the sync port: peers are reached over TCP only', { reason: (err as Error).message });
        await this.udp.close();
        this.udp = null;
      }
    }
    this.log.info('listening for peers', { address: socketAddress(this.address().host, this.address().port) });
    for (const entry of this.known.values()) entry.schedule(0, () => this.dial(entry));
  }

  protected async _close(): Promise<void> {
    this.lifetime.abort();
    for (const entry of this.known.values()) entry.dispose();
    const listenerClosed = Promise.all([this.listener?.close(), this.udp?.close(), ...[...this.relays.values()].map((relay) => relay.transport.close())]);
    this.relays.clear();
    await Promise.allSettled([...this.attempts]);
    for (const link of [...this.links.values()]) {
      this.links.delete(link.peer.deviceId);
      this.reportClosed(link);
    }
    await Promise.allSettled([...this.connections].map((connection) => connection.close(CLOSE_SHUTDOWN, 'device shutting down')));
    await listenerClosed;
  }

  private isConnected(deviceId: string | undefined): boolean {
    return deviceId !== undefined && this.links.has(deviceId);
  }

  /** Connected other than through a relay: a relayed device's addresses are still dialled (with backoff), to go direct. */
  private isDirectlyConnected(deviceId: string | undefined): boolean {
    return deviceId !== undefined && this.links.has(deviceId) && !this.links.get(deviceId)!.relayed;
  }

  /** Whether `host` is the relay IP of one of our TURN allocations (an address there is reached through it). */
  private turnRelayOn(host: string): boolean {
    return [...this.relays.values()].some(({ socket, transport }) => transport.opened && socket.address().address === host);
  }

  /**
   * A link over one of our TURN allocations to an address on the same server's relay IP: both ends
   * run over allocations, so both know the link is relayed (the duplicate rule must agree at both).
   */
  private bothOnTurn(socket: TLSSocket): boolean {
    return linkOf(socket).path().startsWith('turn ') && socket.remoteAddress !== undefined && this.turnRelayOn(socket.remoteAddress);
  }

  /** Remembers a dial or handshake until it settles, so close() can wait for it; it never rejects. */
  private track(attempt: Promise<void>): Promise<void> {
    const settled = attempt.catch((err: unknown) => this.log.error('connection attempt failed unexpectedly', { err }));
    this.attempts.add(settled);
    void settled.then(() => this.attempts.delete(settled));
    return settled;
  }

  private dial(entry: KnownAddress): void {
    if (this.closed || entry.removed || entry.self || entry.dialing || this.isDirectlyConnected(entry.deviceId)) return;
    // A device linked through TURN is dialled on its other addresses (to go direct), not again through the relay.
    if (this.isConnected(entry.deviceId) && this.turnRelayOn(entry.target.host)) return;
    const busy = [...this.known.values()].some((other) => other !== entry && other.dialing && other.deviceId !== undefined && other.deviceId === entry.deviceId);
    if (busy) {
      // Another address of the same device is being dialled: two dials at once would make a duplicate.
      entry.schedule(entry.nextDelayMs(), () => this.dial(entry));
      return;
    }
    entry.beginDial();
    void this.track(this.dialOnce(entry).finally(() => (entry.dialing = false)));
  }

  private async dialOnce(entry: KnownAddress): Promise<void> {
    const generation = this.generation;
    const signal = AbortSignal.any([this.lifetime.signal, entry.abort.signal]);
    let socket: TLSSocket | undefined;
    try {
      socket = await this.dialAny(entry.target, signal);
      // Ordered when TLS completed, as the acceptor orders it (on its secure socket), not when the
      // dial began: two dials to one device (a punch begun long before, say) are then ordered alike
      // at both ends, and the duplicate rule keeps the same link at both.
      const order = this.nextOrder++;
      const remoteId = certificateDeviceId(socket);
      if (remoteId === this.options.identity.id) {
        socket.destroy();
        entry.self = true;
        entry.lastError = 'this address leads to this device';
        entry.cancel();
        this.log.info('address leads to this device itself; not dialling it again', { address: entry.address });
        return;
      }
      if (remoteId) entry.deviceId = remoteId;
      if (remoteId && this.isConnected(remoteId) && !this.links.get(remoteId)!.relayed) {
        // Connected meanwhile by another path: drop before the handshake, redial when that link ends.
        // (A relayed link is replaced by a direct one: the handshake goes on.)
        socket.destroy();
        entry.succeeded(remoteId, Date.now());
        return;
      }
      const established = await this.establish(socket, 'client');
      entry.succeeded(established.handshake.peer.deviceId, Date.now());
      this.adopt(socket, established, { direction: 'out', source: entry.source, order, entry });
    } catch (err) {
      socket?.destroy();
      if (this.closed || entry.removed) return;
      const reason = err instanceof Error ? err.message : String(err);
      if (generation !== this.generation) {
        // refresh() skips dials in progress: one begun under the old folder set (refused, say, for
        // want of a folder just added) is tried again at once, not after its backoff.
        this.log.debug('dial under an older folder set failed; dialling again', { address: entry.address, reason });
        entry.schedule(0, () => this.dial(entry));
        return;
      }
      const repeated = entry.lastError === reason;
      const delayMs = entry.failed(reason);
      const fields = { address: entry.address, reason, retryInMs: delayMs, failures: entry.consecutiveFailures };
      if (repeated) this.log.debug('dial failed again', fields);
      else this.log.info('dial failed', fields);
      entry.schedule(delayMs, () => this.dial(entry));
    }
  }

  /** Directly (dialDirect), and through a TURN relay too when the address is on its relay IP. */
  private dialAny(target: HostPort, signal: AbortSignal): Promise<TLSSocket> {
    // An address on a relay's IP is likely another allocation on the same TURN server, which only
    // the relay reaches; but a Ferry device may run on the TURN server's host too: both are tried.
    const relay = [...this.relays.values()].find(({ socket, transport }) => transport.opened && socket.address().address === target.host);
    if (!relay) return this.dialDirect(target, signal);
    return raceDials(
      signal,
      (both) => relay.transport.dial(target, { timeoutMs: Math.min(this.handshakeTimeoutMs, UDP_PROBE_MS), signal: both }),
      (both) => this.dialDirect(target, both),
      { delayMs: 0, describe: 'through the relay and directly: ' },
    );
  }

  /**
   * TCP first, then UDP after UDP_DIAL_DELAY_MS (or as soon as TCP failed), as happy eyeballs:
   * the first socket through TLS wins and the other attempt is abandoned. Over UDP the SYNs keep
   * going for UDP_PROBE_MS, which opens both NATs when the peer dials us at the same time.
   */
  private dialDirect(target: HostPort, signal: AbortSignal): Promise<TLSSocket> {
    const identity = this.options.identity;
    const timeoutMs = this.handshakeTimeoutMs;
    const udp = this.udp?.opened ? this.udp : null;
    if (!this.listener) {
      if (!udp) return Promise.reject(new FerryError('CLOSED', 'UDP transport closed'));
      return udp.dial(target, { timeoutMs: Math.min(timeoutMs, UDP_PROBE_MS), signal });
    }
    if (!udp) return dialTls(target, identity, { timeoutMs, signal });
    return raceDials(
      signal,
      (both) => dialTls(target, identity, { timeoutMs, signal: both }),
      (both) => udp.dial(target, { timeoutMs: Math.min(timeoutMs, UDP_PROBE_MS), signal: both }),
      { delayMs: UDP_DIAL_DELAY_MS, describe: '' },
    );
  }

  /** Connected to `deviceId` other than through a relay (a relayed device is still worth punching to). */
  directlyConnected(deviceId: string): boolean {
    return this.isDirectlyConnected(deviceId);
  }

  /** Whether UDP (µTP) is up, so hole punching can be tried. */
  get udpOn(): boolean {
    return this.udp?.opened === true;
  }

  /**
   * Hole punching after an introduction: dials `deviceId` over UDP only at `target`, sending SYNs
   * for UDP_PROBE_MS while the device dials us at the same moment, and keeps the connection by the
   * duplicate rule like any other. No "connected meanwhile" shortcut: both ends of a punch see two
   * connections at once, and only the duplicate rule picks the same one at both. Resolves with
   * whether the device is directly connected afterwards (by this dial or any other) and, if not, why.
   * A device connected only through a relay is punched to all the same: a direct link replaces it.
   */
  async punchDial(deviceId: string, target: HostPort, source: string, signal?: AbortSignal): Promise<{ connected: boolean; error?: string }> {
    const udp = this.udp?.opened ? this.udp : null;
    if (!udp || this.closed) return { connected: false, error: 'UDP is off' };
    if (this.isDirectlyConnected(deviceId)) return { connected: true };
    const where = socketAddress(target.host, target.port);
    let error: string | undefined;
    const attempt = (async (): Promise<void> => {
      let socket: TLSSocket | undefined;
      try {
        socket = await udp.dial(target, { timeoutMs: UDP_PROBE_MS, signal: signal ? AbortSignal.any([this.lifetime.signal, signal]) : this.lifetime.signal });
        const order = this.nextOrder++; // at TLS completion, as in dialOnce
        const remoteId = certificateDeviceId(socket);
        if (remoteId !== deviceId) throw new FerryError('HANDSHAKE', `${where} is ${remoteId === this.options.identity.id ? 'this device' : `device ${remoteId ?? '(none)'}`}, not the one introduced`);
        const established = await this.establish(socket, 'client');
        this.adopt(socket, established, { direction: 'out', source, order });
      } catch (err) {
        socket?.destroy();
        error = err instanceof Error ? err.message : String(err);
        this.log.debug('punch dial failed', { device: deviceId, address: where, reason: error });
      }
    })();
    await this.track(attempt);
    const connected = this.isDirectlyConnected(deviceId);
    if (connected) return { connected };
    // A punch that ran its course without a link (not one stopped because another connected, or at
    // shutdown): the relay service need not wait any longer for this device (src/daemon/relay-service.ts).
    if (!signal?.aborted && !this.closed) {
      this.punchFailures.delete(deviceId);
      if (this.punchFailures.size >= MAX_PUNCH_FAILURES) this.punchFailures.delete(this.punchFailures.keys().next().value!);
      this.punchFailures.set(deviceId, { atMs: Date.now(), error: error ?? 'not connected' });
    }
    return { connected, error: error ?? 'not connected' };
  }

  /** When a hole punch to `deviceId` last ended without a direct link, and why. */
  lastPunchFailure(deviceId: string): { atMs: number; error: string } | undefined {
    return this.punchFailures.get(deviceId);
  }

  private async accept(socket: TLSSocket): Promise<void> {
    const order = this.nextOrder++;
    const from = socketAddress(socket.remoteAddress, socket.remotePort);
    if (certificateDeviceId(socket) === this.options.identity.id) {
      this.log.debug('connection from this device itself (it dialled its own address)', { from });
      socket.destroy();
      return;
    }
    try {
      const established = await this.establish(socket, 'server');
      this.adopt(socket, established, { direction: 'in', source: SOURCE_INCOMING, order });
    } catch (err) {
      if (this.closed) return;
      const fields = { from, reason: err instanceof Error ? err.message : String(err) };
      if (isFerryError(err, 'HANDSHAKE') || isFerryError(err, 'PROTOCOL')) this.log.info('refused an incoming connection', fields);
      else this.log.debug('incoming connection failed', fields);
    }
  }

  private async establish(socket: TLSSocket, role: 'client' | 'server') {
    const generation = this.generation;
    const result = await establishPeer(socket, {
      ...this.options.connection,
      logger: this.options.connection?.logger ?? this.log.child('peer'),
      role,
      identity: this.options.identity,
      softwareVersion: this.options.softwareVersion,
      folders: this.options.folders(),
      folderState: this.options.folderState,
      isGrantRevoked: this.options.isGrantRevoked,
      handshakeTimeoutMs: this.handshakeTimeoutMs,
      signal: this.lifetime.signal,
      preHandshakeBudget: this.preHandshake,
      punched: () => linkOf(socket).path() === 'udp punched',
    });
    return { ...result, generation };
  }

  /** Decides whether a freshly established connection is kept, by the one-connection-per-device rule. */
  private adopt(
    socket: TLSSocket,
    established: { connection: PeerConnection; handshake: HandshakeResult; generation: number },
    attempt: Attempt,
  ): void {
    const { connection, handshake } = established;
    const deviceId = handshake.peer.deviceId;
    const peer: EstablishedPeer = {
      deviceId,
      deviceName: handshake.peer.deviceName,
      address: attempt.over?.address ?? attempt.entry?.address ?? socketAddress(socket.remoteAddress, socket.remotePort),
      localAddress: socketAddress(socket.localAddress, socket.localPort),
      direction: attempt.direction,
      source: attempt.source,
      connection,
      handshake,
      connectedAtMs: Date.now(),
      ...(attempt.over ? { path: attempt.over.path, rttMs: attempt.over.rttMs } : punchedEither(linkOf(socket), handshake.peer.punched === true)),
    };
    const link: Link = { peer, order: attempt.order, relayed: attempt.over !== undefined || this.bothOnTurn(socket) };
    this.watch(socket, link);
    if (this.closed) {
      void connection.close(CLOSE_SHUTDOWN, 'device shutting down');
      return;
    }
    if (established.generation !== this.generation) {
      this.log.debug('folder set changed during the handshake; reconnecting', { device: deviceId });
      const { entry } = attempt;
      void connection.close(CLOSE_RECONNECT, 'the folder set changed').then(() => entry?.schedule(0, () => this.dial(entry)));
      return;
    }
    const existing = this.links.get(deviceId);
    let handover: Link | undefined;
    if (existing) {
      const existingAlive = !existing.peer.connection.closed;
      if (existingAlive && !prefersCandidate(this.options.identity.id, deviceId, factsOf(existing), factsOf(link))) {
        this.log.debug('closing a second connection to a connected device', { device: deviceId, address: peer.address });
        void connection.close(CLOSE_DUPLICATE, 'another connection to this device is kept');
        return;
      }
      this.links.delete(deviceId);
      if (existingAlive) {
        // Handover: new requests go over the new link once it is in use (onPeer below); the old one
        // (a relayed link a direct one replaces, say, or a direct one a punched one replaces) answers
        // what is in flight both ways, then closes (SUPERSEDED). Both ends keep the same link.
        if (existing.relayed && !link.relayed) this.log.info('direct link replaces the relayed one; draining it', { device: deviceId, relayed: existing.peer.address, direct: peer.address });
        else this.log.debug('another link to a connected device replaces the kept one; draining it', { device: deviceId, old: existing.peer.address, new: peer.address });
        existing.handingOver = true;
        handover = existing;
      } else {
        this.reportClosed(existing);
      }
    }
    this.links.set(deviceId, link);
    for (const entry of this.known.values()) {
      if (entry.deviceId !== deviceId) continue;
      // A relayed device's addresses stay scheduled: a direct link replaces the relayed one.
      if (!link.relayed) entry.cancel();
      entry.lastSeenMs = peer.connectedAtMs;
    }
    this.log.info('peer connected', {
      device: deviceId,
      name: peer.deviceName,
      address: peer.address,
      direction: peer.direction,
      folders: handshake.folders.length,
    });
    let inUse: Promise<unknown> = Promise.resolve();
    try {
      inUse = Promise.resolve(this.options.onPeer(peer));
    } catch (err) {
      this.log.error('onPeer handler failed', { err });
    }
    if (handover) {
      const relayed = handover;
      void inUse
        .catch(() => undefined)
        .then(() => relayed.peer.connection.supersede(relayed.relayed && !link.relayed ? 'a direct link to this device replaces this relayed one' : 'another link to this device replaces this one'))
        .finally(() => this.reportClosed(relayed));
    }
  }

  /** Notices when an established connection ends, whoever ended it. */
  private watch(socket: TLSSocket, link: Link): void {
    const { connection } = link.peer;
    this.connections.add(connection);
    connection.onPeerSuperseded = () => {
      // The peer kept a direct link and drains this one: drain ours once our direct link is kept too
      // (adopt() then supersedes this one), or after the drain bound if none comes.
      if (link.handingOver) return; // adopt() supersedes it once the direct link is in use
      if (this.links.get(link.peer.deviceId) !== link) return void connection.supersede();
      setTimeout(() => void connection.supersede('the peer superseded this link and no other link came'), SUPERSEDE_DRAIN_MS).unref();
    };
    let noticed = false;
    // PeerConnection marks itself closed a tick after the socket ends or closes.
    const check = (): void => {
      setImmediate(() => {
        if (noticed || !connection.closed) return;
        noticed = true;
        this.connections.delete(connection);
        this.onConnectionClosed(link);
      });
    };
    socket.once('end', check);
    socket.once('finish', check);
    socket.once('close', check);
  }

  private onConnectionClosed(link: Link): void {
    const { deviceId } = link.peer;
    if (this.links.get(deviceId) !== link) return; // a duplicate, or already retired
    this.links.delete(deviceId);
    this.reportClosed(link);
    this.redial(deviceId, link.peer.connection, link.peer.connectedAtMs);
  }

  /** Closes a kept connection on purpose and redials its device. */
  private retire(link: Link, code: string, reason: string): void {
    this.links.delete(link.peer.deviceId);
    this.reportClosed(link);
    void link.peer.connection.close(code, reason);
    this.redial(link.peer.deviceId, link.peer.connection, link.peer.connectedAtMs);
  }

  /**
   * After `connection` to `deviceId` has fully closed, dials the device's addresses again: at once
   * for RECONNECT, otherwise after the backoff, which only a link that stayed up stableLinkMs resets
   * (a peer that closes every link, on a protocol fault say, is redialled ever more slowly).
   */
  private redial(deviceId: string, connection: PeerConnection, connectedAtMs: number): void {
    if (this.closed) return;
    const now = connection.closeCode === CLOSE_RECONNECT;
    const stable = Date.now() - connectedAtMs >= (this.options.stableLinkMs ?? STABLE_LINK_MS);
    void connection.close().then(() => {
      if (this.closed || this.isConnected(deviceId)) return;
      const close = `${connection.closeCode ?? 'CLOSED'}: ${connection.closeReason ?? ''}`.slice(0, 300);
      for (const entry of this.known.values()) {
        if (entry.deviceId !== deviceId || entry.dialing) continue;
        const delayMs = entry.linkClosed(close, stable);
        if (!stable && !now) this.log.info('link closed soon after it opened; redialling with backoff', { address: entry.address, close, retryInMs: delayMs });
        entry.schedule(now ? 0 : delayMs, () => this.dial(entry));
      }
    });
  }

  private reportClosed(link: Link): void {
    const { peer } = link;
    this.log.info('peer disconnected', {
      device: peer.deviceId,
      address: peer.address,
      code: peer.connection.closeCode,
      reason: peer.connection.closeReason,
    });
    try {
      this.options.onPeerClosed?.(peer);
    } catch (err) {
      this.log.error('onPeerClosed handler failed', { err });
    }
  }
}

/**
 * A UDP link is punched when either end saw the simultaneous open (it was dialling the address the
 * other's SYN came from): the acceptor always knows (its NAT let the SYN in only because it had sent
 * first), the dialler only if the peer's SYN reached it too, which it may not when its own got
 * through first. The peer's Hello says what its end saw, so both ends report the same path.
 */
function punchedEither(link: ReturnType<typeof linkOf>, peerSawPunch: boolean): ReturnType<typeof linkOf> {
  if (!peerSawPunch) return link;
  return { ...link, path: () => (link.path() === 'udp' ? 'udp punched' : link.path()) };
}

/**
 * Two dials to one peer side by side (happy eyeballs): the second starts after `delayMs`, or at
 * once when the first fails; the first socket through TLS wins, a later one is destroyed and the
 * other attempt aborted. Rejects with both reasons when both failed.
 */
function raceDials(
  signal: AbortSignal,
  first: (signal: AbortSignal) => Promise<TLSSocket>,
  second: (signal: AbortSignal) => Promise<TLSSocket>,
  options: { delayMs: number; describe: string },
): Promise<TLSSocket> {
  const loser = new AbortController();
  const both = AbortSignal.any([signal, loser.signal]);
  return new Promise<TLSSocket>((resolve, reject) => {
    let settled = false;
    let secondStarted = false;
    const errors: unknown[] = [];
    const win = (socket: TLSSocket): void => {
      if (settled) {
        socket.destroy();
        return;
      }
      settled = true;
      clearTimeout(timer);
      loser.abort();
      resolve(socket);
    };
    const lose = (err: unknown): void => {
      errors.push(err);
      if (settled || errors.length < 2) return;
      settled = true;
      const [cause] = errors;
      const message = errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ');
      reject(new FerryError(cause instanceof FerryError ? cause.code : 'IO', `${options.describe}${message}`, { cause }));
    };
    const startSecond = (): void => {
      if (secondStarted || settled) return;
      secondStarted = true;
      clearTimeout(timer);
      second(both).then(win, lose);
    };
    const timer = setTimeout(startSecond, options.delayMs);
    first(both).then(win, (err: unknown) => {
      lose(err);
      startSecond();
    });
  });
}
