// The JSON API as a Koa app built without listening: the daemon mounts it on the control socket.

import Koa from 'koa';
import Router from '@koa/router';
import { FerryError, type ErrorCode } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { DaemonApi } from './daemon-api.js';

const MAX_BODY_BYTES = 64 * 1024;

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  USAGE: 400,
  KEY_NOT_FERRY: 400,
  KEY_CHECKSUM: 400,
  KEY_UNKNOWN_TYPE: 400,
  KEY_INVALID: 400,
  KEY_ACCESS: 403,
  FOLDER_NOT_FOUND: 400,
  FOLDER_NOT_DIRECTORY: 400,
  FOLDER_OVERLAP: 409,
  FOLDER_EXISTS: 409,
  FOLDER_UNKNOWN: 404,
};

async function readJsonBody(req: NodeJS.ReadableStream): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new FerryError('USAGE', 'request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new FerryError('USAGE', 'request body must be a JSON object');
}

function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value.length === 0) {
    throw new FerryError('USAGE', `missing field '${name}'`);
  }
  return value;
}

export function createApiApp(daemon: DaemonApi, logger: Logger): Koa {
  const app = new Koa();
  const router = new Router({ prefix: '/api' });

  app.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof FerryError) {
        ctx.status = HTTP_STATUS[err.code] ?? 500;
        ctx.body = { error: err.toJSON() };
        if (ctx.status >= 500) logger.error('request failed', { path: ctx.path, err });
      } else {
        logger.error('request failed', { path: ctx.path, err: err as Error });
        ctx.status = 500;
        ctx.body = { error: { code: 'INTERNAL', message: 'internal error' } };
      }
    }
  });

  router.get('/status', (ctx) => {
    ctx.body = daemon.status();
  });
  router.post('/folders', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    ctx.body = await daemon.share(stringField(body, 'path'));
  });
  router.post('/folders/join', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    ctx.body = await daemon.join(stringField(body, 'key'), stringField(body, 'path'));
  });
  router.get('/folders/:folder/keys', (ctx) => {
    ctx.body = daemon.keys(ctx.params.folder!);
  });
  router.post('/folders/:folder/rescan', async (ctx) => {
    await daemon.rescan(ctx.params.folder!);
    ctx.body = { ok: true };
  });
  router.post('/folders/:folder/revert', async (ctx) => {
    ctx.body = { reverted: await daemon.revert(ctx.params.folder!) };
  });
  router.post('/peers', async (ctx) => {
    const body = await readJsonBody(ctx.req);
    const folder = body.folder === undefined ? undefined : stringField(body, 'folder');
    await daemon.addPeer(stringField(body, 'address'), folder);
    ctx.body = { ok: true };
  });
  router.delete('/folders/:folder', async (ctx) => {
    await daemon.removeFolder(ctx.params.folder!);
    ctx.body = { ok: true };
  });

  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
