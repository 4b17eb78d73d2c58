// Discovery: LAN announcements, trackers, DHT and peer exchange feeding one address book per
// folder, whose new addresses the connection manager dials (and forgets when the book drops them).

import { isFerryError } from '../errors.js';
import type { PeerExchangeMessage } from '../protocol/index.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { ANY_FOLDER, AddressBook, DISCOVERY_SOURCES, type DiscoverySource } from './address-book.js';
import { DhtDiscovery, type DhtState, type SharedDatagrams } from './dht.js';
import { LanDiscovery } from './lan.js';
import { globalIpv6, isLanAddress, localAddresses, unmapIpv4 } from './net-addresses.js';
import { formatPeerAddress, normalizePeerAddress, parsePeerAddress, type ConnectedPeer, type Dialler, type HostPort } from './peer-address.js';
import { PeerExchange } from './pex.js';
import { TrackerAnnouncer, type AnnouncedFolder } from './trackers.js';
import type { TrackerDatagrams, UdpTrackerOptions } from './tracker-udp.js';

/** A relayed socket (TURN allocation) whose address is announced to udp:// trackers through it. */
export interface RelayedSocket {
  name: string;
  socket: TrackerDatagrams & { address(): { address: string; port: number } };
}

export const PRUNE_INTERVAL_MS = 60_000;
/** A LAN device heard again is dialled at once when its next redial is further away than this. */
export const LAN_REDIAL_AFTER_MS = 5_000;
/** How long the device with the greater ID waits before dialling a device it learned of by ID. */
export const DEFERRED_DIAL_MS = 3_000;
/** The first tracker announce waits at most this long for the port-mapping attempt. */
export const MAPPING_WAIT_MS = 10_000;

/**
 * The port announced to trackers (BEP 3 `port`) and to the DHT (`announce_peer`): the mapped
 * external port when port mapping found one; else the shared UDP socket's STUN-learned external
 * port when known (a NAT that does not keep the port); else the listen port. The DHT, when it runs
 * on the shared socket and nothing is mapped, announces with `implied_port` (port 0 here): the
 * nodes take the source port of the announce itself, which is the NAT's mapping of that very
 * socket, fresher than any STUN answer.
 */
export function announcePorts(listenPort: number, mapped: HostPort | null, udpExternalPort: number | undefined, dhtOnSharedSocket: boolean): { tracker: number; dht: number } {
  const tracker = mapped?.port ?? udpExternalPort ?? listenPort;
  return { tracker, dht: !mapped && dhtOnSharedSocket ? 0 : tracker };
}

export interface DiscoveryOptions {
  deviceId: string;
  connections: Dialler;
  folders: () => readonly AnnouncedFolder[];
  onFoldersChanged: (listener: () => void) => () => void;
  /** The sync listener's bound address. */
  listen: HostPort;
  /** Where peers outside the LAN reach us, when port mapping found it. */
  external: () => HostPort | null;
  /** Every address this device is known to have outside (mapped, STUN, observed by peers). */
  externalAddresses?: () => readonly HostPort[];
  /**
   * The external port of the sync port's shared UDP socket as STUN learned it (undefined when not
   * known, or when UDP is off and STUN asks from a socket of its own). Announced in place of the
   * listen port when nothing is mapped: behind a NAT that does not keep the port, peers find us
   * over UDP at it (and TCP cannot come in without a mapping anyway).
   */
  udpExternalPort?: () => number | undefined;
  onExternalChanged: (listener: () => void) => () => void;
  /** DHT responders agree on this device's external address (BEP 42 `ip`). */
  onExternalAddress?: (at: HostPort) => void;
  /** Settles when the first port-mapping attempt has (trackers wait for it, up to mappingWaitMs). */
  mappingSettled?: () => Promise<unknown>;
  /** @default MAPPING_WAIT_MS */
  mappingWaitMs?: number;
  lan: false | { port?: number; intervalMs?: number; extraTargets?: Array<{ host: string; port: number }> };
  trackers: false | { urls: readonly string[]; udp?: UdpTrackerOptions };
  /** The sync port's shared UDP socket, when UDP is on: the DHT rides on it (see DhtDiscovery). */
  sharedUdp?: () => SharedDatagrams | null;
  dht:
    | false
    | {
        bootstrap: readonly string[];
        port?: number;
        loadState?: () => DhtState | undefined;
        saveState?: (state: DhtState) => Promise<void>;
        /** The IPv6 DHT's (BEP 32) node ID and routing table. */
        loadState6?: () => DhtState | undefined;
        saveState6?: (state: DhtState) => Promise<void>;
        /** Run the IPv6 DHT too (when the listen host accepts IPv6). @default true */
        ipv6?: boolean;
      };
  pex?: { pollMs?: number };
  /** Relayed sockets (checked when the external addresses change): each announced through itself. */
  relays?: () => readonly RelayedSocket[];
  /** Floor of the lonely re-announce (tests); see TrackerAnnouncer. */
  lonelyFloorMs?: number;
  /** Period of DHT lookups for folders with no connected peer; see DhtDiscovery. */
  lonelyLookupMs?: number;
  logger?: Logger;
}

