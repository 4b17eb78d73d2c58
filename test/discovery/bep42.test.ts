// BEP 42: CRC-32C, node IDs from the BEP's test vectors (libtorrent's), validation, and the vote on
// our external address from DHT replies' `ip` key.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c, EXTERNAL_IP_QUORUM, ExternalIpVote, nodeIdFor, parseCompactEndpoint, validNodeId } from '../../src/discovery/bep42.js';

/** The table of BEP 42: IP, rand, and an example node ID (the bytes after the 21-bit prefix are random). */
const VECTORS: Array<[string, number, string]> = [
  ['124.31.75.21', 1, '5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401'],
  ['21.75.31.124', 86, '5a3ce9c14e7a08645677bbd1cfe7d8f956d53256'],
  ['65.23.51.170', 22, 'a5d43220bc8f112a3d426c84764f8c2a1150e616'],
  ['84.124.73.14', 65, '1b0321dd1bb1fe518101ceef99462b947a01ff41'],
  ['43.213.53.83', 90, 'e56f6cbf5b7c4be0237986d5243b87aa6d51305a'],
];

test('crc32c: the standard check value and the empty input', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
});

test('node IDs: the BEP 42 test vectors are generated exactly and validate', () => {
  for (const [ip, rand, example] of VECTORS) {
    const id = Buffer.from(example, 'hex');
    assert.equal(id[19], rand);
    // Given the example's random bytes, generation reproduces the example ID byte for byte.
    assert.equal(nodeIdFor(ip, id).toString('hex'), example, ip);
    assert.ok(validNodeId(id, ip), ip);
    // Another address's ID, or one bit of the prefix flipped, is not valid.
    const other = VECTORS.find(([o]) => o !== ip)![0];
    assert.equal(validNodeId(id, other), false, `${ip} vs ${other}`);
    for (const bit of [0, 7, 12, 20]) {
      const flipped = Buffer.from(id);
      flipped[bit >> 3] = flipped[bit >> 3]! ^ (0x80 >> (bit & 7));
      assert.equal(validNodeId(flipped, ip), false, `${ip} bit ${bit}`);
    }
    // The three free bits of byte 2, and bytes 3–18, are not checked.
    const free = Buffer.from(id);
    free[2] = free[2]! ^ 0x07;
    free[10] = free[10]! ^ 0xff;
    assert.ok(validNodeId(free, ip));
  }
});

test('node IDs: random ones validate for their IPv4 and IPv6 address; local addresses are exempt', () => {
  for (const ip of ['198.51.100.7', '203.0.113.200', '2001:db8:100::2', '2a00:1450:4001:81c::200e']) {
    for (let i = 0; i < 20; i++) assert.ok(validNodeId(nodeIdFor(ip), ip), ip);
  }
  const foreign = nodeIdFor('198.51.100.7');
  for (const local of ['10.1.2.3', '192.168.0.9', '127.0.0.1', 'fd00::1', 'fe80::1']) assert.ok(validNodeId(foreign, local), local);
  assert.equal(validNodeId(Buffer.alloc(19), '198.51.100.7'), false);
  assert.throws(() => nodeIdFor('not an ip'), TypeError);
});

test('compact endpoints: 6 and 18 bytes, nothing else, no port 0', () => {
  assert.deepEqual(parseCompactEndpoint(Buffer.from([198, 51, 100, 7, 0x1a, 0xe1])), { host: '198.51.100.7', port: 6881 });
  assert.deepEqual(parseCompactEndpoint(Buffer.from('20010db8010000000000000000000002' + '1ae1', 'hex')), { host: '2001:db8:100::2', port: 6881 });
  assert.equal(parseCompactEndpoint(Buffer.alloc(5)), null);
  assert.equal(parseCompactEndpoint(Buffer.alloc(7)), null);
  assert.equal(parseCompactEndpoint(Buffer.from([1, 2, 3, 4, 0, 0])), null);
});

test('the vote: agreement of EXTERNAL_IP_QUORUM distinct responders, one vote each, ties and minorities believed by none', () => {
  const vote = new ExternalIpVote();
  const us = { host: '198.51.100.7', port: 6881 };
  // One responder saying it many times is one vote.
  for (let i = 0; i < 10; i++) assert.equal(vote.add('203.0.113.1', us), undefined);
  for (let i = 2; i < EXTERNAL_IP_QUORUM; i++) assert.equal(vote.add(`203.0.113.${i}`, us), undefined);
  assert.deepEqual(vote.add(`203.0.113.${EXTERNAL_IP_QUORUM}`, us), us);
  // Liars as many as the honest: a tie, nothing believed; one more honest responder settles it.
  const lie = { host: '192.0.2.66', port: 1 };
  for (let i = 0; i < EXTERNAL_IP_QUORUM; i++) vote.add(`233.252.0.${i}`, lie);
  assert.equal(vote.agreed(4), undefined);
  assert.deepEqual(vote.add('203.0.113.99', us), us);
  // A responder that changes its mind moves its one vote (4 against 3 now).
  vote.add('203.0.113.99', lie);
  assert.deepEqual(vote.agreed(4), lie);
  // IPv6 is voted on apart from IPv4.
  const v6 = { host: '2001:db8:100::2', port: 6881 };
  for (let i = 1; i <= EXTERNAL_IP_QUORUM; i++) vote.add(`2001:db8:ffff::${i}`, v6);
  assert.deepEqual(vote.agreed(6), v6);
});

test('the vote keeps at most its bound of responders (the oldest forgotten)', () => {
  const vote = new ExternalIpVote(3, 4);
  const old = { host: '198.51.100.7', port: 1 };
  const now = { host: '198.51.100.8', port: 2 };
  for (let i = 1; i <= 3; i++) vote.add(`203.0.113.${i}`, old);
  assert.deepEqual(vote.agreed(4), old);
  for (let i = 11; i <= 13; i++) vote.add(`203.0.113.${i}`, now);
  // 4 kept: 1 old vote, 3 new.
  assert.deepEqual(vote.agreed(4), now);
});
