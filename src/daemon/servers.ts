// HTTP listeners of the daemon: the owner-only control socket and the web address.

import { createServer, type Server, type RequestListener } from 'node:http';
import { chmod, rm } from 'node:fs/promises';
import { ioError } from '../errors.js';

export async function listenHttp(handler: RequestListener, target: { socketPath: string } | { host: string; port: number }): Promise<Server> {
  const server = createServer(handler);
  if ('socketPath' in target) await rm(target.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if ('socketPath' in target) server.listen(target.socketPath, done);
    else server.listen(target.port, target.host, done);
  }).catch((err: unknown) => {
    const where = 'socketPath' in target ? target.socketPath : `${target.host}:${target.port}`;
    throw ioError(`cannot listen on ${where}`, err);
  });
  // The control socket grants full control of the daemon: owner only.
  if ('socketPath' in target) await chmod(target.socketPath, 0o600);
  return server;
}

export async function closeHttp(server: Server | null, deadlineMs = 2000): Promise<void> {
  if (!server?.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), deadlineMs);
  await closed;
  clearTimeout(timer);
}