export class Discovery extends Resource {
  readonly name = 'discovery';
  readonly book: AddressBook;
  private readonly log: Logger;
  private readonly lan: LanDiscovery | null = null;
  private readonly trackers: TrackerAnnouncer | null = null;
  /** One announcer per relayed socket: the tracker sees the relay's IP and is told its port. */
  private readonly relayTrackers = new Map<string, TrackerAnnouncer>();
  private readonly dht: DhtDiscovery | null = null;
  /** The IPv6 DHT (BEP 32), beside the IPv4 one where the listen host accepts IPv6. */
  private readonly dht6: DhtDiscovery | null = null;
  private readonly pex: PeerExchange;
  private readonly unsubscribe: Array<() => void> = [];
  private pruneTimer: NodeJS.Timeout | null = null;
  private knownFolders = new Set<string>();
  /** When each LAN address was last redialled early. */
  private readonly redialed = new Map<string, number>();
  private readonly deferred = new Set<NodeJS.Timeout>();

  constructor(private readonly options: DiscoveryOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    const { connections } = options;
    this.book = new AddressBook({
      onAdded: (address, source, deviceId) => {
        // Two devices that learn of each other at once (LAN, peer exchange) would dial each other
        // at once; the one with the greater ID waits a little, and usually finds itself dialled.
        if (deviceId !== undefined && deviceId < options.deviceId) this.dialLater(address, source);
        else this.dial(address, source);
      },
      onDropped: (address) => {
        const status = connections.addresses().find((a) => a.address === address);
        if (status && (DISCOVERY_SOURCES as readonly string[]).includes(status.source)) connections.removeAddress(address);
      },
    });
    const dhtOnShared = (): boolean => options.dht !== false && options.dht.port === undefined && (options.sharedUdp?.() ?? null) !== null;
    const announcePort = (): number => announcePorts(options.listen.port, options.external(), options.udpExternalPort?.(), false).tracker;
    const dhtAnnouncePort = (): number => announcePorts(options.listen.port, options.external(), options.udpExternalPort?.(), dhtOnShared()).dht;
    const hasPeers = (folderIdHex: string): boolean =>
      connections.peers().some((peer) => !peer.connection.closed && peer.handshake.folders.some((f) => f.keys.folderIdHex === folderIdHex));
    if (options.lan) {
      this.lan = new LanDiscovery({
        deviceId: options.deviceId,
        syncPort: () => options.listen.port,
        ...options.lan,
        onHeard: (address, deviceId) => this.learn(ANY_FOLDER, [address], 'lan', deviceId),
        logger: this.log.child('lan'),
      });
    }
    if (options.trackers && options.trackers.urls.length) {
      this.trackers = new TrackerAnnouncer({
        urls: options.trackers.urls,
        folders: options.folders,
        port: announcePort,
        onPeers: (folder, addresses) => this.learn(folder, addresses, 'tracker'),
        hasPeers,
        startAfter: this.mappingAttempt(),
        lonelyFloorMs: options.lonelyFloorMs,
        udp: options.trackers.udp,
        ipv6Address: () => globalIpv6(options.listen.host),
        logger: this.log.child('tracker'),
      });
    }
    if (options.dht) {
      const { host } = options.listen;
      // Both DHTs run (BEP 32): each asks for the other's nodes and hands them over while it joins.
      const dualStack = options.dht.ipv6 !== false && (host === '0.0.0.0' || host === '::' || host === '');
      // What both DHT nodes share; each adds its family, address, state and the other's node hand-over.
      const common = {
        port: options.dht.port ?? options.listen.port,
        shared: options.dht.port === undefined ? options.sharedUdp : undefined,
        bootstrap: options.dht.bootstrap,
        folders: options.folders,
        announcePort: dhtAnnouncePort,
        onPeers: (folder: string, addresses: string[]) => this.learn(folder, addresses, 'dht'),
        hasPeers,
        lonelyLookupMs: options.lonelyLookupMs,
        ...(options.onExternalAddress ? { onExternalAddress: options.onExternalAddress } : {}),
      };
      this.dht = new DhtDiscovery({
        ...common,
        host: host.includes(':') ? '0.0.0.0' : host,
        loadState: options.dht.loadState,
        saveState: options.dht.saveState,
        ...(dualStack
          ? { onOtherFamilyNodes: (nodes: Array<{ host: string; port: number }>) => this.dht6?.addNodes(nodes), otherFamilyNodes: () => this.dht6?.nodeCount ?? 0 }
          : {}),
        logger: this.log.child('dht'),
      });
      if (options.dht.ipv6 !== false && (dualStack || host.includes(':'))) {
        this.dht6 = new DhtDiscovery({
          ...common,
          family: 6,
          host: host.includes(':') ? host : '::',
          loadState: options.dht.loadState6,
          saveState: options.dht.saveState6,
          onOtherFamilyNodes: (nodes) => this.dht?.addNodes(nodes),
          logger: this.log.child('dht6'),
        });
      }
    }
    this.pex = new PeerExchange({
      deviceId: options.deviceId,
      peers: () => connections.peers(),
      listenPort: () => options.listen.port,
      onAddress: (folder, address, deviceId) => this.learn(folder, [address], 'pex', deviceId),
      lanAddresses: () => {
        const { host, port } = options.listen;
        const wildcard = host === '0.0.0.0' || host === '::' || host === '';
        return [...(wildcard ? localAddresses() : [host])].filter(isLanAddress).map((lan) => formatPeerAddress({ host: lan, port }));
      },
      pollMs: options.pex?.pollMs,
      logger: this.log.child('pex'),
    });
  }

