// BitTorrent HTTP tracker client (BEP 3 announce, compact peers per BEP 23): one GET, bounded reply.

import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FerryError } from '../errors.js';
import { ANNOUNCED_LEFT, type AnnounceParams } from './tracker-params.js';
import { parseHttpAnnounce, type AnnounceResult } from './tracker-response.js';

export const HTTP_TIMEOUT_MS = 15_000;
/** A reply body larger than this is cut off and refused. */
export const MAX_HTTP_REPLY_BYTES = 256 * 1024;

export interface HttpAnnounceOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  maxBytes?: number;
}

/** Percent-encodes raw bytes as BEP 3 wants for info_hash and peer_id. */
export function escapeBytes(bytes: Buffer): string {
  let out = '';
  for (const byte of bytes) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9.\-_~]/.test(ch) ? ch : `%${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

export function announceUrl(base: string, params: AnnounceParams): string {
  const query = [
    `info_hash=${escapeBytes(params.infoHash)}`,
    `peer_id=${escapeBytes(params.peerId)}`,
    `port=${params.port}`,
    'uploaded=0',
    'downloaded=0',
    `left=${ANNOUNCED_LEFT}`,
    'compact=1',
    `numwant=${params.numWant}`,
    `key=${params.key.toString(16)}`,
    ...(params.ipv6 ? [`ipv6=${encodeURIComponent(params.ipv6)}`] : []),
    ...(params.event === 'none' ? [] : [`event=${params.event}`]),
  ].join('&');
  return `${base}${base.includes('?') ? '&' : '?'}${query}`;
}

export async function announceHttp(url: string, params: AnnounceParams, options: HttpAnnounceOptions = {}): Promise<AnnounceResult> {
  const target = new URL(announceUrl(url, params));
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? HTTP_TIMEOUT_MS), ...(options.signal ? [options.signal] : [])]);
  const maxBytes = options.maxBytes ?? MAX_HTTP_REPLY_BYTES;
  const body = await new Promise<Buffer>((resolve, reject) => {
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { method: 'GET', signal, headers: { 'user-agent': 'Ferry', 'accept-encoding': 'identity' } });
    req.on('error', (err) =>
      reject(
        signal.aborted && !options.signal?.aborted
          ? new FerryError('TIMEOUT', `tracker ${target.host} did not answer in time`)
          : new FerryError('IO', `tracker ${target.host}: ${err.message}`, { cause: err }),
      ),
    );
    req.on('response', (res: IncomingMessage) => {
      if ((res.statusCode ?? 0) !== 200) {
        res.resume();
        reject(new FerryError('PROTOCOL', `tracker ${target.host} answered HTTP ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          req.destroy();
          reject(new FerryError('PROTOCOL', `tracker ${target.host} sent more than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    req.end();
  });
  return parseHttpAnnounce(body);
}
