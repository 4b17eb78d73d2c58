// Fuzz targets for datagrams and replies from the network: LAN announcements, tracker replies (HTTP and UDP), the DHT
// guard, STUN, µTP packets, the UPnP XML parser and NAT-PMP replies (through a fake gateway on loopback).
// Contract: the documented result (a value, null or a reason), or FerryError with the documented code; nothing else.

import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { after, before, describe, test } from 'node:test';
import bencode from 'bencode';
import fc from 'fast-check';
import { krpcProblem } from '../../src/discovery/dht-guard.js';
import { decodeAnnouncement, encodeAnnouncement, MAX_LAN_PACKET_BYTES } from '../../src/discovery/lan-packet.js';
import { MAX_INTERVAL_S, MAX_PEERS_PER_REPLY, MIN_INTERVAL_S, parseHttpAnnounce, type AnnounceResult } from '../../src/discovery/tracker-response.js';
import { UdpTrackerClient } from '../../src/discovery/tracker-udp.js';
import { NatPmpClient } from '../../src/nat/natpmp.js';
import { decodeBindingResponse, isStunMessage, STUN_MAGIC_COOKIE } from '../../src/nat/stun.js';
import { parseXml, type XmlElement } from '../../src/nat/xml.js';
import { decodePacket, encodePacket, MAX_SACK_BYTES, ST_DATA, type PacketType } from '../../src/transport/utp-packet.js';
import { FakeUdp } from '../nat/fake-router.js';
import { inputs, mutatedText, neverThrows, opts, parsesOrThrows, RUNS } from './fuzz.js';

const deviceId = fc.stringMatching(/^[A-Z2-7]{52}$/);
const port = fc.integer({ min: 1, max: 65535 });
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));

function checkAnnounce(result: AnnounceResult | undefined): void {
  if (!result) return;
  assert.ok(result.intervalS >= MIN_INTERVAL_S && result.intervalS <= MAX_INTERVAL_S);
  assert.ok(result.peers.length <= MAX_PEERS_PER_REPLY * 2);
  for (const peer of result.peers) assert.ok(typeof peer === 'string' && peer.length < 80, peer);
}