  protected async _open(): Promise<void> {
    this.knownFolders = new Set(this.options.folders().map((f) => f.folderIdHex));
    for (const part of [this.lan, this.trackers, this.dht, this.dht6, this.pex]) {
      if (!part) continue;
      try {
        await part.open();
      } catch (err) {
        // One source failing (a port in use, no network) must not stop the others or the daemon.
        this.log.warn('a discovery source failed to start', { source: part.constructor.name, err: err as Error });
      }
    }
    this.unsubscribe.push(this.options.onFoldersChanged(() => this.foldersChanged()));
    this.unsubscribe.push(
      this.options.onExternalChanged(() => {
        this.dropOwnAddresses();
        this.syncRelays();
        this.trackers?.portChanged();
        this.dht?.sync();
        this.dht6?.sync();
      }),
    );
    this.syncRelays();
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
    this.log.info('discovery running', {
      lan: this.lan !== null,
      trackers: this.trackers !== null,
      dht: this.dht !== null,
      dhtPort: this.dht?.opened ? this.dht.port : undefined,
    });
  }

  protected async _close(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    for (const timer of this.deferred) clearTimeout(timer);
    await Promise.allSettled([this.pex, this.dht, this.dht6, this.trackers, this.lan, ...this.relayTrackers.values()].map((part) => part?.close()));
  }

