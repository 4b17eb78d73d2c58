// WebDAV test helpers: a daemon sharing a folder with an app password, and raw HTTP requests whose path is sent
// exactly as given (fetch and URL would normalise `..` and encodings away before the server saw them).

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { DaemonProcess, ferry } from './daemon.js';

export interface DavAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
}

export interface DavTarget {
  /** HOST:PORT of the web listener. */
  web: string;
  user: string;
  password: string;
}

/** One request with the path sent byte for byte as given. */
export function davRequest(
  target: DavTarget,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer | string; auth?: false | { user: string; password: string } } = {},
): Promise<DavAnswer> {
  const [host, port] = [target.web.slice(0, target.web.lastIndexOf(':')), Number(target.web.slice(target.web.lastIndexOf(':') + 1))];
  const credentials = options.auth === false ? undefined : options.auth ?? { user: target.user, password: target.password };
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (credentials) headers.Authorization = `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString('base64')}`;
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  if (body) headers['Content-Length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = request({ host, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const all = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: all, text: all.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `ferry app-passwords add NAME …--json` on the daemon: the Basic credentials. */
export async function addAppPassword(daemon: DaemonProcess, name: string, ...args: string[]): Promise<{ user: string; password: string }> {
  const result = await ferry(['app-passwords', 'add', name, ...args, '--json', '--home', daemon.home]);
  assert.equal(result.code, 0, result.stderr);
  const issued = JSON.parse(result.stdout) as { user: string; password: string };
  assert.equal(issued.user, name);
  return issued;
}

/** The web listener's HOST:PORT. */
export async function webOf(daemon: DaemonProcess): Promise<string> {
  return ((await daemon.status()) as unknown as { web: string }).web;
}
