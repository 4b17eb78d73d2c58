// The daemon: opens its services in order, closes them in reverse, and answers the API.

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { IndexStore } from '../index/store.js';
import { loadOrCreateDeviceIdentity, type DeviceIdentity } from '../keys/index.js';
import { HashPool } from '../scan/index.js';
import { createLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { FERRY_VERSION } from '../version.js';
import { createApiApp } from '../web/api.js';
import type { DaemonApi, FolderReport, KeysReport, StatusReport } from '../web/daemon-api.js';
import { createStatusApp } from '../web/status-page.js';
import { FolderManager } from './folders.js';
import { homeLayout, lockHome, prepareHome, unlockHome, type HomeLayout } from './home.js';
import { closeHttp, listenHttp } from './servers.js';
import { defaultSettings, formatHostPort, mergeSettings, parseHostPort, type Settings } from './settings.js';

export interface DaemonOptions {
  home: string;
  /** Flags given to `ferry run`: override stored settings for this run only. */
  overrides?: Partial<Settings>;
  logger?: Logger;
}

const SETTINGS_KEY = 'settings';

export class Daemon extends Resource implements DaemonApi {
  readonly layout: HomeLayout;
  private logger: Logger;
  private store: IndexStore | null = null;
  private pool: HashPool | null = null;
  private folders: FolderManager | null = null;
  private controlServer: Server | null = null;
  private webServer: Server | null = null;
  private identity: DeviceIdentity | null = null;
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
    this.folders = new FolderManager({
      store: this.store,
      pool: this.pool,
      deviceShortId: this.identity.shortId,
      home: this.layout.root,
      settings: this.settings,
      logger: this.logger.child('folder'),
    });
    await this.folders.open();

    const api = createApiApp(this, this.logger.child('api'));
    this.controlServer = await listenHttp(api.callback(), { socketPath: this.layout.controlSocket });
    const web = parseHostPort(this.settings.web, 'web address');
    this.webServer = await listenHttp(createStatusApp(this).callback(), web);
    this.logger.info('web page', { address: this.webAddress() });
  }

  protected async _close(): Promise<void> {
    await closeHttp(this.webServer);
    await closeHttp(this.controlServer);
    await this.folders?.close();
    await this.pool?.close();
    await this.store?.close();
    if (this.locked) await unlockHome(this.layout);
  }

  webAddress(): string | null {
    const address = this.webServer?.address() as AddressInfo | null | undefined;
    return address ? formatHostPort({ host: address.address, port: address.port }) : null;
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
      listen: null,
      folders: this.requireFolders().list().map((folder) => folder.report()),
    };
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
