// The web listener's app: security headers, the page's static files, login, and the shared API behind session + CSRF checks.

import Koa from 'koa';
import Router from '@koa/router';
import type { Logger } from '../util/log.js';
import type { AuthGate, LoginLimiter, Session } from './auth.js';
import { CheckGate, sameSecret } from './auth.js';
import { isLoopback } from '../util/address.js';
import { HostCheck } from './host-check.js';
import { errorMiddleware, HttpRefusal, logAppErrors, readJsonBody, sendJson, stringField } from './http.js';
import type { StaticAssets } from './static.js';
import { parseBasicAuth, type AppPasswordAccess, type AppPasswords } from './app-passwords.js';
import type { DaemonApi } from './daemon-api.js';
import type { DavServer } from './dav/server.js';
import { DAV_PREFIX } from './dav/prefix.js';

export const SESSION_COOKIE = 'ferry_session';
export const CSRF_HEADER = 'x-csrf-token';

/** Nothing but our own script, style and API; no framing, no inline code, no plugins. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The admin's session in the file browser: every folder, read-write where the device may write. */
const ADMIN_ACCESS: AppPasswordAccess = { name: 'admin (web page)', readOnly: false };
const FILES_PAGE_MAX = 1000;
/** Routes reachable without a session: the page asks who it is, sets the first password, logs in. */
const OPEN_ROUTES = new Set(['/api/auth/state', '/api/auth/setup', '/api/auth/login']);

export interface WebAppOptions {
  auth: AuthGate;
  limiter: LoginLimiter;
  /** The shared API routes (createApiRouter). */
  api: Router;
  assets: StaticAssets;
  logger: Logger;
  /** The Host header check (DNS rebinding); default: loopback and this machine's names and addresses. */
  hostCheck?: HostCheck;
  /** The one-time code that lets a browser not on this machine set the first password (undefined: none). */
  setupCode?: () => string | undefined;
  /** Password checks allowed at once over all addresses (one per address in any case). */
  maxConcurrentChecks?: number;
  /** App passwords and the folders: the WebDAV share at /dav/ (absent: no share). */
  appPasswords?: AppPasswords;
  daemon?: Pick<DaemonApi, 'localFolders'>;
}

/** Setup codes are compared without case, spaces or dashes (people type them). */
export function normalizeSetupCode(code: string): string {
  return code.toUpperCase().replace(/[\s-]/g, '');
}

function securityHeaders(): Koa.Middleware {
  return async (ctx, next) => {
    ctx.set({
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    });
    await next();
  };
}

/** A state-changing request from another origin is refused outright (browsers send Origin on them). */
function sameOrigin(ctx: Koa.Context): void {
  if (SAFE_METHODS.has(ctx.method)) return;
  const origin = ctx.get('origin');
  if (!origin) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    host = '';
  }
  if (host !== ctx.get('host')) throw new HttpRefusal(403, 'CROSS_ORIGIN', 'cross-origin request refused');
}

function requireJson(ctx: Koa.Context): void {
  // A JSON content type cannot be sent cross-site without a CORS preflight, which this server never grants.
  if (!ctx.is('application/json')) throw new HttpRefusal(415, 'JSON_REQUIRED', 'send the request as application/json');
}

