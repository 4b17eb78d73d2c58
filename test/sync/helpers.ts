// Test helpers for sync/: "devices" in one process (own index, scanner, FolderSync) joined by in-memory connections.

import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FolderKeys } from '../../src/keys/index.js';
import { IndexStore } from '../../src/index/store.js';
import type { FolderIndex } from '../../src/index/types.js';
import { PeerConnection } from '../../src/protocol/connection.js';
import { performHandshake, type HandshakeResult } from '../../src/protocol/handshake.js';
import { HashPool } from '../../src/scan/hash-pool.js';
import { Scanner } from '../../src/scan/scanner.js';
import { TEMP_FILE_PREFIX } from '../../src/scan/ignore.js';
import { WarmFiles } from '../../src/scan/warm-files.js';
import { Archive } from '../../src/sync/archive.js';
import { FolderSync, type FolderSyncLimits } from '../../src/sync/folder-sync.js';
import { folderSyncState, readOnlyScanIndex, type TransferRates } from '../../src/sync/index.js';
import { PeerSession } from '../../src/sync/peer-session.js';
import type { FileIo } from '../../src/util/file-io.js';
import { createLogger, silentLogger, type Logger } from '../../src/util/log.js';
import { duplexPair } from '../protocol/helpers.js';
import { WAIT_LIMIT_MS } from '../helpers/wait.js';

export { eventually } from '../protocol/helpers.js';

export type Cleanups = Array<() => Promise<void>>;

export async function runCleanups(cleanups: Cleanups): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
}

export async function tempDir(cleanups: Cleanups, prefix = 'ferry-sync-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The folder lock the daemon shares between scanner and puller. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work, work);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ component: 'test', level: 'debug', sink: { write: (line) => lines.push(line) } }), lines };
}

let pool: HashPool | undefined;

/** One hash pool for the whole test file. */
export async function sharedPool(cleanups: Cleanups): Promise<HashPool> {
  if (!pool) {
    pool = new HashPool({ workers: 2 });
    await pool.open();
    const opened = pool;
    cleanups.push(async () => {
      await opened.close();
      if (pool === opened) pool = undefined;
    });
  }
  return pool;
}

export interface DeviceOptions {
  name: string;
  keys: FolderKeys;
  /** Reuse a folder and an index home (a "restart"). */
  root?: string;
  home?: string;
  limits?: FolderSyncLimits;
  logger?: Logger;
  /** Upload/download limiters (upload is used by the device's PeerSessions in connect()). */
  rates?: TransferRates;
  /** The folder's "portable names" option. */
  portableNames?: boolean;
  /** Simulates a case-insensitive volume (false) instead of probing the real one. */
  caseSensitive?: boolean;
  /** The writing file operations of the puller and the archive (a FaultPlan's io, say). */
  io?: FileIo;
  /** The scanner's hash pool (a test's gated one, say). @default the file's shared pool */
  pool?: HashPool;
}

export interface Device {
  name: string;
  id: string;
  shortId: string;
  keys: FolderKeys;
  root: string;
  home: string;
  store: IndexStore;
  index: FolderIndex;
  sync: FolderSync;
  rates?: TransferRates;
  lock: Mutex;
  scans: number;
  /** Shared by the scanner and the FolderSync, as the daemon's Folder does. */
  warmFiles: WarmFiles;
  /** Scans (under the folder lock, as the daemon does) and tells the FolderSync. */
  scan(under?: string): Promise<void>;
  close(): Promise<void>;
}

/** A device ID of the right alphabet; its first 12 characters (the short ID) start with the name. */
export function deviceIdOf(name: string): string {
  return (name.toUpperCase() + 'X'.repeat(12)).slice(0, 12) + createHash('sha256').update(name).digest('hex').toUpperCase().slice(0, 40);
}

export async function makeDevice(cleanups: Cleanups, options: DeviceOptions): Promise<Device> {
  const root = options.root ?? (await tempDir(cleanups, `ferry-sync-${options.name}-`));
  const home = options.home ?? (await tempDir(cleanups, `ferry-home-${options.name}-`));
  await mkdir(root, { recursive: true });
  const logger = options.logger ?? silentLogger;
  const store = new IndexStore({ path: join(home, 'index') });
  await store.open();
  const index = store.folder(options.keys.folderIdHex);
  const id = deviceIdOf(options.name);
  const shortId = id.slice(0, 12);
  const lock = new Mutex();
  const warmFiles = new WarmFiles();
  const scanner = new Scanner({
    root,
    index: options.keys.access === 'ro' ? readOnlyScanIndex(index) : index,
    deviceShortId: shortId,
    pool: options.pool ?? (await sharedPool(cleanups)),
    warmFiles,
    // As the daemon's Folder: a large file's block hashes go to peers as they are known.
    onHashing: (event) => sync.hashing(event),
  });
  let sync!: FolderSync;
  const device: Device = {
    name: options.name,
    id,
    shortId,
    keys: options.keys,
    root,
    home,
    store,
    index,
    sync: undefined as never,
    rates: options.rates,
    lock,
    scans: 0,
    warmFiles,
    async scan(under = '') {
      device.scans++;
      await lock.run(() => scanner.scan({ under }));
      if (!sync.closed) sync.localChanged();
    },
    async close() {
      await sync.close();
      await lock.run(async () => undefined);
      await store.close();
    },
  };
  sync = new FolderSync({
    keys: options.keys,
    root,
    index,
    device: { id, shortId },
    logger,
    archive: new Archive(root, logger, undefined, options.io),
    archiveDays: 14,
    requestScan: (under) => device.scan(under),
    exclusive: (work) => lock.run(work),
    limits: { retryIntervalMs: 200, ...options.limits },
    rates: options.rates,
    warmFiles,
    portableNames: options.portableNames,
    caseSensitive: options.caseSensitive,
    io: options.io,
  });
  device.sync = sync;
  cleanups.push(() => device.close());
  await sync.open();
  return device;
}

