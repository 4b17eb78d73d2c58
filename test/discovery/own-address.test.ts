// Discovery against a fake HTTP tracker on loopback: the "is this me?" check compares whole
// host:port pairs, our own external address leaves the book, the first announce waits for the
// port mapping, and a folder without a connected peer is announced again at `min interval`.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, describe, test } from 'node:test';
import bencode from 'bencode';
import { Discovery, announcePorts, type DiscoveryOptions } from '../../src/discovery/discovery.js';
import type { ConnectedPeer, Dialler, HostPort } from '../../src/discovery/peer-address.js';
import { waitFor } from '../helpers/daemon.js';

const FOLDER_HEX = '0123456789abcdef0123456789abcdef01234567';
const FOLDER = { folderId: Buffer.from(FOLDER_HEX, 'hex'), folderIdHex: FOLDER_HEX };
const EXTERNAL = '203.0.113.7';
const LISTEN_PORT = 22100;

const compact = (...peers: Array<[string, number]>): Buffer =>
  Buffer.concat(peers.map(([host, port]) => Buffer.from([...host.split('.').map(Number), port >> 8, port & 0xff])));

class FakeDialler implements Dialler {
  readonly added: string[] = [];
  readonly removed: string[] = [];
  connected: ConnectedPeer[] = [];
  addAddress(address: string): void {
    this.added.push(address);
  }
  removeAddress(address: string): void {
    this.removed.push(address);
  }
  addresses(): ReturnType<Dialler['addresses']> {
    return this.added.filter((a) => !this.removed.includes(a)).map((address) => ({ address, source: 'tracker' }));
  }
  peers(): ConnectedPeer[] {
    return this.connected;
  }
}