  /** A validated PeerExchange from a connected peer. */
  onPeerExchange(peer: ConnectedPeer, message: PeerExchangeMessage): void {
    if (this.opened) this.pex.receive(peer, message);
  }

  report(): unknown {
    return {
      lan: this.lan ? this.lan.report() : { enabled: false },
      trackers: this.trackers ? this.trackers.report() : { enabled: false },
      ...(this.relayTrackers.size ? { relayTrackers: Object.fromEntries([...this.relayTrackers].map(([name, t]) => [name, t.report()])) } : {}),
      dht: this.dht ? this.dht.report() : { enabled: false },
      dht6: this.dht6 ? this.dht6.report() : { enabled: false },
      pex: this.pex.report(),
      addressBook: this.book.report(),
    };
  }

  private dial(address: string, source: DiscoverySource): void {
    if (this.closed) return;
    try {
      this.options.connections.addAddress(address, source);
    } catch (err) {
      if (!isFerryError(err, 'USAGE')) throw err;
      this.log.debug('not dialling an address', { address, reason: err.message });
    }
  }

  private dialLater(address: string, source: DiscoverySource): void {
    const timer = setTimeout(() => {
      this.deferred.delete(timer);
      this.dial(address, source);
    }, DEFERRED_DIAL_MS);
    timer.unref();
    this.deferred.add(timer);
  }

