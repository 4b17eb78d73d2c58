// IPv6 and trackers (BEP 7, issue 19): a real third-party tracker (npm bittorrent-tracker) reached
// over IPv6 hands out IPv6 peers as `peers6`; HTTP announces carry `ipv6=`; a UDP tracker over IPv6
// answers with 18-byte entries; a udp:// tracker given by name is announced to over both families.

import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import bencode from 'bencode';
import { globalIpv6 } from '../../src/discovery/net-addresses.js';
import { announceUrl } from '../../src/discovery/tracker-http.js';
import type { AnnounceParams } from '../../src/discovery/tracker-params.js';
import { TrackerAnnouncer } from '../../src/discovery/trackers.js';
import { needsBtTracker, startBtTracker } from '../helpers/bt-tracker.js';
import { waitFor } from '../helpers/daemon.js';

const folder = { folderId: Buffer.from('00112233445566778899aabbccddeeff00112233', 'hex'), folderIdHex: '00112233445566778899aabbccddeeff00112233' };
const params: AnnounceParams = { infoHash: folder.folderId, peerId: Buffer.alloc(20, 7), port: 22100, event: 'started', numWant: 50, key: 1 };

describe('IPv6 and HTTP trackers', () => {
  test('ipv6= is sent percent-encoded when given, and not otherwise', () => {
    assert.match(announceUrl('http://t/announce', { ...params, ipv6: '2001:db8::5' }), /&ipv6=2001%3Adb8%3A%3A5(&|$)/);
    assert.doesNotMatch(announceUrl('http://t/announce', params), /ipv6=/);
  });

  test('globalIpv6: the listen host when global; with a wildcard the first global interface address; never ULA, link-local, loopback or mapped', () => {
    const candidates = ['127.0.0.1', '::1', 'fe80::1', 'fd00::7', '::ffff:10.0.0.1', '10.0.0.2', '2001:db8:1::2', '2001:db8:9::9'];
    assert.equal(globalIpv6('0.0.0.0', candidates), '2001:db8:1::2');
    assert.equal(globalIpv6('::', candidates), '2001:db8:1::2');
    assert.equal(globalIpv6('0.0.0.0', ['::1', 'fd00::1', 'fe80::2']), undefined);
    assert.equal(globalIpv6('2001:DB8:9::9', candidates), '2001:db8:9::9');
    assert.equal(globalIpv6('192.168.1.2', candidates), undefined);
    assert.equal(globalIpv6('::1', candidates), undefined);
  });

  test('the announcer sends its global IPv6 address as ipv6= to an HTTP tracker', async () => {
    const queries: string[] = [];
    const server = createServer((req, res) => {
      queries.push(req.url ?? '');
      res.end(Buffer.from(bencode.encode({ interval: 1800, peers: Buffer.alloc(0) })));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/announce`;
    const announcer = new TrackerAnnouncer({ urls: [url], folders: () => [folder], port: () => 22100, onPeers: () => undefined, ipv6Address: () => '2001:db8:1::2' });
    try {
      await announcer.open();
      await waitFor(async () => queries.length > 0, 'an announce');
      assert.match(queries[0]!, /[?&]ipv6=2001%3Adb8%3A1%3A%3A2(&|$)/);
    } finally {
      await announcer.close();
      server.close();
    }
  });
});

describe('bittorrent-tracker over IPv6 (a real third-party tracker)', { skip: needsBtTracker() }, () => {
  test('two announcers on [::1] learn each other through peers6', async () => {
    const tracker = await startBtTracker('::1');
    const heard: Array<[string, string[]]> = [];
    const one = new TrackerAnnouncer({ urls: [tracker.http], folders: () => [folder], port: () => 21111, onPeers: () => undefined });
    const two = new TrackerAnnouncer({ urls: [tracker.http], folders: () => [folder], port: () => 21112, onPeers: (f, a) => heard.push([f, a]) });
    try {
      await one.open();
      await waitFor(async () => tracker.announces.length > 0, 'the first announce');
      await two.open();
      const [folderHex, addresses] = await waitFor(async () => heard[0], 'peers from the tracker');
      assert.equal(folderHex, folder.folderIdHex);
      // The tracker saw the first announcer at ::1 and gave it back as an 18-byte peers6 entry (with
      // the second itself, as this tracker does: discovery drops its own address).
      assert.deepEqual([...addresses].sort(), ['[::1]:21111', '[::1]:21112']);
      assert.deepEqual(tracker.announces.slice(0, 2), ['[::1]:21111', '[::1]:21112']);
    } finally {
      await Promise.all([one.close(), two.close()]);
      await tracker.close();
    }
  });
});

describe('UDP trackers over IPv6', () => {
  /** A scripted BEP 15 tracker on `host`: connect, then an announce reply with `peers` (raw compact bytes). */
  function fakeUdpTracker(host: '127.0.0.1' | '::1', peers: Buffer, port = 0) {
    const socket = createSocket(host === '::1' ? 'udp6' : 'udp4');
    let announces = 0;
    socket.on('message', (packet: Buffer, rinfo: RemoteInfo) => {
      const action = packet.readUInt32BE(8);
      const tid = packet.readUInt32BE(12);
      const reply = Buffer.alloc(action === 0 ? 16 : 20);
      reply.writeUInt32BE(action, 0);
      reply.writeUInt32BE(tid, 4);
      if (action === 0) reply.writeBigUInt64BE(0x77n, 8);
      else {
        announces++;
        reply.writeUInt32BE(1800, 8);
      }
      socket.send(action === 0 ? reply : Buffer.concat([reply, peers]), rinfo.port, rinfo.address);
    });
    const ready = new Promise<number>((r) => socket.bind(port, host, () => r(socket.address().port)));
    return { ready, get announces() { return announces; }, close: () => new Promise<void>((r) => socket.close(() => r())) };
  }
  const v6Entry = (hex: string, port: number): Buffer => Buffer.concat([Buffer.from(hex, 'hex'), Buffer.from([port >> 8, port & 0xff])]);

  test('a udp:// tracker at an IPv6 address answers with 18-byte entries, read as IPv6 peers', async () => {
    const tracker = fakeUdpTracker('::1', Buffer.concat([v6Entry('20010db8000100000000000000000002', 22000), v6Entry('20010db8000200000000000000000003', 22001)]));
    const port = await tracker.ready;
    const heard: string[][] = [];
    const announcer = new TrackerAnnouncer({ urls: [`udp://[::1]:${port}`], folders: () => [folder], port: () => 22100, onPeers: (_f, a) => heard.push(a) });
    try {
      await announcer.open();
      assert.deepEqual(await waitFor(async () => heard[0], 'peers'), ['[2001:db8:1::2]:22000', '[2001:db8:2::3]:22001']);
    } finally {
      await announcer.close();
      await tracker.close();
    }
  });

  test('a udp:// tracker given by name is announced to over IPv4 and IPv6 when this device has a global IPv6 address', async () => {
    const v4 = fakeUdpTracker('127.0.0.1', Buffer.from([10, 0, 0, 1, 0x55, 0xf0]));
    const port = await v4.ready;
    const v6 = fakeUdpTracker('::1', v6Entry('20010db8000100000000000000000002', 22000), port);
    await v6.ready;
    const heard = new Set<string>();
    const resolve = async (host: string, family: 4 | 6 | undefined): Promise<string> => {
      assert.equal(host, 'tracker.example');
      return family === 6 ? '::1' : '127.0.0.1';
    };
    const make = (ipv6: string | undefined) =>
      new TrackerAnnouncer({
        urls: [`udp://tracker.example:${port}`], folders: () => [folder], port: () => 22100,
        onPeers: (_f, a) => a.forEach((x) => heard.add(x)), ipv6Address: () => ipv6, udp: { resolve, timeoutMs: 2_000 },
      });
    const both = make('2001:db8:1::9');
    try {
      await both.open();
      await waitFor(async () => heard.size === 2, 'peers over both families');
      assert.deepEqual([...heard].sort(), ['10.0.0.1:22000', '[2001:db8:1::2]:22000']);
      const report = both.report() as Array<{ family?: string }>;
      assert.deepEqual(report.map((r) => r.family).sort(), ['ipv4', 'ipv6']);
    } finally {
      await both.close();
    }
    // Without a global IPv6 address: IPv4 only.
    const before6 = v6.announces;
    heard.clear();
    const only4 = make(undefined);
    try {
      await only4.open();
      await waitFor(async () => heard.size === 1, 'peers over IPv4');
      assert.deepEqual((only4.report() as Array<{ family?: string }>).map((r) => r.family), ['ipv4']);
      assert.equal(v6.announces, before6);
    } finally {
      await only4.close();
      await Promise.all([v4.close(), v6.close()]);
    }
  });
});