describe('discovery and its own addresses', () => {
  let server: Server;
  let url = '';
  let reply: () => Record<string, unknown> = () => ({ interval: 1800, peers: Buffer.alloc(0) });
  const announces: URLSearchParams[] = [];
  const open: Discovery[] = [];

  before(async () => {
    server = createServer((req, res) => {
      announces.push(new URL(req.url!, 'http://x').searchParams);
      res.end(Buffer.from(bencode.encode(reply())));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/announce`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
    announces.length = 0;
  });

  function start(dialler: FakeDialler, overrides: Partial<DiscoveryOptions> & { external?: () => HostPort | null } = {}): { discovery: Discovery; changed: () => void } {
    let listener: (() => void) | null = null;
    const discovery = new Discovery({
      deviceId: 'D'.repeat(52),
      connections: dialler,
      folders: () => [FOLDER],
      onFoldersChanged: () => () => undefined,
      listen: { host: '0.0.0.0', port: LISTEN_PORT },
      external: () => null,
      onExternalChanged: (l) => {
        listener = l;
        return () => (listener = null);
      },
      lan: false,
      dht: false,
      trackers: { urls: [url] },
      ...overrides,
    });
    open.push(discovery);
    return { discovery, changed: () => listener?.() };
  }

  test("a peer whose external port is our listening port is not mistaken for us; our own mapped address is", async () => {
    // Two devices behind one UPnP router: A was mapped at EXTERNAL:22100, we (B) listen on 22100 and are mapped at EXTERNAL:22101.
    reply = () => ({ interval: 1800, peers: compact([EXTERNAL, LISTEN_PORT], [EXTERNAL, 22101]) });
    const dialler = new FakeDialler();
    const { discovery } = start(dialler, { external: () => ({ host: EXTERNAL, port: 22101 }) });
    await discovery.open();
    await waitFor(async () => dialler.added.length > 0, 'a dial');
    assert.deepEqual(dialler.added, [`${EXTERNAL}:${LISTEN_PORT}`]);
    assert.deepEqual(discovery.book.entries(FOLDER_HEX).map((e) => e.address), [`${EXTERNAL}:${LISTEN_PORT}`]);
  });

  test('our external address (learned after the tracker named it) leaves the address book, and is not dialled', async () => {
    reply = () => ({ interval: 1800, peers: compact([EXTERNAL, LISTEN_PORT], ['198.51.100.9', 4000]) });
    const dialler = new FakeDialler();
    let external: HostPort[] = [];
    const { discovery, changed } = start(dialler, { externalAddresses: () => external });
    await discovery.open();
    await waitFor(async () => dialler.added.length === 2, 'two dials');
    // STUN (or a peer) then says we are EXTERNAL; with no mapping we are announced at our listening port there.
    external = [{ host: EXTERNAL, port: 51000 }];
    changed();
    assert.deepEqual(dialler.removed, [`${EXTERNAL}:${LISTEN_PORT}`]);
    assert.deepEqual(discovery.book.entries(FOLDER_HEX).map((e) => e.address), ['198.51.100.9:4000']);
    assert.deepEqual(discovery.ownAddresses().has(`${EXTERNAL}:51000`), true);
  });

  test('our relayed (TURN) address is ours at its own port only: a device at the relay IP on another port is dialled', async () => {
    const RELAY = '198.51.100.20';
    reply = () => ({ interval: 1800, peers: compact([RELAY, 49200], [RELAY, LISTEN_PORT]) });
    const dialler = new FakeDialler();
    const relayed = { address: RELAY, port: 49200 };
    const socket = { address: () => relayed, send: () => undefined, handle: () => () => undefined };
    const { discovery } = start(dialler, { relays: () => [{ name: 'turn', socket }] });
    await discovery.open();
    await waitFor(async () => dialler.added.length > 0, 'a dial');
    assert.deepEqual(dialler.added, [`${RELAY}:${LISTEN_PORT}`], 'a Ferry device on the TURN server host is a peer; our allocation is not');
    assert.ok(discovery.ownAddresses().has(`${RELAY}:49200`));
  });

  test('the first announce waits for the port-mapping attempt and carries the mapped port', async () => {
    reply = () => ({ interval: 1800, peers: Buffer.alloc(0) });
    let mapped: HostPort | null = null;
    let settle!: () => void;
    const settled = new Promise<void>((r) => (settle = r));
    const { discovery } = start(new FakeDialler(), { external: () => mapped, mappingSettled: () => settled });
    await discovery.open();
    // The router answers a little later (a real one takes a second or two over SSDP and SOAP):
    // meanwhile two requests of our own go to the tracker and back, and no announce comes before them.
    for (let i = 0; i < 2; i++) await (await fetch(`${url}?probe=${i}`)).arrayBuffer();
    assert.deepEqual(announces.map((a) => a.get('probe')), ['0', '1']);
    announces.length = 0;
    mapped = { host: EXTERNAL, port: 40000 };
    settle();
    await waitFor(async () => announces.length > 0, 'the first announce');
    assert.equal(announces[0]!.get('port'), '40000');
    assert.equal(announces[0]!.get('event'), 'started');
  });

  test('with nothing mapped, the STUN-learned external UDP port is announced where it differs from the listen port, at once when learned', async () => {
    reply = () => ({ interval: 1800, peers: Buffer.alloc(0) });
    let stunPort: number | undefined;
    const { discovery, changed } = start(new FakeDialler(), { udpExternalPort: () => stunPort });
    await discovery.open();
    await waitFor(async () => announces.length > 0, 'the first announce');
    assert.equal(announces[0]!.get('port'), String(LISTEN_PORT));
    // STUN answers: the router maps the sync port's UDP to 32100.
    stunPort = 32100;
    changed();
    await waitFor(async () => announces.length > 1, 'an announce of the new port');
    assert.equal(announces[1]!.get('port'), '32100');
  });

  test('announced ports: a mapping wins, then the STUN-learned UDP port, then the listen port; the DHT on the shared socket uses implied_port', () => {
    const mapped = { host: EXTERNAL, port: 40000 };
    assert.deepEqual(announcePorts(LISTEN_PORT, mapped, 32100, true), { tracker: 40000, dht: 40000 });
    assert.deepEqual(announcePorts(LISTEN_PORT, null, 32100, false), { tracker: 32100, dht: 32100 });
    assert.deepEqual(announcePorts(LISTEN_PORT, null, 32100, true), { tracker: 32100, dht: 0 });
    assert.deepEqual(announcePorts(LISTEN_PORT, null, undefined, false), { tracker: LISTEN_PORT, dht: LISTEN_PORT });
  });

  test('the mapping wait is bounded', async () => {
    reply = () => ({ interval: 1800, peers: Buffer.alloc(0) });
    const { discovery } = start(new FakeDialler(), { mappingSettled: () => new Promise(() => undefined), mappingWaitMs: 50 });
    await discovery.open();
    await waitFor(async () => announces.length > 0, 'the first announce');
    assert.equal(announces[0]!.get('port'), String(LISTEN_PORT));
  });

  test("a folder with no connected peer is announced again at the tracker's min interval, one with a peer at its interval", async () => {
    reply = () => ({ interval: 1800, 'min interval': 1, peers: Buffer.alloc(0) });
    const dialler = new FakeDialler();
    const { discovery } = start(dialler, { lonelyFloorMs: 0 });
    await discovery.open();
    await waitFor(async () => announces.length >= 2, 'a second announce while alone');
    assert.equal(announces[1]!.get('event'), null);
    // Now a peer of the folder is connected: the next announce is at the full interval.
    dialler.connected = [{
      deviceId: 'P'.repeat(52), address: '198.51.100.9:4000', direction: 'out',
      connection: { closed: false, send: async () => undefined },
      handshake: { folders: [{ keys: FOLDER }] },
    }];
    // The announce already due (lonely) goes out; the one after it waits the full interval.
    const next = async (): Promise<number> => (discovery.report() as { trackers: Array<{ nextAnnounceMs: number }> }).trackers[0]!.nextAnnounceMs;
    await waitFor(async () => (await next()) > Date.now() + 1000 * 1000, 'the next announce to be at the full interval');
  });
});
