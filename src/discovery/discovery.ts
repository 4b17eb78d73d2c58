// Discovery: LAN announcements, trackers, DHT and peer exchange feeding one address book per
// folder, whose new addresses the connection manager dials (and forgets when the book drops them).

import { isFerryError } from '../errors.js';
import type { PeerExchangeMessage } from '../protocol/index.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { ANY_FOLDER, AddressBook, DISCOVERY_SOURCES, type DiscoverySource } from './address-book.js';
import { DhtDiscovery, type DhtState } from './dht.js';
import { LanDiscovery } from './lan.js';
import { localAddresses } from './net-addresses.js';
import { type ConnectedPeer, type Dialler, type HostPort } from './peer-address.js';
import { PeerExchange } from './pex.js';
import { TrackerAnnouncer, type AnnouncedFolder } from './trackers.js';
import type { UdpTrackerOptions } from './tracker-udp.js';

export const PRUNE_INTERVAL_MS = 60_000;
/** A LAN device heard again is dialled at once when its next redial is further away than this. */
export const LAN_REDIAL_AFTER_MS = 5_000;
/** How long the device with the greater ID waits before dialling a device it learned of by ID. */
export const DEFERRED_DIAL_MS = 3_000;

export interface DiscoveryOptions {
  deviceId: string;
  connections: Dialler;
  folders: () => readonly AnnouncedFolder[];
  onFoldersChanged: (listener: () => void) => () => void;
  /** The sync listener's bound address. */
  listen: HostPort;
  /** Where peers outside the LAN reach us, when port mapping found it. */
  external: () => HostPort | null;
  onExternalChanged: (listener: () => void) => () => void;
  lan: false | { port?: number; intervalMs?: number; extraTargets?: Array<{ host: string; port: number }> };
  trackers: false | { urls: readonly string[]; udp?: UdpTrackerOptions };
  dht: false | { bootstrap: readonly string[]; port?: number; loadState?: () => DhtState | undefined; saveState?: (state: DhtState) => Promise<void> };
  pex?: { pollMs?: number };
  logger?: Logger;
}

export class Discovery extends Resource {
  readonly name = 'discovery';
  readonly book: AddressBook;
  private readonly log: Logger;
  private readonly lan: LanDiscovery | null = null;
  private readonly trackers: TrackerAnnouncer | null = null;
  private readonly dht: DhtDiscovery | null = null;
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
    const announcePort = (): number => options.external()?.port ?? options.listen.port;
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
        udp: options.trackers.udp,
        logger: this.log.child('tracker'),
      });
    }
    if (options.dht) {
      this.dht = new DhtDiscovery({
        host: options.listen.host.includes(':') ? '0.0.0.0' : options.listen.host,
        port: options.dht.port ?? options.listen.port,
        bootstrap: options.dht.bootstrap,
        folders: options.folders,
        announcePort,
        onPeers: (folder, addresses) => this.learn(folder, addresses, 'dht'),
        loadState: options.dht.loadState,
        saveState: options.dht.saveState,
        logger: this.log.child('dht'),
      });
    }
    this.pex = new PeerExchange({
      deviceId: options.deviceId,
      peers: () => connections.peers(),
      listenPort: () => options.listen.port,
      onAddress: (folder, address, deviceId) => this.learn(folder, [address], 'pex', deviceId),
      pollMs: options.pex?.pollMs,
      logger: this.log.child('pex'),
    });
  }

  protected async _open(): Promise<void> {
    this.knownFolders = new Set(this.options.folders().map((f) => f.folderIdHex));
    for (const part of [this.lan, this.trackers, this.dht, this.pex]) {
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
        this.trackers?.portChanged();
        this.dht?.sync();
      }),
    );
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
    await Promise.allSettled([this.pex, this.dht, this.trackers, this.lan].map((part) => part?.close()));
  }

  /** A validated PeerExchange from a connected peer. */
  onPeerExchange(peer: ConnectedPeer, message: PeerExchangeMessage): void {
    if (this.opened) this.pex.receive(peer, message);
  }

  report(): unknown {
    return {
      lan: this.lan ? this.lan.report() : { enabled: false },
      trackers: this.trackers ? this.trackers.report() : { enabled: false },
      dht: this.dht ? this.dht.report() : { enabled: false },
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

  private learn(folder: string, addresses: string[], source: DiscoverySource, deviceId?: string): void {
    if (this.closed) return;
    const own = new Set([this.options.listen.port, this.options.external()?.port]);
    let local: Set<string> | undefined;
    for (const address of addresses) {
      const port = Number(address.slice(address.lastIndexOf(':') + 1));
      if (source !== 'lan' && own.has(port)) {
        local ??= new Set([...localAddresses(), ...(this.options.external() ? [this.options.external()!.host] : [])]);
        if (local.has(address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, ''))) continue; // ourselves
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
    this.dht?.sync();
  }

  private prune(): void {
    const connected = new Set(this.options.connections.peers().map((peer) => peer.deviceId));
    for (const status of this.options.connections.addresses()) {
      if (status.deviceId) this.book.learnDevice(status.address, status.deviceId);
    }
    for (const deviceId of connected) this.book.touchDevice(deviceId);
    this.book.prune(Date.now(), (entry) => entry.deviceId !== undefined && connected.has(entry.deviceId));
  }
}
