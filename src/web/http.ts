// HTTP edge helpers shared by the control socket and the web listener: JSON bodies, fields, errors as statuses.

import type Koa from 'koa';
import { FerryError, type ErrorCode } from '../errors.js';
import type { Logger } from '../util/log.js';

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
  FOLDER_NOT_EMPTY: 409,
  CONFLICT_UNKNOWN: 404,
  PEER_UNKNOWN: 404,
  GRANT_UNKNOWN: 404,
  GRANT_EXPIRED: 400,
  GRANT_REVOKED: 400,
  GRANT_INVALID: 400,
  IO: 500,
  DISK_FULL: 507,
};

/** An answer decided at the HTTP edge (login, session, CSRF): its code is not a FerryError code. */
export class HttpRefusal extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export async function readJsonBody(req: NodeJS.ReadableStream): Promise<Record<string, unknown>> {
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

export function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value.length === 0) {
    throw new FerryError('USAGE', `missing field '${name}'`);
  }
  return value;
}

export function optionalNumber(body: Record<string, unknown>, name: string): number | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new FerryError('USAGE', `field '${name}' must be a number ≥ 0`);
  }
  return value;
}

/**
 * A JSON answer, serialised here rather than by Koa. Koa 3's body setter tests an object with `instanceof Response`,
 * and the first read of Node's global `Response` loads fetch's implementation (undici): 1.7 MiB of V8 heap, ~3.6 MiB
 * of anonymous and ~2.8 MiB of file-backed memory in every daemon that answered one API call (`ferry status`). A
 * string is taken before that test; the bytes and headers are Koa's own for an object (application/json; charset=utf-8).
 */
export function sendJson(ctx: Koa.Context, value: unknown): void {
  ctx.type = 'json';
  ctx.body = JSON.stringify(value);
}

/** Turns thrown errors into `{ error: { code, message } }` with a fitting status; never leaks internals. */
export function errorMiddleware(logger: Logger): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (err instanceof HttpRefusal) {
        ctx.status = err.status;
        ctx.set(err.headers);
        sendJson(ctx, { error: { code: err.code, message: err.message } });
      } else if (err instanceof FerryError) {
        ctx.status = HTTP_STATUS[err.code] ?? 500;
        sendJson(ctx, { error: err.toJSON() });
        if (ctx.status >= 500) logger.error('request failed', { path: ctx.path, err });
      } else {
        logger.error('request failed', { path: ctx.path, err: err as Error });
        ctx.status = 500;
        sendJson(ctx, { error: { code: 'INTERNAL', message: 'internal error' } });
      }
    }
  };
}

/** A browser or client that went away mid-answer (a closed tab, a dropped link): an ordinary event. */
const CLIENT_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_DESTROYED']);

/**
 * Errors Koa meets outside the middleware (mostly a response stream cut short) as one log line:
 * a client that went away at debug, anything else as a warning; never Koa's default stack dump.
 */
export function logAppErrors(app: Koa, logger: Logger): void {
  app.on('error', (err: unknown, ctx?: Koa.Context) => {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && CLIENT_GONE.has(code)) {
      logger.debug('client went away mid-answer', { path: ctx?.path, code });
      return;
    }
    logger.warn('response failed', { path: ctx?.path, err: err instanceof Error ? err : String(err) });
  });
}
