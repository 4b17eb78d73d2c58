// Tracker clients against fake trackers on loopback: replies decoded, bad ones refused, UDP retries
// with the BEP 15 backoff (scaled down), intervals clamped, `stopped` on close.

import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import bencode from 'bencode';
import { isFerryError } from '../../src/errors.js';
import { announceHttp } from '../../src/discovery/tracker-http.js';
import type { AnnounceParams } from '../../src/discovery/tracker-params.js';
import { clampInterval, MAX_INTERVAL_S, parseHttpAnnounce, TrackerRefusedError } from '../../src/discovery/tracker-response.js';
import { UdpTrackerClient } from '../../src/discovery/tracker-udp.js';
import { TrackerAnnouncer } from '../../src/discovery/trackers.js';
import { waitFor } from '../helpers/daemon.js';

const INFO_HASH = Buffer.from('0123456789abcdef0123456789abcdef01234567', 'hex');
const params: AnnounceParams = { infoHash: INFO_HASH, peerId: Buffer.alloc(20, 7), port: 22100, event: 'started', numWant: 50, key: 1 };
const enc = (value: unknown): Buffer => Buffer.from(bencode.encode(value));
const compact = (...peers: Array<[number, number, number, number, number]>): Buffer =>
  Buffer.concat(peers.map(([a, b, c, d, port]) => Buffer.from([a, b, c, d, port >> 8, port & 0xff])));

describe('tracker replies', () => {
  test('compact peers, IPv6 peers and dictionary peers are read', () => {
    const peers6 = Buffer.concat([Buffer.from('fe800000000000000000000000000001', 'hex'), Buffer.from([0x56, 0x34])]);
    const result = parseHttpAnnounce(enc({ interval: 900, peers: compact([10, 0, 0, 1, 22100], [10, 0, 0, 2, 22101]), peers6 }));
    assert.deepEqual(result.peers, ['10.0.0.1:22100', '10.0.0.2:22101', '[fe80::1]:22068']);
    assert.equal(result.intervalS, 900);
    const dicts = parseHttpAnnounce(enc({ interval: 900, peers: [{ ip: '192.168.1.5', port: 6881 }, { ip: 'evil name', port: 1 }, { ip: '10.0.0.1', port: 99999 }] }));
    assert.deepEqual(dicts.peers, ['192.168.1.5:6881']);
  });

  test('a failure reason is a refusal', () => {
    assert.throws(() => parseHttpAnnounce(enc({ 'failure reason': 'Requested download is not authorized for use with this tracker.' })), (err: unknown) =>
      err instanceof TrackerRefusedError && /not authorized/.test(err.message));
  });

  test('a truncated compact list gives its whole entries and counts the rest', () => {
    const result = parseHttpAnnounce(enc({ interval: 60, peers: Buffer.concat([compact([1, 2, 3, 4, 5]), Buffer.from([9, 9, 9])]) }));
    assert.deepEqual(result.peers, ['1.2.3.4:5']);
    assert.equal(result.truncatedBytes, 3);
  });

  test('huge, negative and missing intervals are clamped', () => {
    assert.equal(parseHttpAnnounce(enc({ interval: 2 ** 52, peers: Buffer.alloc(0) })).intervalS, MAX_INTERVAL_S);
    assert.equal(clampInterval(-5), 1800);
    assert.equal(clampInterval('soon'), 1800);
    assert.equal(clampInterval(1), 60);
  });

  test('garbage is a protocol error, and a huge peer list is capped', () => {
    for (const body of [Buffer.from('not bencode'), enc([1, 2]), enc('x'), enc({ peers: 5 }), Buffer.from('l'.repeat(50_000))]) {
      assert.throws(() => parseHttpAnnounce(body), (err: unknown) => isFerryError(err, 'PROTOCOL'));
    }
    const many = parseHttpAnnounce(enc({ interval: 60, peers: Buffer.alloc(6 * 5000, 1) }));
    assert.equal(many.peers.length, 200);
  });
});