describe('fuzz: datagrams and replies from the network', () => {
  test(`LAN announcement: encode → decode is the identity; anything else is a reason, never an exception (${RUNS} inputs)`, () => {
    fc.assert(fc.property(deviceId, port, (id, p) => assert.deepEqual(decodeAnnouncement(encodeAnnouncement({ deviceId: id, port: p })), { deviceId: id, port: p })), opts());
    const valid = fc.tuple(deviceId, port).map(([id, p]) => encodeAnnouncement({ deviceId: id, port: p }));
    fc.assert(
      fc.property(inputs(valid, 200), (packet) => {
        const got = neverThrows(() => decodeAnnouncement(packet));
        if ('error' in got) return;
        assert.match(got.deviceId, /^[A-Z2-7]{52}$/);
        assert.ok(got.port >= 1 && got.port <= 65535 && packet.length <= MAX_LAN_PACKET_BYTES);
      }),
      opts(),
    );
  });

  test(`tracker replies: HTTP (bencoded) and UDP announce replies parse or fail with PROTOCOL/REQUEST_FAILED (${RUNS} inputs each)`, () => {
    const compact = (n: number, size: number) => fc.uint8Array({ minLength: n * size, maxLength: n * size });
    const httpReply = fc
      .record({
        interval: fc.oneof(fc.integer({ min: -10, max: 100000 }), fc.constant(1800)),
        'min interval': fc.option(fc.integer({ min: 0, max: 5000 }), { nil: undefined }),
        peers: fc.oneof(
          fc.nat(30).chain((n) => compact(n, 6)),
          fc.array(fc.record({ ip: fc.oneof(ipv4.map((a) => a.join('.')), fc.constantFrom('::1', 'fe80::1', 'x')), port: fc.integer({ min: -1, max: 70000 }) }), { maxLength: 5 }),
        ),
        peers6: fc.option(fc.nat(10).chain((n) => compact(n, 18)), { nil: undefined }),
        'warning message': fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
        'failure reason': fc.option(fc.string({ maxLength: 20 }), { nil: undefined, freq: 8 }),
      })
      .map((r) => Buffer.from(bencode.encode(JSON.parse(JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? { $b: [...v] } : v)), (_k, v) => (v && v.$b ? Buffer.from(v.$b) : v)))));
    fc.assert(fc.property(inputs(httpReply, 600), (body) => checkAnnounce(parsesOrThrows(() => parseHttpAnnounce(body), ['PROTOCOL', 'REQUEST_FAILED']))), opts());

    const client = new UdpTrackerClient('127.0.0.1', 6969);
    const parseAnnounce = (reply: Buffer): AnnounceResult => client['parseAnnounce'](reply);
    const udpReply = fc.tuple(fc.nat(), fc.nat(20)).chain(([interval, n]) =>
      compact(n, 6).map((peers) => {
        const b = Buffer.alloc(20 + peers.length);
        b.writeUInt32BE(1, 0); // action announce
        b.writeUInt32BE(7, 4);
        b.writeUInt32BE(interval >>> 0, 8);
        Buffer.from(peers).copy(b, 20);
        return b;
      }),
    );
    // The client reads a reply only once its transaction ID matched: it always has at least 8 bytes.
    fc.assert(
      fc.property(inputs(udpReply, 400).filter((b) => b.length >= 8), (reply) => checkAnnounce(parsesOrThrows(() => parseAnnounce(reply), ['PROTOCOL', 'REQUEST_FAILED']))),
      opts(),
    );
  });

  test(`DHT guard: krpcProblem gives null or a reason for any datagram, never an exception (${RUNS} inputs)`, () => {
    const id = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b));
    const krpc = fc.oneof(
      fc.record({ t: fc.constant(Buffer.from('aa')), y: fc.constant('q'), q: fc.constantFrom('ping', 'find_node', 'get_peers', 'announce_peer', 'put'), a: fc.record({ id, target: id, info_hash: id, token: fc.constant(Buffer.from('tok')), port }) }),
      fc.record({ t: fc.constant(Buffer.from('bb')), y: fc.constant('r'), r: fc.record({ id, nodes: fc.uint8Array({ maxLength: 52 }).map((b) => Buffer.from(b)), values: fc.array(fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => Buffer.from(b)), { maxLength: 3 }) }) }),
      fc.record({ t: fc.constant(Buffer.from('cc')), y: fc.constant('e'), e: fc.constant([201, 'error']) }),
    ).map((m) => Buffer.from(bencode.encode(m)));
    fc.assert(
      fc.property(inputs(krpc, 300), (packet) => {
        const problem = neverThrows(() => krpcProblem(packet));
        assert.ok(problem === null || typeof problem === 'string');
      }),
      opts(),
    );
  });

  test(`STUN: a Binding response round-trips its mapped address; mutants give null or a result, never an exception (${RUNS} inputs)`, () => {
    const tid = Buffer.alloc(12, 0x5a);
    const response = fc.tuple(fc.oneof(ipv4.map((a) => a.join('.')), fc.constantFrom('2001:db8::1', '::ffff:0:1', 'fe80::a:b')), port, fc.boolean()).map(([address, p, xor]) => {
      const v6 = isIP(address) === 6;
      const raw = Buffer.alloc(v6 ? 16 : 4);
      if (v6) {
        const full = address.replace('::', ':' + '0:'.repeat(9 - address.split(':').length)).replace(/^:|:$/g, '');
        full.split(':').forEach((g, i) => raw.writeUInt16BE(parseInt(g || '0', 16), i * 2));
      } else address.split('.').forEach((o, i) => (raw[i] = Number(o)));
      const mask = Buffer.concat([Buffer.from([0x21, 0x12, 0xa4, 0x42]), tid]);
      const value = Buffer.alloc(4 + raw.length);
      value[1] = v6 ? 2 : 1;
      value.writeUInt16BE(p ^ (xor ? 0x2112 : 0), 2);
      for (let i = 0; i < raw.length; i++) value[4 + i] = raw[i]! ^ (xor ? mask[i]! : 0);
      const msg = Buffer.alloc(20 + 4 + value.length);
      msg.writeUInt16BE(0x0101, 0);
      msg.writeUInt16BE(4 + value.length, 2);
      msg.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
      tid.copy(msg, 8);
      msg.writeUInt16BE(xor ? 0x0020 : 0x0001, 20);
      msg.writeUInt16BE(value.length, 22);
      value.copy(msg, 24);
      return { msg, address, port: p };
    });
    fc.assert(
      fc.property(response, ({ msg, address, port: p }) => {
        const got = decodeBindingResponse(msg, tid);
        assert.ok(got?.ok, JSON.stringify(got));
        assert.equal(got.mapped.port, p);
        assert.equal(isIP(got.mapped.address), isIP(address));
      }),
      opts(),
    );
    fc.assert(
      fc.property(inputs(response.map((r) => r.msg), 200), (buf) => {
        neverThrows(() => isStunMessage(buf));
        const got = neverThrows(() => decodeBindingResponse(buf, tid));
        if (got?.ok) assert.ok(isIP(got.mapped.address) && got.mapped.port > 0 && got.mapped.port < 65536, JSON.stringify(got));
      }),
      opts(),
    );
  });

  test(`µTP: encode → decode is the identity; mutants give null or a packet, never an exception (${RUNS} inputs)`, () => {
    const header = fc.record({
      type: fc.constantFrom(0, 1, 2, 3, 4) as fc.Arbitrary<PacketType>,
      connectionId: fc.nat(0xffff), timestampUs: fc.nat(), timestampDiffUs: fc.nat(), windowSize: fc.nat(),
      seq: fc.nat(0xffff), ack: fc.nat(0xffff),
    });
    const sack = fc.option(fc.integer({ min: 1, max: MAX_SACK_BYTES / 4 }).chain((n) => fc.uint8Array({ minLength: n * 4, maxLength: n * 4 })), { nil: null });
    const packet = fc.tuple(header, fc.uint8Array({ maxLength: 64 }), sack).map(([h, payload, s]) => ({
      h, payload: h.type === ST_DATA ? Buffer.from(payload) : Buffer.alloc(0), sack: s && Buffer.from(s),
    }));
    fc.assert(
      fc.property(packet, ({ h, payload, sack: s }) => {
        const got = decodePacket(encodePacket(h, payload, s));
        assert.ok(got);
        assert.deepEqual({ ...got, payload: Buffer.from(got.payload), sack: got.sack && Buffer.from(got.sack) }, { ...h, payload, sack: s });
      }),
      opts(),
    );
    fc.assert(
      fc.property(inputs(packet.map((p) => encodePacket(p.h, p.payload, p.sack)), 120), (buf) => {
        const got = neverThrows(() => decodePacket(buf));
        if (got) assert.ok(got.type <= 4 && (got.sack === null || got.sack.length % 4 === 0) && got.payload.length <= buf.length);
      }),
      opts(),
    );
  });

  test(`UPnP XML: mutated device descriptions and SOAP replies parse or fail with PROTOCOL (${RUNS} inputs)`, () => {
    const doc = fc.constantFrom(
      '<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><serviceList><service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl</controlURL></service></serviceList></device></root>',
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:GetExternalIPAddressResponse xmlns:u="x"><NewExternalIPAddress>198.51.100.7</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>',
      '<a b="1" c=\'2\'><!-- c --><![CDATA[<x>]]>&amp;&lt;&#65;&#x42;<b/></a>',
    );
    const xmlChar = fc.oneof(fc.constantFrom('<', '>', '/', '&', ';', '"', "'", '=', '!', '?', '[', ']', '-', ' ', 'a', '&#', '<!--', '<![CDATA['), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 2 }));
    const deep = fc.integer({ min: 1, max: 5000 }).map((n) => '<a>'.repeat(n) + '</a>'.repeat(n));
    const count = (e: XmlElement): number => 1 + e.children.reduce((n, c) => n + count(c), 0);
    fc.assert(
      fc.property(fc.oneof(doc, mutatedText(doc, xmlChar), deep, fc.string({ maxLength: 200 })), (text) => {
        const root = parsesOrThrows(() => parseXml(text), ['PROTOCOL']);
        if (root) {
          assert.equal(typeof root.name, 'string');
          assert.ok(count(root) <= 4000);
        }
      }),
      opts(),
    );
  });

  describe(`NAT-PMP replies from a fake gateway on loopback`, () => {
    let gw: FakeUdp;
    before(async () => {
      gw = new FakeUdp();
      await gw.listen();
    });
    after(() => gw.close());

    const GOOD_EXTERNAL = Buffer.from([0, 128, 0, 0, 0, 0, 0, 1, 198, 51, 100, 9, 0, 0, 0, 0].slice(0, 12));
    const GOOD_MAPPING = Buffer.from([0, 130, 0, 0, 0, 0, 0, 1, 0x56, 0x54, 0x56, 0x54, 0, 0, 0x1c, 0x20]);

    test(`mutated replies are ignored, accepted or refused with REQUEST_FAILED/PROTOCOL/TIMEOUT (${Math.ceil(RUNS / 5)} inputs)`, async () => {
      const external = fc.tuple(ipv4, fc.nat()).map(([a, epoch]) => {
        const b = Buffer.alloc(12);
        b[1] = 128;
        b.writeUInt32BE(epoch >>> 0, 4);
        Buffer.from(a).copy(b, 8);
        return b;
      });
      const mapping = fc.tuple(port, fc.nat(), fc.boolean()).map(([external, lifetime, same]) => {
        const b = Buffer.alloc(16);
        b[1] = 130;
        b.writeUInt16BE(same ? 22100 : external, 8);
        b.writeUInt16BE(external, 10);
        b.writeUInt32BE(lifetime >>> 0, 12);
        return b;
      });
      await fc.assert(
        fc.asyncProperty(fc.boolean(), inputs(external, 40), inputs(mapping, 40), async (askAddress, reply12, reply16) => {
          // The fuzzed reply, then a good one: a fuzzed reply that is ignored costs one round trip, not a timeout.
          gw.answer = () => (askAddress ? [reply12, GOOD_EXTERNAL] : [reply16, GOOD_MAPPING]);
          const client = new NatPmpClient({ gateway: '127.0.0.1', port: gw.port, timeoutMs: 5000 });
          const codes = ['REQUEST_FAILED', 'PROTOCOL', 'TIMEOUT'] as const;
          try {
            if (askAddress) {
              const got = await client.externalAddress();
              assert.equal(isIP(got.address), 4);
            } else {
              const got = await client.requestMapping({ protocol: 'TCP', internalPort: 22100, externalPort: 22100, lifetimeS: 7200 });
              assert.ok(got.externalPort >= 0 && got.externalPort <= 65535);
            }
          } catch (err) {
            parsesOrThrows(() => {
              throw err;
            }, codes);
          }
        }),
        opts(Math.ceil(RUNS / 5)),
      );
    });
  });
});
