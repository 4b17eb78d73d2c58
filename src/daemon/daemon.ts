// The daemon: opens its services in order, closes them in reverse, and answers the API.

import type { Server } from 'node:http';
import { explainListenError, FerryError } from '../errors.js';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { ConnectionManager, type EstablishedPeer } from '../connections/index.js';
import type { IndexStore } from '../index/store.js';
import { loadOrCreateDeviceIdentity, type DeviceIdentity } from '../keys/index.js';
import type { PeerConnectionOptions } from '../protocol/connection.js';
import { HashPool } from '../scan/index.js';
import { PeerSession, RateLimiter, folderSyncState, type FolderSyncLimits, type TransferRates } from '../sync/index.js';
import { createLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { FERRY_VERSION } from '../version.js';
import { WebAdmin } from '../web/admin.js';
import type {
  AddedPeerReport, ArchiveListing, BulkRestoreReport, DaemonApi, FolderOptions, SelectionReport, VersionReport, VersionsReport, ArchivePlanReport, FolderReport, GrantReport, IssuedGrantReport, KeysReport, LocalFolderHandle, PeerInfo, SettingsReport, StatusReport, ConflictKeep, ConflictListing, ConflictResolutionReport, JoinCheckReport,
} from '../web/daemon-api.js';
import { peerInfos, restoreTurnPasswords, settingsReport, validateSettingsPatch } from './admin.js';
import { FolderManager } from './folders.js';
import { countExisting } from './join-check.js';
import { resolve } from 'node:path';
import { GrantRegistry } from './grant-registry.js';
import { homeLayout, lockHome, prepareHome, unlockHome, type HomeLayout } from './home.js';
import { openHomeIndex, type HomeRecovery } from './home-index.js';
import { closeHttp, listenHttp } from './servers.js';
import { readPasswordFile, removeSetupCode, writeSetupCode } from './admin-setup.js';
import { hashPassword } from '../web/auth.js';
import type { AppPasswordRecord } from '../web/app-passwords.js';
import { HostCheck } from '../web/host-check.js';
import { rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Reachability, SERVICE_FACTORIES, SERVICE_SETTINGS, type Service, type ServiceContext } from './services.js';
import { unreachableReason } from './reachability.js';
import { localAddresses } from '../discovery/index.js';
import { defaultSettings, mergeSettings, type Settings } from './settings.js';
import { formatAddress, parseHostPort } from '../util/address.js';

export interface DaemonOptions {
  home: string;
  /** Flags given to `ferry run`: override stored settings for this run only. */
  overrides?: Partial<Settings>;
  logger?: Logger;
  /** Filled by `logger` (createLogger's keepRecent) with recent lines, for the web admin's log tail. */
  recentLog?: string[];
  /** Smaller limits and timeouts, for tests. */
  /** `ferry run --admin-password-file`: the first admin password, stored before the web port opens (then the file is removed). */
  adminPasswordFile?: string;
  tuning?: { sync?: FolderSyncLimits; connection?: PeerConnectionOptions; backoff?: { initialMs: number; maxMs: number } };
}

const SETTINGS_KEY = 'settings';
/** Addresses the user named with `ferry peers add`: [{ address, folder? }]. */
const KNOWN_PEERS_KEY = 'knownPeers';
/** The web admin's password, an argon2id PHC string. */
const ADMIN_PASSWORD_KEY = 'adminPasswordHash';
/** The key web session tokens are signed with (hex), and the sessions ended early. */
const WEB_SESSION_KEY = 'webSessionKey';
const WEB_SESSIONS_REVOKED_KEY = 'webSessionsRevoked';
/** App passwords (WebDAV): name, argon2id hash, folder, read-only. */
const APP_PASSWORDS_KEY = 'appPasswords';

interface KnownPeer {
  address: string;
  folder?: string;
}

export class Daemon extends Resource implements DaemonApi {
  readonly layout: HomeLayout;
  private logger: Logger;
  private store: IndexStore | null = null;
  /** Set when this start found the index unusable and rebuilt it (status: homeRecovered). */
  private homeRecovered: HomeRecovery | undefined;
  private pool: HashPool | null = null;
  private folders: FolderManager | null = null;
  private controlServer: Server | null = null;
  private webServer: Server | null = null;
  private web: WebAdmin | null = null;
  private readonly recentLog: string[];
  private identity: DeviceIdentity | null = null;
  private connections: ConnectionManager | null = null;
  private grantRegistry: GrantRegistry | null = null;
  private readonly sessions = new Map<EstablishedPeer, PeerSession>();
  private readonly services: Service[] = [];
  private readonly folderListeners = new Set<() => void>();
  readonly reachability = new Reachability();
  private locked = false;
  /** The first-start setup code while no admin password is set. */
  private setupCode: string | undefined;
  private sessionKey: Buffer | undefined;
  settings: Settings = defaultSettings(hostname());
  /** Upload/download limits (settings uploadKBps/downloadKBps), shared by every folder and peer. */
  /** What services are built from (kept: a settings change rebuilds them). */
  private serviceContext: ServiceContext | null = null;
  /** The last settings change being applied. */
  private settingsApplied: Promise<void> = Promise.resolve();
  private readonly rates: Required<TransferRates> = { upload: new RateLimiter(0), download: new RateLimiter(0) };

  constructor(private readonly options: DaemonOptions) {
    super();
    this.layout = homeLayout(options.home);
    this.recentLog = options.recentLog ?? [];
    this.logger = options.logger ?? createLogger({ component: 'ferry', keepRecent: this.recentLog });
  }

  protected async _open(): Promise<void> {
    await prepareHome(this.layout);
    await lockHome(this.layout);
    this.locked = true;

    // Checked before LMDB opens it; an unusable index is set aside and rebuilt from portable.json.
    const home = await openHomeIndex(this.layout, this.logger, {
      // Space is back: every folder rescans, so what failed to be indexed meanwhile is.
      onDiskFull: (full) => {
        if (!full) for (const folder of this.folders?.list() ?? []) void folder.requestScan('');
      },
    });
    this.store = home.store;
    this.homeRecovered = home.recovered;
    const stored = this.store.getSetting<Partial<Settings>>(SETTINGS_KEY) ?? {};
    this.settings = mergeSettings(mergeSettings(defaultSettings(hostname()), stored), this.options.overrides ?? {});
    this.rates.upload.setRate(this.settings.uploadKBps * 1024);
    this.rates.download.setRate(this.settings.downloadKBps * 1024);

    this.identity = await loadOrCreateDeviceIdentity(this.layout.deviceDir, {
      name: this.settings.deviceName,
      logger: this.logger.child('keys'),
    });
    this.logger.info('device', { id: this.identity.id, name: this.identity.name, home: this.layout.root });
    await home.mirror.save(); // the identity made on a first start goes into portable.json too

    this.pool = new HashPool();
    await this.pool.open();
    const grants = new GrantRegistry(this.store, this.logger.child('grants'));
    this.grantRegistry = grants;
    await grants.open();
    const folders = new FolderManager({
      store: this.store,
      pool: this.pool,
      device: { id: this.identity.id, shortId: this.identity.shortId },
      home: this.layout.root,
      settings: this.settings,
      logger: this.logger.child('folder'),
      syncLimits: this.options.tuning?.sync,
      rates: this.rates,
      grantBook: (keys) => grants.book(keys),
      deviceName: (shortId) => this.deviceNameOf(shortId),
      peerSource: (deviceId) => this.connections?.peers().find((p) => p.deviceId === deviceId)?.source,
      peerLink: (deviceId) => {
        const peer = this.connections?.peers().find((p) => p.deviceId === deviceId);
        if (!peer) return undefined;
        const rttMs = peer.rttMs();
        return { path: peer.path(), ...(rttMs !== undefined ? { rttMs } : {}) };
      },
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
      isGrantRevoked: (keys, grantIdHex) => grants.isRevoked(keys, grantIdHex),
      onPeer: (peer) => this.startSession(peer),
      onPeerClosed: (peer) => {
        this.grantRegistry?.peerEnded(peer);
        for (const service of this.services) service.onPeerClosed?.(peer);
        void this.sessions.get(peer)?.close();
      },
      logger: this.logger.child('conn'),
      connection: this.options.tuning?.connection,
      backoff: this.options.tuning?.backoff,
      tcp: this.settings.tcp,
      udp: this.settings.udp,
    });
    await this.connections.open().catch((err: unknown) => {
      throw explainListenError(err, '--listen', this.settings.listen);
    });
    for (const known of this.knownPeers()) this.connections.addAddress(known.address);
    this.logger.info('listening for peers', { address: formatAddress(this.connections.address()) });

    this.serviceContext = {
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
    await this.openServices();

    await this.prepareAdminPassword();
    const webHost = parseHostPort(this.settings.web, 'web address').host;
    const hostCheck = new HostCheck({ boundHost: () => webHost, extraHosts: () => this.settings.webHosts });
    this.web = new WebAdmin({ daemon: this, logger: this.logger.child('api'), hostCheck });
    await this.web.open();
    this.controlServer = await listenHttp(this.web.control.callback(), { socketPath: this.layout.controlSocket });
    const web = parseHostPort(this.settings.web, 'web address');
    this.webServer = await listenHttp(this.web.web.callback(), web).catch((err: unknown) => {
      throw explainListenError(err, '--web', this.settings.web);
    });
    this.logger.info('web page', { address: this.webAddress() });
  }

  protected async _close(): Promise<void> {
    await this.web?.close();
    await closeHttp(this.webServer);
    await closeHttp(this.controlServer);
    await this.settingsApplied.catch(() => undefined);
    await this.closeServices();
    await this.connections?.close();
    await Promise.allSettled([...this.sessions.values()].map((session) => session.close()));
    await this.folders?.close();
    await this.grantRegistry?.close();
    await this.pool?.close();
    await this.store?.close();
    if (this.locked) await unlockHome(this.layout);
  }

  /** Opens the services the settings ask for, in order (port mapping before the discovery that announces it). */
  private async openServices(tolerant = false): Promise<void> {
    for (const factory of SERVICE_FACTORIES) {
      if (this.closed) return;
      const service = factory(this.serviceContext!);
      if (!service) continue;
      try {
        await service.open();
      } catch (err) {
        // At start a service that cannot open stops the daemon; after a settings change the daemon runs on without it.
        if (!tolerant) throw err;
        this.logger.error('service did not start after a settings change', { service: service.name, err: err as Error });
        await service.close().catch(() => undefined);
        continue;
      }
      this.services.push(service);
    }
  }

  private async closeServices(): Promise<void> {
    for (const service of this.services.splice(0).reverse()) {
      // One that fails to close is logged, and the rest still close.
      await service.close().catch((err: unknown) => this.logger.warn('service did not close cleanly', { service: service.name, err: err as Error }));
    }
  }

  /** Before the web port opens: the session key, the password file's password, else (no password yet) a fresh setup code. */
  private async prepareAdminPassword(): Promise<void> {
    const stored = this.store!.getSetting<string>(WEB_SESSION_KEY);
    if (stored && /^[0-9a-f]{64}$/.test(stored)) this.sessionKey = Buffer.from(stored, 'hex');
    else {
      this.sessionKey = randomBytes(32);
      await this.store!.putSetting(WEB_SESSION_KEY, this.sessionKey.toString('hex'));
    }
    const file = this.options.adminPasswordFile;
    if (file) {
      if (this.adminPasswordHash()) {
        this.logger.info('admin password file ignored: a password is set already (change it with `ferry admin set-password`)', { file });
      } else {
        try {
          await this.setAdminPasswordHash(await hashPassword(await readPasswordFile(file)));
          this.logger.info('admin password set from the password file', { file });
        } catch (err) {
          // A bad file must not keep the daemon down: the setup code below still guards the page.
          if (!(err instanceof FerryError)) throw err;
          this.logger.error('admin password file not used', { file, err });
        }
      }
      // Read once: a plain-text password does not stay on disk.
      await rm(file, { force: true }).catch((err: unknown) => this.logger.warn('cannot remove the admin password file', { file, err: err as Error }));
    }
    if (this.adminPasswordHash()) {
      await removeSetupCode(this.layout.root);
      return;
    }
    this.setupCode = await writeSetupCode(this.layout.root);
  }

  adminSetupCode(): string | undefined {
    return this.setupCode;
  }

  webSessionKey(): Buffer | undefined {
    return this.sessionKey;
  }

  revokedWebSessions(): Record<string, number> {
    return this.store?.getSetting<Record<string, number>>(WEB_SESSIONS_REVOKED_KEY) ?? {};
  }

  async setRevokedWebSessions(revoked: Record<string, number>): Promise<void> {
    await this.store!.putSetting(WEB_SESSIONS_REVOKED_KEY, revoked);
  }

  appPasswords(): AppPasswordRecord[] {
    return this.store?.getSetting<AppPasswordRecord[]>(APP_PASSWORDS_KEY) ?? [];
  }

  async setAppPasswords(records: AppPasswordRecord[]): Promise<void> {
    await this.store!.putSetting(APP_PASSWORDS_KEY, records);
  }

  localFolders(): LocalFolderHandle[] {
    return (this.folders?.list() ?? []).map((shared) => ({
      id: shared.config.id,
      path: shared.config.path,
      access: shared.config.access,
      paused: shared.config.paused,
      requestScan: (under: string) => shared.requestScan(under),
    }));
  }

  webAddress(): string | null {
    const address = this.webServer?.address() as AddressInfo | null | undefined;
    return address ? formatAddress({ host: address.address, port: address.port }) : null;
  }

  /** Starts the session of a kept link; resolves once it is attached to its folders (in use). */
  private startSession(peer: EstablishedPeer): Promise<void> {
    const folders = this.requireFolders();
    const session = new PeerSession(peer.connection, peer.handshake, (hex) => folders.syncFor(hex), this.logger.child('peer'), {
      address: peer.address,
      upload: this.rates.upload,
      onPeerExchange: (message) => this.services.forEach((service) => service.onPeerExchange?.(peer, message)),
      onGrants: (message) => this.grantRegistry!.receive(peer, message),
      onIntroduce: (message) => this.services.forEach((service) => service.onIntroduce?.(peer, message)),
      onRelay: (message) => {
        const relay = this.services.find((service) => service.onRelayMessage);
        if (!relay) throw new FerryError('PROTOCOL', `unexpected ${message.type}: no relay service here`);
        relay.onRelayMessage!(peer, message);
      },
    });
    this.sessions.set(peer, session);
    this.noteObserved(peer);
    // Before the session starts: the peer's grant is learned and our Grants go out ahead of any index.
    this.grantRegistry?.peerStarted(peer);
    const started = session.start();
    started
      .then(() => session.finished)
      .catch((err: unknown) => {
        this.logger.warn('peer session failed', { device: peer.deviceId, err: err as Error });
        void peer.connection.close('INTERNAL', 'session failed');
      })
      .finally(() => this.sessions.delete(peer));
    return started;
  }

  /** What the peer says our address is, when it is not one of ours (then we are behind a NAT). */
  private noteObserved(peer: EstablishedPeer): void {
    const observed = peer.handshake.peer.observed;
    if (!observed) return;
    try {
      const at = parseHostPort(observed, 'observed address');
      if (!localAddresses().has(at.host.toLowerCase())) this.reachability.learn('observed', at, peer.deviceId);
    } catch {
      // Validated on the wire already; nothing to learn from one that does not parse here.
    }
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
      listen: this.connections ? formatAddress(this.connections.address()) : null,
      ...(this.connections ? { listening: this.connections.listening() } : {}),
      web: this.webAddress(),
      ...(this.store?.diskFull ? { homeDiskFull: this.store.diskFull.detail } : {}),
      ...(this.homeRecovered ? { homeRecovered: { ...this.homeRecovered, at: new Date(this.homeRecovered.atMs).toISOString() } } : {}),
      folders: this.requireFolders().list().map((folder) => folder.report()),
      services: Object.fromEntries(this.services.map((service) => [service.name, service.report()])),
      external: this.reachability.report(),
      knownPeers: (this.connections?.addresses() ?? []).map((a) => ({
        address: a.address,
        source: a.source,
        ...(a.deviceId ? { deviceId: a.deviceId } : {}),
        connected: a.connected,
        ...(a.lastError ? { lastError: a.lastError } : {}),
        ...(a.lastError && !a.connected ? { unreachable: unreachableReason(a.lastError) } : {}),
        ...(a.lastClose ? { lastClose: a.lastClose } : {}),
        ...(!a.connected && a.nextDialAtMs !== undefined ? { nextDialInMs: Math.max(0, a.nextDialAtMs - Date.now()) } : {}),
      })),
    };
  }

  async addPeer(address: string, folder?: string): Promise<void> {
    const { host, port } = parseHostPort(address, 'peer address');
    if (port === 0) throw new FerryError('USAGE', 'a peer address needs a port');
    const normal = formatAddress({ host, port });
    if (folder !== undefined) this.requireFolders().resolve(folder);
    const known = this.knownPeers().filter((k) => k.address !== normal);
    known.push({ address: normal, ...(folder ? { folder } : {}) });
    await this.store!.putSetting(KNOWN_PEERS_KEY, known);
    this.connections?.addAddress(normal);
  }

  addedPeers(): AddedPeerReport[] {
    const dialled = new Map((this.connections?.addresses() ?? []).map((a) => [a.address, a]));
    return this.knownPeers().map((known) => {
      const state = dialled.get(known.address);
      return {
        address: known.address,
        ...(known.folder ? { folder: known.folder } : {}),
        ...(state?.deviceId ? { deviceId: state.deviceId } : {}),
        connected: state?.connected ?? false,
        ...(state?.lastError ? { lastError: state.lastError } : {}),
      };
    });
  }

  /** Forgets added addresses (by address, or every one leading to a device): they are no longer dialled. */
  async removePeer(target: string): Promise<{ removed: string[] }> {
    const text = target.trim();
    let address: string | undefined;
    try {
      const { host, port } = parseHostPort(text, 'peer address');
      address = formatAddress({ host, port });
    } catch {
      // Not an address: a device ID, or the start of one.
    }
    const device = address === undefined && /^[A-Z2-7]{7,52}$/i.test(text) ? text.toUpperCase() : undefined;
    if (address === undefined && device === undefined) {
      throw new FerryError('USAGE', `give an added address (HOST:PORT) or a device ID (got '${text.slice(0, 100)}')`);
    }
    const added = this.addedPeers();
    const removed = added
      .filter((peer) => peer.address === address || (device !== undefined && peer.deviceId?.startsWith(device)))
      .map((peer) => peer.address);
    if (removed.length === 0) {
      const listed = added.map((peer) => peer.address).join(', ');
      throw new FerryError('PEER_UNKNOWN', `no added peer address is ${address ?? `of device ${device}`} (${listed ? `added: ${listed}` : 'none is added'}; 'ferry peers list' shows them)`);
    }
    await this.store!.putSetting(KNOWN_PEERS_KEY, this.knownPeers().filter((known) => !removed.includes(known.address)));
    // Not dialled again; a link already up stays until it closes (the device may also be found by discovery).
    for (const gone of removed) this.connections?.removeAddress(gone);
    this.logger.info('peer addresses removed', { addresses: removed.join(',') });
    return { removed };
  }

  revert(folder: string): Promise<number> {
    return this.requireFolders().revert(folder);
  }

  /** A device's name by its short ID: this device's, a connected peer's, or one remembered in the index. */
  private deviceNameOf(shortId: string): string | undefined {
    if (this.identity?.shortId === shortId) return this.settings.deviceName;
    const peer = this.connections?.peers().find((p) => p.deviceId.startsWith(shortId));
    if (peer?.deviceName) return peer.deviceName;
    return this.store?.listDevices().find((d) => d.id.startsWith(shortId) && d.name)?.name;
  }

  async grant(folder: string, options: { level: 'ro' | 'rw'; expiresInMs: number; device?: string }): Promise<IssuedGrantReport> {
    const { keys } = this.requireFolders().resolve(folder);
    const issued = await this.grantRegistry!.issue(keys, { level: options.level, expiresAtMs: Date.now() + options.expiresInMs, device: options.device });
    return { ...issued, expiresAt: new Date(issued.expiresAtMs).toISOString() };
  }

  revokeGrant(grantId: string): Promise<{ id: string; folderId: string; revokedAtMs: number }> {
    return this.grantRegistry!.revoke(this.requireFolders().list().map((folder) => folder.keys), grantId);
  }

  grants(folder: string): { folderId: string; grants: GrantReport[] } {
    const { keys } = this.requireFolders().resolve(folder);
    const grants = this.grantRegistry!.list(keys).map((g) => ({ ...g, expiresAt: new Date(g.expiresAtMs).toISOString() }));
    return { folderId: keys.folderIdHex, grants };
  }

  share(path: string): Promise<KeysReport> {
    return this.requireFolders().share(path);
  }

  join(key: string, path: string, options?: { merge?: boolean }): Promise<FolderReport> {
    return this.requireFolders().join(key, path, options);
  }

  joinCheck(path: string): Promise<JoinCheckReport> {
    return countExisting(resolve(path));
  }

  conflicts(folder: string, limit: number, offset: number): Promise<ConflictListing> {
    return this.requireFolders().conflicts(folder, limit, offset);
  }

  resolveConflict(folder: string, path: string, keep: ConflictKeep, name?: string): Promise<ConflictResolutionReport> {
    return this.requireFolders().resolveConflict(folder, path, keep, name);
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

  setFolderOptions(folder: string, options: FolderOptions): Promise<Required<FolderOptions>> {
    return this.requireFolders().setOptions(folder, options);
  }

  selection(folder: string, options?: { dir?: string; limit?: number; offset?: number }): Promise<SelectionReport> {
    return this.requireFolders().selection(folder, options);
  }

  setSelection(folder: string, change: { exclude?: string; include?: string }): Promise<SelectionReport> {
    return this.requireFolders().setSelection(folder, change);
  }

  versions(folder: string, path: string): Promise<VersionsReport> {
    return this.requireFolders().versions(folder, path);
  }

  restoreVersion(folder: string, path: string, atMs: number): Promise<{ path: string; restored: VersionReport }> {
    return this.requireFolders().restoreVersion(folder, path, atMs);
  }

  archivePlan(folder: string): Promise<ArchivePlanReport> {
    return this.requireFolders().archivePlan(folder);
  }

  pauseFolder(folder: string): Promise<void> {
    return this.requireFolders().setPaused(folder, true);
  }

  resumeFolder(folder: string): Promise<void> {
    return this.requireFolders().setPaused(folder, false);
  }

  archive(folder: string, limit: number, offset?: number): Promise<ArchiveListing> {
    return this.requireFolders().archiveList(folder, limit, offset);
  }

  restoreArchivedAll(folder: string, prefix: string): Promise<BulkRestoreReport> {
    return this.requireFolders().restoreArchivedAll(folder, prefix);
  }

  applyDeletions(folder: string): Promise<number> {
    return this.requireFolders().applyDeletions(folder);
  }

  restoreDeletions(folder: string): Promise<number> {
    return this.requireFolders().restoreDeletions(folder);
  }

  restoreArchived(folder: string, archivePath: string): Promise<string> {
    return this.requireFolders().restoreArchived(folder, archivePath);
  }

  purgeArchive(folder: string, olderThanDays?: number): Promise<number> {
    return this.requireFolders().purgeArchive(folder, olderThanDays ?? this.settings.archiveDays);
  }

  peers(): PeerInfo[] {
    const folders = this.requireFolders().list().map((folder) => folder.report());
    return peerInfos(this.connections?.peers() ?? [], folders);
  }

  private storedSettings(): Settings {
    return mergeSettings(defaultSettings(hostname()), this.store!.getSetting<Partial<Settings>>(SETTINGS_KEY) ?? {});
  }

  getSettings(): SettingsReport {
    const stored = this.storedSettings();
    const overrides = this.options.overrides ?? {};
    return settingsReport(stored, mergeSettings(stored, overrides), this.settings, overrides);
  }

  /**
   * Stores validated settings and applies them to the running daemon (`ferry run` flags still win):
   * rates, device name, archive days and the rest at once, discovery and port mapping by restarting
   * those services. Only the listen and web addresses wait for a restart.
   */
  async updateSettings(patch: Record<string, unknown>): Promise<SettingsReport> {
    const checked = validateSettingsPatch(patch);
    const before = this.store!.getSetting<Partial<Settings>>(SETTINGS_KEY) ?? {};
    if (checked.turnServers) checked.turnServers = restoreTurnPasswords(checked.turnServers, [...(before.turnServers ?? []), ...this.settings.turnServers]);
    const stored = { ...before, ...checked };
    const next = mergeSettings(mergeSettings(defaultSettings(hostname()), stored), this.options.overrides ?? {});
    await this.store!.putSetting(SETTINGS_KEY, stored);
    this.logger.info('settings changed', { names: Object.keys(checked).join(',') });
    // One change applies at a time, in the order they were saved.
    const applying = this.settingsApplied.then(() => this.applySettings(next));
    this.settingsApplied = applying.catch(() => undefined);
    await applying;
    return this.getSettings();
  }

  /** Applies `next` to the running daemon; what binds a socket (addresses, TCP/UDP) keeps its running value. */
  private async applySettings(next: Settings): Promise<void> {
    if (this.closed) return;
    const before = { ...this.settings };
    const live = { ...next, listen: before.listen, web: before.web, tcp: before.tcp, udp: before.udp, logLevel: before.logLevel };
    // In place: the folders, the services' context and the host check hold this object.
    Object.assign(this.settings, live);
    const changed = (Object.keys(live) as (keyof Settings)[]).filter((name) => JSON.stringify(before[name]) !== JSON.stringify(live[name]));
    if (changed.length === 0) return;
    if (changed.includes('uploadKBps')) this.rates.upload.setRate(live.uploadKBps * 1024);
    if (changed.includes('downloadKBps')) this.rates.download.setRate(live.downloadKBps * 1024);
    // Peers learn the new name in the next handshake's ClusterState (on their next connection).
    if (changed.includes('deviceName') && this.identity) this.identity.name = live.deviceName;
    if (changed.some((name) => SERVICE_SETTINGS.includes(name))) {
      await this.closeServices();
      await this.openServices(true);
    }
    this.logger.info('settings applied', { names: changed.join(',') });
  }

  logTail(lines: number): string[] {
    return this.recentLog.slice(-lines);
  }

  adminPasswordHash(): string | undefined {
    return this.store?.getSetting<string>(ADMIN_PASSWORD_KEY);
  }

  async setAdminPasswordHash(hash: string): Promise<void> {
    await this.store!.putSetting(ADMIN_PASSWORD_KEY, hash);
    if (this.setupCode !== undefined) {
      this.setupCode = undefined;
      await removeSetupCode(this.layout.root);
    }
  }
}
