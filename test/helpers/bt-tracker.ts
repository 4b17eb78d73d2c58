// The npm `bittorrent-tracker` Server (webtorrent's; a third-party tracker, HTTP BEP 3 with BEP 7
// `peers6`, and UDP BEP 15), run in the test process from where the network lab installs it
// (scripts/install-deps.sh runs the lab's install-deps.sh: /opt/netlab-npm, or NETLAB_NPM_DIR).
// Only its server module is loaded: the package's client side needs a native WebRTC module.

import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { underCi, type Skip } from './needs.js';

export const NPM_DIR = process.env.NETLAB_NPM_DIR ?? '/opt/netlab-npm';
const SERVER = join(NPM_DIR, 'node_modules/bittorrent-tracker/server.js');

/** false when the package is installed; else why not (and under CI, an error: no silent skip). */
export function needsBtTracker(): Skip {
  if (existsSync(SERVER)) return false;
  const reason = `needs the npm bittorrent-tracker in ${NPM_DIR} (sudo make system-deps installs it with the network lab)`;
  if (underCi()) throw new Error(`CI=${process.env.CI}, so this test may not skip: ${reason}`);
  return reason;
}

interface TrackerServer {
  http: { address(): AddressInfo | string | null; once(event: string, fn: () => void): void };
  udp4: { address(): AddressInfo } | null;
  udp6: { address(): AddressInfo; once(event: string, fn: () => void): void } | null;
  on(event: string, fn: (...args: unknown[]) => void): void;
  listen(port: number, hostname: { http: string; udp: string; udp6: string }, cb: () => void): void;
  close(cb: () => void): void;
}

/** A running bittorrent-tracker answering HTTP on `host` (its UDP sockets on loopback, any port); close() stops it. */
export async function startBtTracker(host: string): Promise<{ port: number; http: string; announces: string[]; close(): Promise<void> }> {
  const { default: Server } = (await import(pathToFileURL(SERVER).href)) as { default: new (options: object) => TrackerServer };
  const server = new Server({ http: true, udp: true, ws: false, stats: false, trustProxy: false });
  const announces: string[] = [];
  server.on('error', () => undefined);
  server.on('warning', () => undefined);
  server.on('start', (addr) => announces.push(String(addr)));
  server.on('update', (addr) => announces.push(String(addr)));
  await new Promise<void>((resolve) => server.listen(0, { http: host, udp: '127.0.0.1', udp6: '::1' }, resolve));
  const port = (server.http.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    port,
    http: `http://${shown}:${port}/announce`,
    announces,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