export interface Link {
  a: PeerConnection;
  b: PeerConnection;
  sessionA: PeerSession;
  sessionB: PeerSession;
  /** Frames seen on each side: [direction, type] (a's observer). */
  framesA: Array<{ direction: 'in' | 'out'; type: number; body: Buffer }>;
  framesB: Array<{ direction: 'in' | 'out'; type: number; body: Buffer }>;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** Extra observer on b's side (e.g. to delay or measure). */
  observerB?: (direction: 'in' | 'out', type: number, body: Buffer) => void;
}

/** Connects two devices in memory: real PeerConnections, the real handshake, a PeerSession on each side. */
export async function connect(cleanups: Cleanups, x: Device, y: Device, options: ConnectOptions = {}): Promise<Link> {
  const [sx, sy] = duplexPair();
  const framesA: Link['framesA'] = [];
  const framesB: Link['framesB'] = [];
  const a = new PeerConnection(sx, { closeTimeoutMs: 200, observer: (direction, type, body) => framesA.push({ direction, type, body }) });
  const b = new PeerConnection(sy, {
    closeTimeoutMs: 200,
    observer: (direction, type, body) => {
      framesB.push({ direction, type, body });
      options.observerB?.(direction, type, body);
    },
  });
  await Promise.all([a.open(), b.open()]);
  const ekm = randomBytes(32);
  const shake = (conn: PeerConnection, me: Device, peer: Device, role: 'client' | 'server'): Promise<HandshakeResult> =>
    performHandshake(conn, {
      role,
      ekm,
      deviceId: me.id,
      deviceName: me.name,
      softwareVersion: 'test',
      peerDeviceId: peer.id,
      folders: [me.keys],
      folderState: (_keys, peerId) => folderSyncState(me.index, peerId),
      timeoutMs: 5000,
    });
  const [hx, hy] = await Promise.all([shake(a, x, y, 'client'), shake(b, y, x, 'server')]);
  const sessionA = new PeerSession(a, hx, (hex) => (hex === x.keys.folderIdHex && !x.sync.closed ? x.sync : undefined), silentLogger, { address: 'mem:y', upload: x.rates?.upload });
  const sessionB = new PeerSession(b, hy, (hex) => (hex === y.keys.folderIdHex && !y.sync.closed ? y.sync : undefined), silentLogger, { address: 'mem:x', upload: y.rates?.upload });
  await Promise.all([sessionA.start(), sessionB.start()]);
  const link: Link = {
    a,
    b,
    sessionA,
    sessionB,
    framesA,
    framesB,
    async close() {
      await Promise.all([sessionA.close(), sessionB.close()]);
    },
  };
  cleanups.push(() => link.close());
  return link;
}

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  /** sha256 of a file's content, or a symlink's target. */
  content?: string;
}

/** Everything under a folder (without `.ferry`), keyed by NFC relative path. */
export async function treeOf(root: string): Promise<Map<string, TreeEntry>> {
  const tree = new Map<string, TreeEntry>();
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(join(root, rel))).sort();
    } catch {
      return; // vanished while we looked (a sync is running): the caller polls again
    }
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      if (path === '.ferry' || name.startsWith(TEMP_FILE_PREFIX)) continue;
      const key = path.normalize('NFC');
      try {
        const stats = await lstat(join(root, path));
        if (stats.isDirectory()) {
          tree.set(key, { type: 'dir', mode: stats.mode & 0o777 });
          await walk(path);
        } else if (stats.isSymbolicLink()) {
          tree.set(key, { type: 'symlink', mode: 0, content: await readlink(join(root, path)) });
        } else {
          const content = createHash('sha256').update(await readFile(join(root, path))).digest('hex');
          tree.set(key, { type: 'file', mode: stats.mode & 0o777, content });
        }
      } catch {
        tree.set(key, { type: 'file', mode: -1, content: 'vanished while read' });
      }
    }
  };
  await walk('');
  return tree;
}

export function sameTree(x: Map<string, TreeEntry>, y: Map<string, TreeEntry>): boolean {
  return JSON.stringify([...x].sort()) === JSON.stringify([...y].sort());
}

/** Polls an async condition (a safety-net limit, not a timed assertion). */
export async function until(condition: () => Promise<boolean> | boolean, limitMs = WAIT_LIMIT_MS): Promise<void> {
  const start = Date.now();
  while (!(await condition())) {
    if (Date.now() - start > limitMs) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Waits until every device's tree is identical (and optionally a predicate holds), then until the
 * folder lock of each device is free once: the puller changes the disk and records the change in its
 * index under one hold of that lock, so a change seen on disk is in the index when this returns.
 */
export async function converged(devices: Device[], extra: () => Promise<boolean> | boolean = () => true, limitMs = WAIT_LIMIT_MS): Promise<void> {
  await until(async () => {
    const trees = await Promise.all(devices.map((d) => treeOf(d.root)));
    return trees.every((tree) => sameTree(tree, trees[0]!)) && (await extra());
  }, limitMs);
  await Promise.all(devices.map((d) => d.lock.run(async () => undefined)));
}

export function randomContent(bytes: number, seed = 1): Buffer {
  const out = Buffer.alloc(bytes);
  let block = createHash('sha256').update(String(seed)).digest();
  for (let offset = 0; offset < bytes; offset += block.length) {
    block.copy(out, offset);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function newFolder(): FolderKeys {
  return FolderKeys.generate();
}
