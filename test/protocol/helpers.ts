// Test helpers for protocol tests: in-memory duplex pairs, device identities in temp dirs, TLS pairs on loopback.

import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { loadOrCreateDeviceIdentity, type DeviceIdentity } from '../../src/keys/index.js';
import { clientTlsOptions, serverTlsOptions } from '../../src/protocol/tls.js';
import { WAIT_LIMIT_MS } from '../helpers/wait.js';

/** Two connected in-memory duplexes: what one writes, the other reads. */
export function duplexPair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        peer().push(chunk);
        callback();
      },
      final(callback) {
        peer().push(null);
        callback();
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}

export interface TempIdentities {
  identities: DeviceIdentity[];
  cleanup(): Promise<void>;
}

/** `count` device identities, each in its own temp dir. */
export async function makeIdentities(count: number): Promise<TempIdentities> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'ferry-protocol-'));
  const identities: DeviceIdentity[] = [];
  for (let i = 0; i < count; i++) {
    identities.push(await loadOrCreateDeviceIdentity(path.join(root, `device${i}`), { name: `device${i}` }));
  }
  return { identities, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export interface TlsPair {
  client: tls.TLSSocket;
  server: tls.TLSSocket;
  close(): Promise<void>;
}

/** A TLS 1.3 connection on loopback between two identities, both sides past the TLS handshake. */
export async function tlsPair(clientIdentity: DeviceIdentity, serverIdentity: DeviceIdentity): Promise<TlsPair> {
  const server = tls.createServer(serverTlsOptions(serverIdentity));
  const serverSide = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = tls.connect({ ...clientTlsOptions(clientIdentity), host: '127.0.0.1', port });
  client.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    client.once('secureConnect', resolve);
    client.once('error', reject);
  });
  const serverSocket = await serverSide;
  serverSocket.on('error', () => undefined);
  return {
    client,
    server: serverSocket,
    async close() {
      client.destroy();
      serverSocket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A plain TCP connection on loopback (real kernel buffers, for backpressure tests). */
export async function tcpPair(): Promise<{ a: net.Socket; b: net.Socket; close(): Promise<void> }> {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const a = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => a.once('connect', resolve));
  const b = await accepted;
  a.on('error', () => undefined);
  b.on('error', () => undefined);
  return {
    a,
    b,
    async close() {
      a.destroy();
      b.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Resolves when `predicate` holds, polling; rejects after `limitMs` (a safety net, not a timed assertion). */
export async function eventually(predicate: () => boolean, limitMs = WAIT_LIMIT_MS): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > limitMs) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
