// The daemon: opens its services in order, closes them in reverse, and answers the API.

import type { Server } from 'node:http';
import { FerryError } from '../errors.js';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { ConnectionManager, type EstablishedPeer } from '../connections/index.js';
import { IndexStore } from '../index/store.js';
import { loadOrCreateDeviceIdentity, type DeviceIdentity } from '../keys/index.js';
import type { PeerConnectionOptions } from '../protocol/connection.js';
import { HashPool } from '../scan/index.js';
import { PeerSession, folderSyncState, type FolderSyncLimits } from '../sync/index.js';
import { createLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { FERRY_VERSION } from '../version.js';
import { createApiApp } from '../web/api.js';
import type { DaemonApi, FolderReport, KeysReport, StatusReport } from '../web/daemon-api.js';
import { createStatusApp } from '../web/status-page.js';
import { FolderManager } from './folders.js';
import { homeLayout, lockHome, prepareHome, unlockHome, type HomeLayout } from './home.js';
import { closeHttp, listenHttp } from './servers.js';
import { Reachability, SERVICE_FACTORIES, type Service } from './services.js';
import { defaultSettings, formatHostPort, mergeSettings, parseHostPort, type Settings } from './settings.js';

export interface DaemonOptions {
  home: string;
  /** Flags given to `ferry run`: override stored settings for this run only. */
  overrides?: Partial<Settings>;
  logger?: Logger;
  /** Smaller limits and timeouts, for tests. */
  tuning?: { sync?: FolderSyncLimits; connection?: PeerConnectionOptions; backoff?: { initialMs: number; maxMs: number } };
}

const SETTINGS_KEY = 'settings';
/** Addresses the user named with `ferry peers add`: [{ address, folder? }]. */
const KNOWN_PEERS_KEY = 'knownPeers';

interface KnownPeer {
  address: string;
  folder?: string;
}

export class Daemon extends Resource implements DaemonApi {
  readonly layout: HomeLayout;
  private logger: Logger;
  private store: IndexStore | null = null;
  private pool: HashPool | null = null;
  private folders: FolderManager | null = null;
  private controlServer: Server | null = null;
  private webServer: Server | null = null;
  private identity: DeviceIdentity | null = null;
  private connections: ConnectionManager | null = null;
  private readonly sessions = new Map<EstablishedPeer, PeerSession>();
  private readonly services: Service[] = [];
  private readonly folderListeners = new Set<() => void>();
  readonly reachability = new Reachability();
  private locked = false;
  settings: Settings = defaultSettings(hostname());

  constructor(private readonly options: DaemonOptions) {
    super();
    this.layout = homeLayout(options.home);
    this.logger = options.logger ?? createLogger({ component: 'ferry' });
  }

  protected async _open(): Promise<void> {
    await prepareHome(this.layout);
    await lockHome(this.layout);
    this.locked = true;

    this.store = new IndexStore({ path: this.layout.indexDir, logger: this.logger.child('index') });
    await this.store.open();
    const stored = this.store.getSetting<Partial<Settings>>(SETTINGS_KEY) ?? {};
    this.settings = mergeSettings(mergeSettings(defaultSettings(hostname()), stored), this.options.overrides ?? {});

    this.identity = await loadOrCreateDeviceIdentity(this.layout.deviceDir, {
      name: this.settings.deviceName,
      logger: this.logger.child('keys'),
    });
    this.logger.info('device', { id: this.identity.id, name: this.identity.name, home: this.layout.root });

    this.pool = new HashPool();
    await this.pool.open();
    const folders = new FolderManager({
      store: this.store,
      pool: this.pool,
      device: { id: this.identity.id, shortId: this.identity.shortId },
      home: this.layout.root,
      settings: this.settings,
      logger: this.logger.child('folder'),
      syncLimits: this.options.tuning?.sync,
      peerSource: (deviceId) => this.connections?.peers().find((p) => p.deviceId === deviceId)?.source,
      onChange: () => {
        this.connections?.refresh();
        for (const listener of this.folderListeners) listener();
      },
    });
    this.folders = folders;
    await folders.open();

    const store = this.store;
    this.connections = new ConnectionManager({
      identity: this.identity,
      listen: parseHostPort(this.settings.listen, 'listen address'),
      softwareVersion: FERRY_VERSION,
      folders: () => folders.allKeys(),
      folderState: (keys, peerDeviceId) => folderSyncState(store.folder(keys.folderIdHex), peerDeviceId),
      onPeer: (peer) => this.startSession(peer),
      onPeerClosed: (peer) => void this.sessions.get(peer)?.close(),
      logger: this.logger.child('conn'),
      connection: this.options.tuning?.connection,
      backoff: this.options.tuning?.backoff,
    });
    await this.connections.open();
    for (const known of this.knownPeers()) this.connections.addAddress(known.address);
    this.logger.info('listening for peers', { address: formatHostPort(this.connections.address()) });

    const context = {
      settings: this.settings,
      identity: this.identity,
      store,
      connections: this.connections,
      folders: () => folders.allKeys(),
      onFoldersChanged: (listener: () => void) => {
        this.folderListeners.add(listener);
        return () => this.folderListeners.delete(listener);
      },
      listen: this.connections.address(),
      reachability: this.reachability,
      logger: this.logger,
    };
    for (const factory of SERVICE_FACTORIES) {
      const service = factory(context);
      if (!service) continue;
      await service.open();
      this.services.push(service);
    }

    const api = createApiApp(this, this.logger.child('api'));
    this.controlServer = await listenHttp(api.callback(), { socketPath: this.layout.controlSocket });
    const web = parseHostPort(this.settings.web, 'web address');
    this.webServer = await listenHttp(createStatusApp(this).callback(), web);
    this.logger.info('web page', { address: this.webAddress() });
  }

  protected async _close(): Promise<void> {
    await closeHttp(this.webServer);
    await closeHttp(this.controlServer);
    for (const service of [...this.services].reverse()) await service.close().catch(() => undefined);
    await this.connections?.close();
    await Promise.allSettled([...this.sessions.values()].map((session) => session.close()));
    await this.folders?.close();
    await this.pool?.close();
    await this.store?.close();
    if (this.locked) await unlockHome(this.layout);
  }

  webAddress(): string | null {
    const address = this.webServer?.address() as AddressInfo | null | undefined;
    return address ? formatHostPort({ host: address.address, port: address.port }) : null;
  }

  private startSession(peer: EstablishedPeer): void {
    const folders = this.requireFolders();
    const session = new PeerSession(peer.connection, peer.handshake, (hex) => folders.syncFor(hex), this.logger.child('peer'), {
      address: peer.address,
    });
    this.sessions.set(peer, session);
    void session.finished.finally(() => this.sessions.delete(peer));
    session.start().catch((err: unknown) => {
      this.logger.warn('peer session failed to start', { device: peer.deviceId, err: err as Error });
      void peer.connection.close('INTERNAL', 'session failed to start');
    });
  }

  private knownPeers(): KnownPeer[] {
    return this.store?.getSetting<KnownPeer[]>(KNOWN_PEERS_KEY) ?? [];
  }

  private requireFolders(): FolderManager {
    if (!this.folders) throw new Error('daemon is not open');
    return this.folders;
  }

  status(): StatusReport {
    const identity = this.identity!;
    return {
      device: { id: identity.id, name: identity.name },
      version: FERRY_VERSION,
      listen: this.connections ? formatHostPort(this.connections.address()) : null,
      folders: this.requireFolders().list().map((folder) => folder.report()),
      services: Object.fromEntries(this.services.map((service) => [service.name, service.report()])),
      knownPeers: (this.connections?.addresses() ?? []).map((a) => ({
        address: a.address,
        ...(a.deviceId ? { deviceId: a.deviceId } : {}),
        connected: a.connected,
        ...(a.lastError ? { lastError: a.lastError } : {}),
      })),
    };
  }

  async addPeer(address: string, folder?: string): Promise<void> {
    const { host, port } = parseHostPort(address, 'peer address');
    if (port === 0) throw new FerryError('USAGE', 'a peer address needs a port');
    const normal = formatHostPort({ host, port });
    if (folder !== undefined) this.requireFolders().resolve(folder);
    const known = this.knownPeers().filter((k) => k.address !== normal);
    known.push({ address: normal, ...(folder ? { folder } : {}) });
    await this.store!.putSetting(KNOWN_PEERS_KEY, known);
    this.connections?.addAddress(normal);
  }

  revert(folder: string): Promise<number> {
    return this.requireFolders().revert(folder);
  }

  share(path: string): Promise<KeysReport> {
    return this.requireFolders().share(path);
  }

  join(key: string, path: string): Promise<FolderReport> {
    return this.requireFolders().join(key, path);
  }

  keys(folder: string): KeysReport {
    return this.requireFolders().keys(folder);
  }

  removeFolder(folder: string): Promise<void> {
    return this.requireFolders().remove(folder);
  }

  rescan(folder: string): Promise<void> {
    return this.requireFolders().resolve(folder).requestScan('');
  }
}
