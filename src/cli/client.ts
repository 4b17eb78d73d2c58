// Talks to the daemon of a home through its owner-only control socket.

import { request } from 'node:http';
import { FerryError, type ErrorCode, ERROR_CODES } from '../errors.js';
import { homeLayout } from '../daemon/home.js';

const REQUEST_TIMEOUT_MS = 60_000;

export class ControlClient {
  private readonly socketPath: string;

  constructor(private readonly home: string) {
    this.socketPath = homeLayout(home).controlSocket;
  }

  async call<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          socketPath: this.socketPath,
          method,
          path: `/api${path}`,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new FerryError('TIMEOUT', 'the daemon did not answer in time')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(
            new FerryError(
              'DAEMON_NOT_RUNNING',
              `no Ferry daemon is running on home ${this.home} (start one with 'ferry run --home ${this.home}')`,
            ),
          );
        } else reject(err);
      });
      req.end(payload);
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new FerryError('CONTROL_PROTOCOL', `the daemon sent an unreadable answer (HTTP ${status})`);
    }
    if (status >= 400) {
      const error = (parsed as { error?: { code?: string; message?: string } }).error;
      const code = (ERROR_CODES as readonly string[]).includes(error?.code ?? '') ? (error!.code as ErrorCode) : 'INTERNAL';
      throw new FerryError(code, error?.message ?? `the daemon answered HTTP ${status}`);
    }
    return parsed as T;
  }
}
