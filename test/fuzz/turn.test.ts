// Fuzz target: the TURN codec (src/nat/turn.ts), what a TURN server (or anyone spoofing it) sends.
// Contract: decodeMessage / decodeChannelData / decodeXorAddress give a value or null, never an
// exception; a signed message round-trips; any bit flipped under the MESSAGE-INTEGRITY fails it,
// any bit flipped under the FINGERPRINT fails that.

import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  ATTR_DATA, ATTR_NONCE, ATTR_REALM, ATTR_XOR_PEER_ADDRESS, CLASS_SUCCESS, METHOD_ALLOCATE, decodeChannelData, decodeMessage, decodeXorAddress,
  encodeChannelData, encodeMessage, encodeXorAddress, verifyIntegrity, type Attribute,
} from '../../src/nat/turn.js';
import { inputs, neverThrows, opts, RUNS } from './fuzz.js';

const tid = fc.uint8Array({ minLength: 12, maxLength: 12 }).map((b) => Buffer.from(b));
const key = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b));
const attrs: fc.Arbitrary<Attribute[]> = fc.array(
  fc.tuple(fc.constantFrom(ATTR_REALM, ATTR_NONCE, ATTR_DATA, 0x8022, 0x0006), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b))),
  { maxLength: 6 },
);
const signed = fc.record({ tid, key, attrs }).map(({ tid: t, key: k, attrs: a }) => ({ buf: encodeMessage(METHOD_ALLOCATE | CLASS_SUCCESS, t, a, { key: k, fingerprint: true }), key: k, attrs: a }));

test(`TURN: signed messages round-trip; a flipped bit under the integrity or fingerprint is caught (${RUNS} inputs)`, () => {
  fc.assert(
    fc.property(signed, fc.nat(), fc.nat({ max: 7 }), ({ buf, key: k, attrs: a }, at, bit) => {
      const message = decodeMessage(buf);
      assert.ok(message && message.fingerprintOk && verifyIntegrity(buf, message, k));
      assert.deepEqual(message.attributes.slice(0, a.length).map(([t, v]) => [t, Buffer.from(v)]), a);
      const i = at % buf.length;
      if (i === 2 || i === 3) return; // the length field: covered by the other checks (a different message)
      const flipped = Buffer.from(buf);
      flipped[i]! ^= 1 << bit;
      const got = neverThrows(() => decodeMessage(flipped));
      if (!got) return;
      const integrityEnd = message.integrityAt + 24;
      if (i < integrityEnd) assert.ok(got.integrityAt < 0 || !verifyIntegrity(flipped, got, k) || !got.fingerprintOk, `bit ${bit} of byte ${i} went unnoticed`);
      // (A flip in the FINGERPRINT's own header makes it another attribute, ignored after the integrity.)
      else if (i >= integrityEnd + 4) assert.equal(got.fingerprintOk, false);
    }),
    opts(),
  );
});

test(`TURN: mutants and random bytes decode to a value or null, never an exception (${RUNS} inputs)`, () => {
  const peer = fc.tuple(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), fc.integer({ min: 1, max: 65535 }), tid).map(([a, p, t]) => ({ value: encodeXorAddress({ address: a.join('.'), port: p }, t), t }));
  const withPeer = fc.record({ t: tid, data: fc.uint8Array({ maxLength: 200 }) }).map(({ t, data }) =>
    encodeMessage(0x0017, t, [[ATTR_XOR_PEER_ADDRESS, encodeXorAddress({ address: '192.0.2.9', port: 4000 }, t)], [ATTR_DATA, Buffer.from(data)]], { fingerprint: true }),
  );
  fc.assert(
    fc.property(inputs(fc.oneof(signed.map((s) => s.buf), withPeer), 300), key, (buf, k) => {
      const message = neverThrows(() => decodeMessage(buf));
      if (message && message.integrityAt >= 0) neverThrows(() => verifyIntegrity(buf, message, k));
      if (message) for (const [, value] of message.attributes) neverThrows(() => decodeXorAddress(value, message.transactionId));
      const channel = neverThrows(() => decodeChannelData(buf));
      if (channel) assert.ok(channel.channel >= 0x4000 && channel.channel <= 0x4fff && channel.data.length <= buf.length - 4);
    }),
    opts(),
  );
  fc.assert(
    fc.property(inputs(peer.map((p) => p.value), 40), tid, (value, t) => {
      const at = neverThrows(() => decodeXorAddress(value, t));
      if (at) assert.ok(isIP(at.address) && at.port > 0 && at.port < 65536);
    }),
    opts(),
  );
  fc.assert(
    fc.property(fc.integer({ min: 0x4000, max: 0x4fff }), fc.uint8Array({ maxLength: 1400 }), (ch, data) => {
      assert.deepEqual(decodeChannelData(encodeChannelData(ch, Buffer.from(data))), { channel: ch, data: Buffer.from(data) });
    }),
    opts(),
  );
});
