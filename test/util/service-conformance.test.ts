// One start/stop contract for every long-lived service (util/resource.ts): open twice is one open,
// close twice is one close, close before open and close during open are clean, and nothing the
// service started (sockets, watchers, timers, threads) is left behind once close() resolves.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DhtDiscovery } from '../../src/discovery/dht.js';
import { LanDiscovery } from '../../src/discovery/lan.js';
import { UdpTrackerClient } from '../../src/discovery/tracker-udp.js';
import { TrackerAnnouncer } from '../../src/discovery/trackers.js';
import { IndexStore } from '../../src/index/store.js';
import { PortMapper } from '../../src/nat/port-mapper.js';
import { TurnClient } from '../../src/nat/turn.js';
import { HashPool } from '../../src/scan/hash-pool.js';
import { FolderWatcher } from '../../src/scan/watcher.js';
import { UdpSocket } from '../../src/transport/udp-socket.js';
import type { Resource } from '../../src/util/resource.js';
import { EventHub } from '../../src/web/events.js';
import type { StatusReport } from '../../src/web/daemon-api.js';
import { POLL_MS, WAIT_LIMIT_MS } from '../helpers/wait.js';

const DEVICE = 'A'.repeat(52);

/** Each service built with the least it needs; `dir` is a fresh directory the test removes. */
const SERVICES: Record<string, (dir: string) => Resource> = {
  UdpSocket: () => new UdpSocket({ host: '127.0.0.1', port: 0 }),
  HashPool: () => new HashPool({ workers: 1 }),
  IndexStore: (dir) => new IndexStore({ path: join(dir, 'index') }),
  FolderWatcher: (dir) => new FolderWatcher({ root: dir, onChange: () => undefined }),
  EventHub: () => new EventHub(() => ({}) as StatusReport),
  LanDiscovery: () => new LanDiscovery({ deviceId: DEVICE, syncPort: () => 1, port: 0, onHeard: () => undefined }),
  TrackerAnnouncer: () => new TrackerAnnouncer({ urls: ['udp://127.0.0.1:9/announce', 'http://127.0.0.1:9/announce'], folders: () => [], port: () => 1, onPeers: () => undefined }),
  UdpTrackerClient: () => new UdpTrackerClient('127.0.0.1', 9),
  DhtDiscovery: () => new DhtDiscovery({ host: '127.0.0.1', port: 0, bootstrap: [], folders: () => [], announcePort: () => 1, onPeers: () => {} }),
  PortMapper: () => new PortMapper({ clients: [], request: { internalPort: 1, protocol: 'TCP', description: 'ferry test' } } as ConstructorParameters<typeof PortMapper>[0]),
  TurnClient: () => new TurnClient({ server: { address: '127.0.0.1', port: 9 }, username: 'u', password: 'p', tries: 1, rtoMs: 50 }),
};

/** What keeps the event loop busy, as a multiset of resource kinds (sockets, watchers, timers, workers…). */
function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** Kinds of which more are active now than in `before`. */
function extra(before: Map<string, number>): string[] {
  const found: string[] = [];
  for (const [kind, count] of activeResources()) if (count > (before.get(kind) ?? 0)) found.push(`${kind} ×${count - (before.get(kind) ?? 0)}`);
  return found;
}

/**
 * What a closed service left behind: waits until the event loop holds no more than before (libuv
 * finishes closing a handle a turn after its close callback; lmdb-js keeps a read-transaction timer
 * for a moment), giving up after WAIT_LIMIT_MS with what is still there.
 */
async function leftBehind(before: Map<string, number>): Promise<string[]> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  await new Promise((resolve) => setImmediate(resolve));
  while (extra(before).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  return extra(before);
}

async function withDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-conformance-'));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** open() may fail for a service with nothing to reach (a TURN server on the discard port): the contract is about what close() leaves. */
const settle = (promise: Promise<void>): Promise<unknown> => promise.then(() => undefined, (err: unknown) => err);

for (const [name, make] of Object.entries(SERVICES)) {
  describe(`${name} start/stop`, () => {
    test('open twice is one open; close twice is one close; open after close is refused', () =>
      withDir(async (dir) => {
        const before = activeResources();
        const service = make(dir);
        const first = service.open();
        assert.equal(service.open(), first, 'the same promise');
        await settle(first);
        const closing = service.close();
        assert.equal(service.close(), closing, 'the same promise');
        await closing;
        assert.equal(service.closed, true);
        await assert.rejects(service.open(), /closed/);
        assert.deepEqual(await leftBehind(before), []);
      }));

    test('close before open', () =>
      withDir(async (dir) => {
        const before = activeResources();
        const service = make(dir);
        await service.close();
        await assert.rejects(service.open(), /closed/);
        assert.deepEqual(await leftBehind(before), []);
      }));

    test('close during open (a stop while starting) waits for the start, then releases everything', () =>
      withDir(async (dir) => {
        const before = activeResources();
        const service = make(dir);
        const opening = settle(service.open());
        await service.close();
        await opening;
        assert.equal(service.opened, false);
        assert.deepEqual(await leftBehind(before), []);
      }));
  });
}
