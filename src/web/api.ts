// The JSON API routes under /api, shared by the control socket (no login: its file mode is the guard) and the web listener.

import Koa from 'koa';
import Router from '@koa/router';
import { FerryError } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { AppPasswords } from './app-passwords.js';
import type { DaemonApi, FolderOptions } from './daemon-api.js';
import type { EventHub } from './events.js';
import { errorMiddleware, logAppErrors, optionalNumber, readJsonBody, sendJson, stringField } from './http.js';

const ARCHIVE_LIST_LIMIT = 1000;
const CONFLICT_LIST_LIMIT = 500;
const DEFAULT_LOG_LINES = 200;
const MAX_LOG_LINES = 500;

function queryWhole(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < 0) throw new FerryError('USAGE', `${name} must be a whole number ≥ 0`);
  return n;
}

/** An instant given as milliseconds since 1970 or as an ISO 8601 time. */
function parseInstant(value: unknown): number {
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? (/^\d+$/.test(value) ? Number(value) : Date.parse(value)) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 0) throw new FerryError('USAGE', 'at must be a time: ISO 8601 (2026-12-07T03:12:45.123Z) or milliseconds since 1970');
  return ms;
}

/** Every route the page and the CLI share. State-changing ones are POST, PUT or DELETE (the web app guards them). */
export function createApiRouter(daemon: DaemonApi, events: EventHub, appPasswords?: AppPasswords): Router {
  const router = new Router({ prefix: '/api' });

  router.get('/status', (ctx) => {
    sendJson(ctx, daemon.status());
  });
  router.get('/events', (ctx) => {
    events.attach(ctx);
  });

  // folders
  router.post('/folders', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    sendJson(ctx, await daemon.share(stringField(body, 'path')));
  });
  router.post('/folders/join', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    if (body.merge !== undefined && typeof body.merge !== 'boolean') throw new FerryError('USAGE', 'merge must be true or false');
    sendJson(ctx, await daemon.join(stringField(body, 'key'), stringField(body, 'path'), { merge: body.merge === true }));
  });
  // What a join would meet: files already in the directory (the page warns before a merge).
  router.post('/folders/join/check', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    sendJson(ctx, await daemon.joinCheck(stringField(body, 'path')));
  });
  router.get('/folders/:folder/keys', (ctx) => {
    sendJson(ctx, daemon.keys(ctx.params.folder!));
  });
  router.post('/folders/:folder/rescan', async (ctx) => {
    await daemon.rescan(ctx.params.folder!);
    sendJson(ctx, { ok: true });
  });
  router.post('/folders/:folder/options', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    const options: FolderOptions = {};
    if (body.portableNames !== undefined) {
      if (typeof body.portableNames !== 'boolean') throw new FerryError('USAGE', 'portableNames must be true or false');
      options.portableNames = body.portableNames;
    }
    if (body.archive !== undefined) options.archive = body.archive as FolderOptions['archive']; // checked by the folder manager
    sendJson(ctx, await daemon.setFolderOptions(ctx.params.folder!, options));
  });
  // selective sync: this device's excluded subtrees, and the folder's tree from the index
  router.get('/folders/:folder/selection', async (ctx) => {
    const dir = ctx.query.dir;
    if (dir !== undefined && typeof dir !== 'string') throw new FerryError('USAGE', 'dir must be one folder-relative path');
    sendJson(ctx, await daemon.selection(ctx.params.folder!, {
      ...(dir !== undefined ? { dir } : {}),
      limit: queryWhole(ctx.query.limit, 'limit', 500),
      offset: queryWhole(ctx.query.offset, 'offset', 0),
    }));
  });
  router.post('/folders/:folder/selection', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    const exclude = body.exclude === undefined ? undefined : stringField(body, 'exclude');
    const include = body.include === undefined ? undefined : stringField(body, 'include');
    if ((exclude === undefined) === (include === undefined)) throw new FerryError('USAGE', 'give exactly one of exclude or include');
    sendJson(ctx, await daemon.setSelection(ctx.params.folder!, exclude !== undefined ? { exclude } : { include: include! }));
  });
  router.post('/folders/:folder/pause', async (ctx) => {
    await daemon.pauseFolder(ctx.params.folder!);
    sendJson(ctx, { ok: true });
  });
  router.post('/folders/:folder/resume', async (ctx) => {
    await daemon.resumeFolder(ctx.params.folder!);
    sendJson(ctx, { ok: true });
  });
  router.post('/folders/:folder/revert', async (ctx) => {
    sendJson(ctx, { reverted: await daemon.revert(ctx.params.folder!) });
  });
  router.delete('/folders/:folder', async (ctx) => {
    await daemon.removeFolder(ctx.params.folder!);
    sendJson(ctx, { ok: true });
  });

  // grants (time-limited invites and their revocation)
  router.get('/folders/:folder/grants', (ctx) => {
    sendJson(ctx, daemon.grants(ctx.params.folder!));
  });
  router.post('/folders/:folder/grants', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    const level = stringField(body, 'level');
    if (level !== 'ro' && level !== 'rw') throw new FerryError('USAGE', 'level is "ro" or "rw"');
    const expiresInMs = optionalNumber(body, 'expiresInMs');
    if (expiresInMs === undefined || !Number.isSafeInteger(expiresInMs) || expiresInMs <= 0) {
      throw new FerryError('USAGE', 'expiresInMs must be a whole number of milliseconds > 0');
    }
    const device = body.device === undefined ? undefined : stringField(body, 'device');
    sendJson(ctx, await daemon.grant(ctx.params.folder!, { level, expiresInMs, ...(device ? { device } : {}) }));
  });
  router.post('/grants/:id/revoke', async (ctx) => {
    sendJson(ctx, await daemon.revokeGrant(ctx.params.id!));
  });

  // archive
  router.get('/folders/:folder/archive', async (ctx) => {
    const limit = queryWhole(ctx.query.limit, 'limit', ARCHIVE_LIST_LIMIT);
    const offset = queryWhole(ctx.query.offset, 'offset', 0);
    sendJson(ctx, await daemon.archive(ctx.params.folder!, Math.min(Math.max(limit, 1), ARCHIVE_LIST_LIMIT), offset));
  });
  router.post('/folders/:folder/archive/restore', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    // Bulk: `{ all: true }` or `{ prefix: "dir/sub" }` put back every missing file (newest archived version).
    if (body.all === true || body.prefix !== undefined) {
      const prefix = body.all === true ? '' : stringField(body, 'prefix');
      sendJson(ctx, await daemon.restoreArchivedAll(ctx.params.folder!, prefix));
      return;
    }
    sendJson(ctx, { restored: await daemon.restoreArchived(ctx.params.folder!, stringField(body, 'archivePath')) });
  });
  // conflicts
  router.get('/folders/:folder/conflicts', async (ctx) => {
    const limit = queryWhole(ctx.query.limit, 'limit', CONFLICT_LIST_LIMIT);
    const offset = queryWhole(ctx.query.offset, 'offset', 0);
    sendJson(ctx, await daemon.conflicts(ctx.params.folder!, Math.min(Math.max(limit, 1), CONFLICT_LIST_LIMIT), offset));
  });
  router.post('/folders/:folder/conflicts/resolve', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    const keep = stringField(body, 'keep');
    if (keep !== 'original' && keep !== 'copy' && keep !== 'both') throw new FerryError('USAGE', 'keep is "original", "copy" or "both"');
    const name = body.name === undefined || body.name === '' ? undefined : stringField(body, 'name');
    sendJson(ctx, await daemon.resolveConflict(ctx.params.folder!, stringField(body, 'path'), keep, name));
  });
  // held mass deletes
  router.post('/folders/:folder/deletions/apply', async (ctx) => {
    sendJson(ctx, { applied: await daemon.applyDeletions(ctx.params.folder!) });
  });
  router.post('/folders/:folder/deletions/restore', async (ctx) => {
    sendJson(ctx, { restored: await daemon.restoreDeletions(ctx.params.folder!) });
  });
  // a file's versions in the archive, and restoring one (an edit that syncs)
  router.get('/folders/:folder/versions', async (ctx) => {
    const path = ctx.query.path;
    if (typeof path !== 'string' || path === '') throw new FerryError('USAGE', 'path must name one file of the folder');
    sendJson(ctx, await daemon.versions(ctx.params.folder!, path));
  });
  router.post('/folders/:folder/versions/restore', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    sendJson(ctx, await daemon.restoreVersion(ctx.params.folder!, stringField(body, 'path'), parseInstant(body.at)));
  });
  router.get('/folders/:folder/archive/plan', async (ctx) => {
    sendJson(ctx, await daemon.archivePlan(ctx.params.folder!));
  });
  router.post('/folders/:folder/archive/purge', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    sendJson(ctx, { purged: await daemon.purgeArchive(ctx.params.folder!, optionalNumber(body, 'olderThanDays')) });
  });

  // peers
  router.get('/peers', (ctx) => {
    sendJson(ctx, { peers: daemon.peers(), known: daemon.status().knownPeers, added: daemon.addedPeers() });
  });
  // An added address (HOST:PORT, URL-encoded) or a device ID: it is no longer dialled.
  router.delete('/peers/:target', async (ctx) => {
    sendJson(ctx, await daemon.removePeer(ctx.params.target!));
  });
  router.post('/peers', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    const folder = body.folder === undefined ? undefined : stringField(body, 'folder');
    await daemon.addPeer(stringField(body, 'address'), folder);
    sendJson(ctx, { ok: true });
  });

  // app passwords (WebDAV clients' HTTP Basic credentials)
  const apps = (): AppPasswords => {
    if (!appPasswords) throw new FerryError('USAGE', 'app passwords are not available here');
    return appPasswords;
  };
  router.get('/app-passwords', (ctx) => {
    sendJson(ctx, { appPasswords: apps().list() });
  });
  router.post('/app-passwords', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    if (body.readOnly !== undefined && typeof body.readOnly !== 'boolean') throw new FerryError('USAGE', 'readOnly must be true or false');
    const folder = body.folder === undefined || body.folder === null || body.folder === '' ? undefined : stringField(body, 'folder');
    sendJson(ctx, await apps().add(stringField(body, 'name'), { ...(folder ? { folder } : {}), readOnly: body.readOnly === true }));
  });
  router.post('/app-passwords/:name/revoke', async (ctx) => {
    await apps().revoke(ctx.params.name!);
    sendJson(ctx, { ok: true, name: ctx.params.name });
  });

  // settings and log
  router.get('/settings', (ctx) => {
    sendJson(ctx, daemon.getSettings());
  });
  router.put('/settings', async (ctx) => {
    sendJson(ctx, await daemon.updateSettings(await readJsonBody(ctx.req)));
  });
  router.get('/log', (ctx) => {
    const asked = Number(ctx.query.lines ?? DEFAULT_LOG_LINES);
    if (!Number.isInteger(asked) || asked < 1) throw new FerryError('USAGE', 'lines must be a whole number ≥ 1');
    sendJson(ctx, { lines: daemon.logTail(Math.min(asked, MAX_LOG_LINES)) });
  });

  return router;
}

/** The control socket's app: the shared routes plus setting the admin password, all without login. */
export function createApiApp(
  daemon: DaemonApi,
  logger: Logger,
  events: EventHub,
  setPassword: (password: string) => Promise<void>,
  appPasswords?: AppPasswords,
): Koa {
  const app = new Koa();
  const router = createApiRouter(daemon, events, appPasswords);
  router.post('/admin/password', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    await setPassword(stringField(body, 'password'));
    sendJson(ctx, { ok: true });
  });
  router.get('/admin/setup-code', (ctx) => {
    const code = daemon.adminSetupCode();
    sendJson(ctx, code ? { setup: true, code } : { setup: false });
  });
  logAppErrors(app, logger);
  app.use(errorMiddleware(logger));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
