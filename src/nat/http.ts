// Bounded HTTP/1.1 requests to a router: plain http only, a deadline for the whole exchange, a cap on the body.

import http from 'node:http';
import { FerryError } from '../errors.js';

export interface HttpRequestOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Deadline for connect, request and the whole response. */
  timeoutMs: number;
  /** A longer body (announced or received) fails the request. */
  maxBodyBytes: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** This host's address on the connection (the address the router sees). */
  localAddress: string;
}

export function httpRequest(url: URL, options: HttpRequestOptions): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    if (url.protocol !== 'http:') {
      reject(new FerryError('PROTOCOL', `only http:// URLs are used (got ${url.protocol})`));
      return;
    }
    if (options.signal?.aborted) {
      reject(new FerryError('ABORTED', 'operation aborted'));
      return;
    }
    let settled = false;
    const finish = (err: Error | null, response?: HttpResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (err) {
        request.destroy();
        reject(err);
      } else {
        resolve(response!);
      }
    };
    const headers: Record<string, string> = { Connection: 'close', ...options.headers };
    if (options.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(options.body));
    const request = http.request(url, { method: options.method ?? 'GET', headers, agent: false, maxHeaderSize: 8192 });
    const timer = setTimeout(
      () => finish(new FerryError('TIMEOUT', `${options.method ?? 'GET'} ${url.href}: no complete answer in ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    const onAbort = (): void => finish(new FerryError('ABORTED', 'operation aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });

    request.on('error', (err) => finish(new FerryError('IO', `${url.href}: ${err.message}`, { cause: err })));
    request.on('response', (response) => {
      const announced = Number(response.headers['content-length']);
      if (announced > options.maxBodyBytes) {
        finish(new FerryError('PROTOCOL', `${url.href}: body of ${announced} bytes is over the ${options.maxBodyBytes}-byte limit`));
        return;
      }
      const localAddress = response.socket?.localAddress ?? '';
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > options.maxBodyBytes) {
          finish(new FerryError('PROTOCOL', `${url.href}: body over the ${options.maxBodyBytes}-byte limit`));
          return;
        }
        chunks.push(chunk);
      });
      response.on('error', (err) => finish(new FerryError('IO', `${url.href}: ${err.message}`, { cause: err })));
      response.on('end', () =>
        finish(null, {
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          localAddress,
        }),
      );
    });
    request.end(options.body);
  });
}