export function createWebApp(options: WebAppOptions): Koa {
  const { auth, limiter, api, assets, logger } = options;
  const hostCheck = options.hostCheck ?? new HostCheck();
  const checkGate = new CheckGate(options.maxConcurrentChecks ?? 2);
  const app = new Koa();
  /** The TCP peer, never a forwarded header: the setup exemption and the limits are per real source. */
  const sourceOf = (ctx: Koa.Context): string => ctx.req.socket.remoteAddress ?? '?';
  const refuseIfLimited = (source: string): void => {
    const waitMs = limiter.retryAfterMs(source);
    if (waitMs > 0) {
      const seconds = Math.ceil(waitMs / 1000);
      throw new HttpRefusal(429, 'TOO_MANY_ATTEMPTS', `too many wrong passwords: try again in ${seconds} s`, {
        'Retry-After': String(seconds),
      });
    }
  };
  /**
   * Checks a password under the limits: one check in flight per address and a few in all, and the
   * attempt counted as a failure before argon2 runs (a success clears it), so parallel guesses gain nothing.
   */
  const checkPassword = async (ctx: Koa.Context, password: string): Promise<boolean> => {
    const source = sourceOf(ctx);
    refuseIfLimited(source);
    const entry = checkGate.enter(source);
    if ('busy' in entry) {
      throw new HttpRefusal(429, 'LOGIN_BUSY', entry.busy === 'address'
        ? 'another login attempt from this address is still being checked: try again in a moment'
        : 'too many login attempts at once: try again in a moment', { 'Retry-After': '1' });
    }
    limiter.failed(source);
    try {
      const ok = await auth.verify(password);
      if (ok) limiter.succeeded(source);
      return ok;
    } finally {
      entry.release();
    }
  };
  const open = new Router({ prefix: '/api/auth' });
  const daemon = options.daemon;
  // The WebDAV server (xmldom, zip-stream and its own modules) is loaded on the first request that needs it: most
  // daemons never serve one, and an idle daemon's heap holds every module it loaded.
  let davServer: Promise<DavServer> | undefined;
  const loadDav = (): Promise<DavServer> =>
    (davServer ??= import('./dav/server.js').then(({ DavServer }) => new DavServer({ folders: () => daemon!.localFolders(), logger: logger.child('dav') })));
  const dav = options.appPasswords && daemon ? loadDav : undefined;
  /** WebDAV clients: an app password by HTTP Basic, checked under the same limits as the login. */
  const davAccess = async (ctx: Koa.Context): Promise<AppPasswordAccess> => {
    const challenge = { 'WWW-Authenticate': 'Basic realm="Ferry WebDAV", charset="UTF-8"' };
    const credentials = parseBasicAuth(ctx.get('authorization') || undefined);
    if (!credentials) throw new HttpRefusal(401, 'APP_PASSWORD_REQUIRED', 'sign in with an app password (`ferry app-passwords add NAME`)', challenge);
    const apps = options.appPasswords!;
    let access = apps.knownGood(credentials.user, credentials.password);
    if (!access && apps.isChecking(credentials.user, credentials.password)) access = await apps.check(credentials.user, credentials.password);
    if (!access) {
      const source = sourceOf(ctx);
      refuseIfLimited(source);
      const entry = checkGate.enter(source);
      if ('busy' in entry) throw new HttpRefusal(429, 'LOGIN_BUSY', 'another password check from this address is running: try again in a moment', { 'Retry-After': '1' });
      limiter.failed(source);
      try {
        access = await apps.check(credentials.user, credentials.password);
        if (access) limiter.succeeded(source);
      } finally {
        entry.release();
      }
    }
    if (!access) {
      logger.warn('wrong app password', { from: sourceOf(ctx), user: credentials.user.slice(0, 64) });
      throw new HttpRefusal(401, 'WRONG_PASSWORD', 'wrong app password', challenge);
    }
    return access;
  };

  const startSession = (ctx: Koa.Context): Session => {
    const session = auth.createSession();
    ctx.cookies.set(SESSION_COOKIE, session.id, { httpOnly: true, sameSite: 'strict', path: '/', overwrite: true });
    return session;
  };
  const sessionOf = (ctx: Koa.Context): Session | undefined => auth.session(ctx.cookies.get(SESSION_COOKIE));

  open.get('/state', (ctx) => {
    const session = sessionOf(ctx);
    const setup = auth.needsSetup();
    sendJson(ctx, {
      setup,
      loggedIn: Boolean(session),
      ...(session ? { csrf: session.csrf } : {}),
      // Only a browser on this machine sets the first password without the setup code.
      ...(setup ? { codeRequired: !isLoopback(sourceOf(ctx)) } : {}),
    });
  });

  let settingUp = false;
  open.post('/setup', async (ctx) => {
    requireJson(ctx);
    const body = await readJsonBody(ctx.req);
    if (!auth.needsSetup() || settingUp) throw new HttpRefusal(409, 'ALREADY_SET', 'the admin password is already set: log in');
    const source = sourceOf(ctx);
    if (!isLoopback(source)) {
      refuseIfLimited(source);
      const expected = options.setupCode?.();
      const given = typeof body.code === 'string' ? normalizeSetupCode(body.code) : '';
      if (!expected || !given || !sameSecret(given, normalizeSetupCode(expected))) {
        limiter.failed(source);
        logger.warn('first-start setup refused: missing or wrong setup code', { from: source });
        throw new HttpRefusal(403, 'SETUP_CODE', given
          ? 'wrong setup code: run `ferry admin setup-code` on the machine running Ferry, or read it in its log'
          : 'this browser is not on the machine running Ferry: enter the setup code (`ferry admin setup-code` on that machine prints it; its log shows it too)');
      }
    }
    settingUp = true;
    try {
      await auth.setPassword(stringField(body, 'password'));
    } finally {
      settingUp = false;
    }
    logger.info('admin password set from the web page', { from: ctx.ip });
    sendJson(ctx, { csrf: startSession(ctx).csrf });
  });

  open.post('/login', async (ctx) => {
    requireJson(ctx);
    refuseIfLimited(sourceOf(ctx));
    if (auth.needsSetup()) throw new HttpRefusal(409, 'SETUP_NEEDED', 'no admin password is set yet');
    const body = await readJsonBody(ctx.req);
    const password = typeof body.password === 'string' ? body.password : '';
    if (!(await checkPassword(ctx, password))) {
      logger.warn('wrong admin password', { from: sourceOf(ctx) });
      throw new HttpRefusal(401, 'WRONG_PASSWORD', 'wrong password');
    }
    sendJson(ctx, { csrf: startSession(ctx).csrf });
  });

  // Behind the guard below: a session and the CSRF token.
  open.post('/logout', async (ctx) => {
    await auth.endSession((ctx.state.session as Session).id);
    ctx.cookies.set(SESSION_COOKIE, '', { httpOnly: true, sameSite: 'strict', path: '/', maxAge: 0, overwrite: true });
    sendJson(ctx, { ok: true });
  });
  open.post('/password', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    if (!(await checkPassword(ctx, typeof body.current === 'string' ? body.current : ''))) {
      throw new HttpRefusal(403, 'WRONG_PASSWORD', 'the current password is wrong');
    }
    await auth.setPassword(stringField(body, 'password'));
    logger.info('admin password changed from the web page', { from: ctx.ip });
    sendJson(ctx, { csrf: startSession(ctx).csrf });
  });

  logAppErrors(app, logger);
  app.use(securityHeaders());
  app.use(errorMiddleware(logger));
  app.use(async (ctx, next) => {
    // DNS rebinding: a page from another name that resolves here is not this admin page.
    if (!hostCheck.allows(ctx.get('host') || undefined)) {
      throw new HttpRefusal(421, 'MISDIRECTED', `this Ferry admin page does not answer to the name '${ctx.get('host').slice(0, 100)}': ` +
        'open it by this machine\'s address or name, or add the name to the webHosts setting (`ferry run --web-host NAME`)');
    }
    await next();
  });
  app.use(async (ctx, next) => {
    if (dav && (ctx.path === DAV_PREFIX || ctx.path.startsWith(`${DAV_PREFIX}/`))) {
      // Not for browsers' cross-site requests: a page elsewhere cannot send Basic credentials with custom methods without a preflight.
      sameOrigin(ctx);
      if (ctx.method === 'OPTIONS') {
        ctx.set('DAV', '1, 2');
        ctx.set('Allow', 'OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK');
        ctx.set('MS-Author-Via', 'DAV');
        ctx.body = '';
        return;
      }
      // The page's file browser: the admin session (its CSRF token on every change); other clients: an app password.
      const session = ctx.get('authorization') ? undefined : sessionOf(ctx);
      if (session) {
        if (!SAFE_METHODS.has(ctx.method) && !sameSecret(ctx.get(CSRF_HEADER), session.csrf)) {
          throw new HttpRefusal(403, 'CSRF', 'missing or wrong CSRF token: reload the page');
        }
        await (await dav()).handle(ctx, ADMIN_ACCESS);
        return;
      }
      const access = await davAccess(ctx); // before loading the server: a stranger's request loads nothing
      await (await dav()).handle(ctx, access);
      return;
    }
    if (!ctx.path.startsWith('/api/')) {
      if (!SAFE_METHODS.has(ctx.method)) throw new HttpRefusal(405, 'METHOD', 'method not allowed');
      assets.serve(ctx);
      return;
    }
    sameOrigin(ctx);
    if (!OPEN_ROUTES.has(ctx.path)) {
      const session = sessionOf(ctx);
      if (!session) throw new HttpRefusal(401, 'LOGIN_REQUIRED', 'log in first');
      if (!SAFE_METHODS.has(ctx.method) && !sameSecret(ctx.get(CSRF_HEADER), session.csrf)) {
        throw new HttpRefusal(403, 'CSRF', 'missing or wrong CSRF token: reload the page');
      }
      ctx.state.session = session;
    }
    await next();
  });
  if (dav) {
    // The file browser's directory pages (behind the session guard above, as every /api route).
    const files = new Router({ prefix: '/api/files' });
    files.get('/:folder', async (ctx) => {
      const path = typeof ctx.query.path === 'string' ? ctx.query.path.replace(/^\/+|\/+$/g, '') : '';
      const offset = Math.max(0, Math.floor(Number(ctx.query.offset ?? 0)) || 0);
      const limit = Math.min(FILES_PAGE_MAX, Math.max(1, Math.floor(Number(ctx.query.limit ?? 200)) || 200));
      sendJson(ctx, await (await dav()).list(ctx.params.folder!, path, offset, limit, ADMIN_ACCESS));
    });
    files.get('/:folder/zip', async (ctx) => {
      const path = typeof ctx.query.path === 'string' ? ctx.query.path.replace(/^\/+|\/+$/g, '') : '';
      const { filename, stream } = await (await dav()).zip(ctx.params.folder!, path, ADMIN_ACCESS);
      const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
      ctx.set('Content-Disposition', `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`);
      ctx.type = 'application/zip';
      ctx.body = stream;
    });
    app.use(files.routes());
  }
  app.use(open.routes());
  app.use(open.allowedMethods());
  app.use(api.routes());
  app.use(api.allowedMethods());
  return app;
}