describe('HTTP tracker client', () => {
  let server: Server;
  let base = '';
  let reply: (url: URL) => { status?: number; body?: Buffer; hang?: boolean };
  const seen: URL[] = [];

  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      seen.push(url);
      const answer = reply(url);
      if (answer.hang) return;
      res.writeHead(answer.status ?? 200);
      res.end(answer.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/announce`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('announces the info-hash, port and compact=1, and reads the peers', async () => {
    reply = () => ({ body: enc({ interval: 120, peers: compact([127, 0, 0, 1, 4000]) }) });
    const result = await announceHttp(base, params);
    assert.deepEqual(result.peers, ['127.0.0.1:4000']);
    const url = seen.at(-1)!;
    assert.equal(url.searchParams.get('port'), '22100');
    assert.equal(url.searchParams.get('compact'), '1');
    assert.equal(url.searchParams.get('event'), 'started');
    assert.ok(url.search.includes('info_hash=%01%23Eg%89%ab%cd%ef%01%23Eg%89%ab%cd%ef%01%23Eg'));
  });

  test('HTTP errors, oversized bodies and silence are errors', async () => {
    reply = () => ({ status: 500, body: Buffer.from('no') });
    await assert.rejects(announceHttp(base, params), (err: unknown) => isFerryError(err, 'PROTOCOL'));
    reply = () => ({ body: Buffer.alloc(300_000, 0x69) });
    await assert.rejects(announceHttp(base, params), /more than/);
    reply = () => ({ hang: true });
    await assert.rejects(announceHttp(base, params, { timeoutMs: 200 }), (err: unknown) => isFerryError(err, 'TIMEOUT'));
  });

  test('the announcer clamps a huge interval, reports peers, and says stopped on close', async () => {
    reply = (url) => ({ body: enc({ interval: 10 ** 12, peers: url.searchParams.get('event') === 'stopped' ? Buffer.alloc(0) : compact([10, 1, 1, 1, 5000]) }) });
    const found: string[] = [];
    const announcer = new TrackerAnnouncer({
      urls: [base, 'ftp://nope', 'not a url'],
      folders: () => [{ folderId: INFO_HASH, folderIdHex: INFO_HASH.toString('hex') }],
      port: () => 22100,
      onPeers: (_folder, addresses) => found.push(...addresses),
    });
    await announcer.open();
    await waitFor(async () => found.length > 0, 'an announce');
    assert.deepEqual(found, ['10.1.1.1:5000']);
    const [job] = announcer.report() as Array<{ url: string; nextAnnounceMs: number }>;
    assert.equal(job!.url, base);
    assert.ok(job!.nextAnnounceMs - Date.now() <= MAX_INTERVAL_S * 1000);
    await announcer.close();
    assert.equal(seen.at(-1)!.searchParams.get('event'), 'stopped');
  });
});

describe('UDP tracker client', () => {
  /** A fake BEP 15 tracker whose answers the test scripts. */
  function fakeTracker(answer: (packet: Buffer, count: number) => Buffer | Buffer[] | null) {
    const socket = createSocket('udp4');
    let count = 0;
    socket.on('message', (packet: Buffer, rinfo: RemoteInfo) => {
      const out = answer(packet, count++);
      for (const reply of out === null ? [] : Array.isArray(out) ? out : [out]) socket.send(reply, rinfo.port, rinfo.address);
    });
    return { socket, get count() { return count; }, ready: new Promise<number>((r) => socket.bind(0, '127.0.0.1', () => r(socket.address().port))) };
  }
  const head = (action: number, tid: number, size = 8): Buffer => {
    const b = Buffer.alloc(size);
    b.writeUInt32BE(action, 0);
    b.writeUInt32BE(tid, 4);
    return b;
  };
  const connectReply = (packet: Buffer): Buffer => {
    const b = head(0, packet.readUInt32BE(12), 16);
    b.writeBigUInt64BE(0x1234n, 8);
    return b;
  };
  const announceReply = (packet: Buffer, interval: number, peers: Buffer): Buffer => {
    const b = head(1, packet.readUInt32BE(12), 20);
    b.writeUInt32BE(interval, 8);
    return Buffer.concat([b, peers]);
  };

  test('connects, announces, and reads peers (ignoring a truncated tail and stray packets)', async () => {
    const tracker = fakeTracker((packet) => {
      if (packet.length === 16) return [head(0, 0xdead, 16), connectReply(packet)];
      assert.equal(packet.length, 98);
      assert.deepEqual(packet.subarray(16, 36), INFO_HASH);
      assert.equal(packet.readUInt16BE(96), 22100);
      return announceReply(packet, 0xffffffff, Buffer.concat([compact([10, 0, 0, 9, 7000]), Buffer.from([1, 2])]));
    });
    // Timeouts long enough that a busy machine's pause between a send and its answer sends nothing again.
    const client = new UdpTrackerClient('127.0.0.1', await tracker.ready, { timeoutMs: 1_000, maxRetries: 2 });
    try {
      const result = await client.announce(params);
      assert.deepEqual(result.peers, ['10.0.0.9:7000']);
      assert.equal(result.truncatedBytes, 2);
      assert.equal(result.intervalS, MAX_INTERVAL_S);
      assert.ok(client.ignoredPackets >= 1);
    } finally {
      await client.close();
      tracker.socket.close();
    }
  });

  test('retransmits after a timeout, doubling the wait each time, then gives up', async () => {
    const times: number[] = [];
    const tracker = fakeTracker((packet, n) => {
      times.push(Date.now());
      if (n < 2) return null; // the first two connects are "lost"
      return packet.length === 16 ? connectReply(packet) : announceReply(packet, 60, Buffer.alloc(0));
    });
    // 250 ms, then 500: the answered third connect has 1 s, so a pause of the busy test process cannot add a fourth.
    const client = new UdpTrackerClient('127.0.0.1', await tracker.ready, { timeoutMs: 250, maxRetries: 3 });
    try {
      const result = await client.announce(params);
      assert.deepEqual(result.peers, []);
      assert.equal(tracker.count, 4);
      const silent = fakeTracker(() => null);
      const dead = new UdpTrackerClient('127.0.0.1', await silent.ready, { timeoutMs: 10, maxRetries: 2 });
      await assert.rejects(dead.announce(params), (err: unknown) => isFerryError(err, 'TIMEOUT'));
      assert.equal(silent.count, 3);
      await dead.close();
      silent.socket.close();
    } finally {
      await client.close();
      tracker.socket.close();
    }
  });

  test('an error action and a bare 8-byte announce reply are refusals', async () => {
    let mode: 'error' | 'short' = 'error';
    const tracker = fakeTracker((packet) => {
      if (packet.length === 16) return connectReply(packet);
      if (mode === 'short') return head(1, packet.readUInt32BE(12));
      return Buffer.concat([head(3, packet.readUInt32BE(12)), Buffer.from('unregistered torrent')]);
    });
    const client = new UdpTrackerClient('127.0.0.1', await tracker.ready, { timeoutMs: 1_000, maxRetries: 1 });
    try {
      await assert.rejects(client.announce(params), (err: unknown) => err instanceof TrackerRefusedError && /unregistered/.test(err.message));
      mode = 'short';
      await assert.rejects(client.announce(params), (err: unknown) => err instanceof TrackerRefusedError && /8 bytes/.test(err.message));
    } finally {
      await client.close();
      tracker.socket.close();
    }
  });
});
