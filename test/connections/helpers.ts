// Test helpers for connections/: identities in temp dirs, managers on loopback with recorded events and logs.

import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ConnectionManager, type ConnectionManagerOptions, type EstablishedPeer } from '../../src/connections/index.js';
import { loadOrCreateDeviceIdentity, type DeviceIdentity, type FolderKeys } from '../../src/keys/index.js';
import { createLogger } from '../../src/util/log.js';
import { WAIT_LIMIT_MS } from '../helpers/wait.js';

export interface TempIdentities {
  identities: DeviceIdentity[];
  cleanup(): Promise<void>;
}

export async function makeIdentities(count: number): Promise<TempIdentities> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'ferry-connections-'));
  const identities: DeviceIdentity[] = [];
  for (let i = 0; i < count; i++) {
    identities.push(await loadOrCreateDeviceIdentity(path.join(root, `device${i}`), { name: `device${i}` }));
  }
  return { identities, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export const TEST_BACKOFF = { initialMs: 50, maxMs: 400 };

/** A manager on 127.0.0.1 with short timeouts; records onPeer/onPeerClosed and every log line. */
export class TestNode {
  readonly peersSeen: EstablishedPeer[] = [];
  readonly peersClosed: EstablishedPeer[] = [];
  readonly logs: string[] = [];
  readonly manager: ConnectionManager;
  private readonly logWaiters = new Set<{ match: (line: string) => boolean; resolve: (line: string) => void }>();

  constructor(
    readonly identity: DeviceIdentity,
    readonly folders: FolderKeys[],
    overrides: Partial<ConnectionManagerOptions> = {},
  ) {
    this.manager = new ConnectionManager({
      identity,
      listen: { host: '127.0.0.1', port: 0 },
      softwareVersion: 'test',
      folders: () => this.folders,
      onPeer: (peer) => this.peersSeen.push(peer),
      onPeerClosed: (peer) => this.peersClosed.push(peer),
      logger: createLogger({ component: identity.name, level: 'debug', sink: { write: (line) => this.record(line) } }),
      connection: { closeTimeoutMs: 300 },
      backoff: TEST_BACKOFF,
      handshakeTimeoutMs: 2_000,
      ...overrides,
    });
  }

  async open(): Promise<this> {
    await this.manager.open();
    return this;
  }

  get address(): string {
    const { host, port } = this.manager.address();
    return `${host}:${port}`;
  }

  /** The single kept peer, if exactly one and still open. */
  onlyPeer(): EstablishedPeer | undefined {
    const peers = this.manager.peers();
    return peers.length === 1 && !peers[0]!.connection.closed ? peers[0] : undefined;
  }

  logged(text: string): boolean {
    return this.logs.some((line) => line.includes(text));
  }

  /**
   * Resolves with the first log line (already written or still to come) that contains every one of TEXTS: a
   * client sees its socket close before the server has logged why it closed it.
   */
  logLine(...texts: string[]): Promise<string> {
    const match = (line: string): boolean => texts.every((text) => line.includes(text));
    const found = this.logs.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.logWaiters.delete(waiter);
        reject(new Error(`no log line with ${JSON.stringify(texts)} within ${WAIT_LIMIT_MS} ms:\n${this.logs.join('\n')}`));
      }, WAIT_LIMIT_MS);
      this.logWaiters.add(waiter);
    });
  }

  private record(line: string): void {
    this.logs.push(line);
    for (const waiter of this.logWaiters) {
      if (!waiter.match(line)) continue;
      this.logWaiters.delete(waiter);
      waiter.resolve(line);
    }
  }
}

/** Resolves when `predicate` holds, polling; rejects after `limitMs` (a safety net, not a timed assertion). */
export async function eventually(predicate: () => boolean, what: string, limitMs = WAIT_LIMIT_MS): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > limitMs) throw new Error(`condition not reached: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Two peers hold the same connection when each one's local end is the other's remote end. */
export function sameConnection(a: EstablishedPeer, b: EstablishedPeer): boolean {
  return a.localAddress === b.address && b.localAddress === a.address;
}