  /** Resolves when the port-mapping attempt settled, or after mappingWaitMs, whichever is first. */
  private mappingAttempt(): Promise<unknown> | undefined {
    const settled = this.options.mappingSettled?.();
    if (!settled) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.mappingWaitMs ?? MAPPING_WAIT_MS);
      timer.unref();
    });
    return Promise.race([settled.catch(() => undefined), bound]).finally(() => clearTimeout(timer));
  }

  /**
   * This device's own addresses, as whole HOST:PORT pairs (two devices behind one router share a
   * host, and one's external port may be the other's listening port): each local address at the
   * listening port, each external address as learned, and each external host at the announced
   * port (where a tracker or the DHT shows us when nothing is mapped).
   */
  ownAddresses(): Set<string> {
    const { listen } = this.options;
    const own = new Set<string>();
    const add = (host: string, port: number): void => {
      const text = normalizePeerAddress(formatPeerAddress({ host: unmapIpv4(host.replace(/%.*$/, '')), port }));
      if (text) own.add(text);
    };
    const wildcard = listen.host === '0.0.0.0' || listen.host === '::' || listen.host === '';
    for (const host of wildcard ? localAddresses() : [listen.host]) add(host, listen.port);
    const mapped = this.options.external();
    const announcePort = mapped?.port ?? listen.port;
    for (const external of [...(mapped ? [mapped] : []), ...(this.options.externalAddresses?.() ?? [])]) {
      add(external.host, external.port);
      add(external.host, announcePort);
    }
    // A relayed address only as it is: other devices (one on the TURN server's host, say) share its IP.
    for (const { socket } of this.options.relays?.() ?? []) {
      const relayed = socket.address();
      add(relayed.address, relayed.port);
    }
    return own;
  }

  /** Our own external address may have entered the book before we knew it was ours. */
  private dropOwnAddresses(): void {
    for (const address of this.ownAddresses()) {
      if (this.book.removeAddress(address)) this.log.debug('dropped our own address from the address book', { address });
    }
  }

  private learn(folder: string, addresses: string[], source: DiscoverySource, deviceId?: string): void {
    if (this.closed) return;
    let own: Set<string> | undefined;
    for (const address of addresses) {
      const parsed = parsePeerAddress(address);
      if (parsed && source !== 'lan') {
        own ??= this.ownAddresses();
        if (own.has(formatPeerAddress({ host: unmapIpv4(parsed.host), port: parsed.port }))) continue; // ourselves
      }
      if (!this.book.add(folder, address, source, deviceId)) {
        // Link-local IPv6 with a zone (fe80::…%eth0) is heard on the LAN but cannot be dialled yet.
        this.log.debug(address.includes('%') ? 'not dialling a zoned link-local address' : 'ignoring a malformed address', { address, source });
      }
      else if (source === 'lan') this.redialSoon(address);
    }
  }

  /**
   * A LAN device announced itself again while its address waits out a long redial backoff (say,
   * it shared no folder with us before and has just joined one): dial it now, at most once per
   * announcement interval.
   */
  private redialSoon(address: string): void {
    const nowMs = Date.now();
    const status = this.options.connections.addresses().find((a) => a.address === address);
    if (!status || status.connected || status.source !== 'lan' || status.nextDialAtMs === undefined) return;
    if (status.nextDialAtMs - nowMs < LAN_REDIAL_AFTER_MS || nowMs - (this.redialed.get(address) ?? 0) < LAN_REDIAL_AFTER_MS) return;
    if (this.redialed.size >= 1024) this.redialed.clear();
    this.redialed.set(address, nowMs);
    this.options.connections.removeAddress(address);
    this.options.connections.addAddress(address, 'lan');
  }

  private foldersChanged(): void {
    const now = new Set(this.options.folders().map((f) => f.folderIdHex));
    for (const hex of this.knownFolders) if (!now.has(hex)) this.book.removeFolder(hex);
    this.knownFolders = now;
    this.lan?.announce();
    this.trackers?.sync();
    for (const relayed of this.relayTrackers.values()) relayed.sync();
    this.dht?.sync();
    this.dht6?.sync();
  }

  /** Starts announcing through relayed sockets that appeared, stops for those gone. */
  private syncRelays(): void {
    const { trackers, relays } = this.options;
    if (!trackers || !relays || this.closed) return;
    const now = new Map(relays().map((relay) => [relay.name, relay]));
    for (const [name, announcer] of this.relayTrackers) {
      if (now.has(name)) continue;
      this.relayTrackers.delete(name);
      void announcer.close();
    }
    for (const [name, { socket }] of now) {
      if (this.relayTrackers.has(name)) continue;
      const announcer = new TrackerAnnouncer({
        urls: trackers.urls,
        folders: this.options.folders,
        port: () => socket.address().port,
        onPeers: (folder, addresses) => this.learn(folder, addresses, 'tracker'),
        hasPeers: (folderIdHex) => this.options.connections.peers().some((peer) => !peer.connection.closed && peer.handshake.folders.some((f) => f.keys.folderIdHex === folderIdHex)),
        lonelyFloorMs: this.options.lonelyFloorMs,
        udp: trackers.udp,
        datagrams: socket,
        logger: this.log.child('tracker-relayed'),
      });
      this.relayTrackers.set(name, announcer);
      announcer.open().catch((err: unknown) => this.log.warn('announcing through a relay failed to start', { relay: name, err: err as Error }));
    }
  }

  private prune(): void {
    const connected = new Set(this.options.connections.peers().map((peer) => peer.deviceId));
    for (const status of this.options.connections.addresses()) {
      if (status.deviceId) this.book.learnDevice(status.address, status.deviceId);
    }
    for (const deviceId of connected) this.book.touchDevice(deviceId);
    this.book.prune(Date.now(), (entry) => entry.deviceId !== undefined && connected.has(entry.deviceId));
    this.trackers?.lonely();
    for (const relayed of this.relayTrackers.values()) relayed.lonely();
  }
}
