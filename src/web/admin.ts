// The web admin as one resource: the control socket's app, the web listener's app, login state and the event hub.

import type Koa from 'koa';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { createApiApp, createApiRouter } from './api.js';
import { AppPasswords } from './app-passwords.js';
import { AuthGate, LoginLimiter } from './auth.js';
import type { DaemonApi } from './daemon-api.js';
import { EventHub } from './events.js';
import type { HostCheck } from './host-check.js';
import { StaticAssets } from './static.js';
import { createWebApp } from './web-app.js';

export interface WebAdminOptions {
  daemon: DaemonApi;
  logger: Logger;
  /** Where the built page lives (default: build/web beside the compiled code, or the executable's assets). */
  assetDir?: string;
  /** The Host header check; default: loopback and this machine's names and addresses only. */
  hostCheck?: HostCheck;
}

export class WebAdmin extends Resource {
  readonly auth: AuthGate;
  readonly events: EventHub;
  readonly appPasswords: AppPasswords;
  private controlApp: Koa | null = null;
  private webApp: Koa | null = null;

  constructor(private readonly options: WebAdminOptions) {
    super();
    const { daemon } = options;
    this.auth = new AuthGate({
      get: () => daemon.adminPasswordHash(),
      set: (hash) => daemon.setAdminPasswordHash(hash),
      sessionKey: () => daemon.webSessionKey(),
      revoked: () => daemon.revokedWebSessions(),
      setRevoked: async (revoked) => daemon.setRevokedWebSessions(revoked),
    });
    this.events = new EventHub(() => daemon.status());
    this.appPasswords = new AppPasswords({
      get: () => daemon.appPasswords(),
      set: (records) => daemon.setAppPasswords(records),
      folderId: (folder) => daemon.keys(folder).folderId,
    });
  }

  protected async _open(): Promise<void> {
    const { daemon, logger } = this.options;
    const assets = await StaticAssets.load(this.options.assetDir);
    if (assets.missing) logger.warn('the admin page is not built', { reason: assets.missing });
    await this.events.open();
    this.controlApp = createApiApp(daemon, logger.child('control'), this.events, async (password) => {
      await this.auth.setPassword(password);
      logger.info('admin password set through the control socket');
    }, this.appPasswords);
    this.webApp = createWebApp({
      auth: this.auth,
      limiter: new LoginLimiter(),
      api: createApiRouter(daemon, this.events, this.appPasswords),
      appPasswords: this.appPasswords,
      daemon,
      assets,
      logger: logger.child('web'),
      hostCheck: this.options.hostCheck,
      setupCode: () => daemon.adminSetupCode(),
    });
    if (this.auth.needsSetup()) {
      logger.warn('no admin password yet: open the web page on this machine, or elsewhere with the setup code, or run `ferry admin set-password`', {
        setupCode: daemon.adminSetupCode(),
      });
    }
  }

  protected async _close(): Promise<void> {
    await this.events.close();
  }

  /** The app for the owner-only control socket: no login. */
  get control(): Koa {
    if (!this.controlApp) throw new Error('WebAdmin is not open');
    return this.controlApp;
  }

  /** The app for the web address: page, login, API behind session and CSRF. */
  get web(): Koa {
    if (!this.webApp) throw new Error('WebAdmin is not open');
    return this.webApp;
  }
}
