// TURN client (RFC 8656): the codec (MESSAGE-INTEGRITY, FINGERPRINT, error responses), a response
// with bad integrity dropped, and against Debian's coturn on loopback: allocate, permission,
// channel, data both ways; a bad password is a clear HANDSHAKE error that does not show it.

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import {
  ATTR_ERROR_CODE, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME, ATTR_XOR_RELAYED_ADDRESS, CLASS_ERROR, CLASS_SUCCESS, METHOD_ALLOCATE,
  TurnClient, attribute, decodeChannelData, decodeMessage, decodeXorAddress, encodeChannelData, encodeMessage, encodeXorAddress,
  MAX_TURN_PEERS, PEER_IDLE_MS, errorOf, longTermKey, parseTurnUrl, verifyIntegrity,
} from '../../src/nat/turn.js';
import { Coturn } from '../helpers/coturn.js';
import { needs } from '../helpers/needs.js';
import { WAIT_LIMIT_MS } from '../helpers/wait.js';

const TID = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');

test('a signed, fingerprinted message decodes; its integrity holds under the right key only; a flipped bit fails the fingerprint', () => {
  const key = longTermKey('alice', 'ferry.test', 'secret');
  const buf = encodeMessage(METHOD_ALLOCATE | CLASS_SUCCESS, TID, [[ATTR_XOR_RELAYED_ADDRESS, encodeXorAddress({ address: '192.0.2.7', port: 50123 }, TID)], [ATTR_USERNAME, Buffer.from('alice')]], { key, fingerprint: true });
  const message = decodeMessage(buf)!;
  assert.equal(message.method, METHOD_ALLOCATE);
  assert.equal(message.cls, CLASS_SUCCESS);
  assert.equal(message.fingerprintOk, true);
  assert.deepEqual(decodeXorAddress(attribute(message, ATTR_XOR_RELAYED_ADDRESS)!, TID), { address: '192.0.2.7', port: 50123 });
  assert.equal(attribute(message, ATTR_USERNAME)!.toString(), 'alice');
  assert.equal(verifyIntegrity(buf, message, key), true);
  assert.equal(verifyIntegrity(buf, message, longTermKey('alice', 'ferry.test', 'guess')), false);
  const flipped = Buffer.from(buf);
  flipped[30]! ^= 1;
  assert.equal(decodeMessage(flipped)!.fingerprintOk, false);
  // Truncated, or an attribute running past the end: not a message.
  assert.equal(decodeMessage(buf.subarray(0, buf.length - 4)), null);
  // IPv6 peer addresses round-trip.
  assert.deepEqual(decodeXorAddress(encodeXorAddress({ address: '2001:db8::1:2', port: 3478 }, TID), TID), { address: '2001:db8::1:2', port: 3478 });
});

test('an error response gives its code, reason, realm and nonce; ChannelData round-trips and foreign bytes are not ChannelData', () => {
  const code = Buffer.concat([Buffer.from([0, 0, 4, 1]), Buffer.from('Unauthorized')]);
  const buf = encodeMessage(METHOD_ALLOCATE | CLASS_ERROR, TID, [[ATTR_ERROR_CODE, code], [ATTR_REALM, Buffer.from('ferry.test')], [ATTR_NONCE, Buffer.from('abcd')]]);
  const message = decodeMessage(buf)!;
  assert.equal(message.cls, CLASS_ERROR);
  assert.deepEqual(errorOf(message), { code: 401, reason: 'Unauthorized' });
  assert.equal(attribute(message, ATTR_REALM)!.toString(), 'ferry.test');
  assert.deepEqual(decodeChannelData(encodeChannelData(0x4001, Buffer.from('hello'))), { channel: 0x4001, data: Buffer.from('hello') });
  assert.equal(decodeChannelData(Buffer.from('d1:ad2:id20:')), null);
  assert.equal(decodeChannelData(Buffer.from([0x40, 0x01, 0x00, 0x09, 1, 2])), null, 'length past the end');
});

test('a TURN URL gives host, port and credentials; a malformed one is USAGE without the password in the message', () => {
  assert.deepEqual(parseTurnUrl('turn://alice:s%40cret@turn.example.org:3479'), { host: 'turn.example.org', port: 3479, username: 'alice', password: 's@cret' });
  assert.equal(parseTurnUrl('turn://a:b@[2001:db8::1]').port, 3478);
  for (const bad of ['turn://turn.example.org:3478', 'stun://a:hunter2@h:1', 'turn://a:hunter2@h:1/path']) {
    assert.throws(() => parseTurnUrl(bad), (err: unknown) => isFerryError(err, 'USAGE') && !(err as Error).message.includes('hunter2'));
  }
});

test('a response with bad integrity is dropped: the allocation times out rather than trusting it', async () => {
  // A fake server: challenges with 401, then answers the signed Allocate with a response signed under another key.
  const server = createSocket('udp4');
  await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', () => resolve()));
  let signedRequests = 0;
  server.on('message', (buf, rinfo) => {
    const request = decodeMessage(buf)!;
    if (!attribute(request, ATTR_USERNAME)) {
      const code = Buffer.concat([Buffer.from([0, 0, 4, 1]), Buffer.from('Unauthorized')]);
      server.send(encodeMessage(METHOD_ALLOCATE | CLASS_ERROR, request.transactionId, [[ATTR_ERROR_CODE, code], [ATTR_REALM, Buffer.from('ferry.test')], [ATTR_NONCE, Buffer.from('n0nce')]]), rinfo.port, rinfo.address);
      return;
    }
    signedRequests++;
    const forged = encodeMessage(METHOD_ALLOCATE | CLASS_SUCCESS, request.transactionId, [[ATTR_XOR_RELAYED_ADDRESS, encodeXorAddress({ address: '6.6.6.6', port: 666 }, request.transactionId)]], { key: longTermKey('alice', 'ferry.test', 'not-the-password'), fingerprint: true });
    server.send(forged, rinfo.port, rinfo.address);
  });
  const client = new TurnClient({ server: { address: '127.0.0.1', port: server.address().port }, username: 'alice', password: 'secret', bindHost: '127.0.0.1', rtoMs: 10, tries: 3 });
  try {
    await assert.rejects(client.open(), (err: unknown) => isFerryError(err, 'TIMEOUT'));
    assert.equal(signedRequests, 3, 'every signed try was answered, and every answer dropped');
    assert.ok(client.dropped >= 3);
    assert.equal(client.state, 'failed');
  } finally {
    await client.close();
    server.close();
  }
});

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_LIMIT_MS;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("against Debian's coturn on loopback", { skip: needs.command('turnserver', 'coturn') }, () => {
  const coturn = new Coturn({ ip: '127.0.0.1', port: 34791, minPort: 49300, maxPort: 49340, users: { alice: 'secret', bob: 'hunter2' }, allowLoopback: true });
  const server = { address: '127.0.0.1', port: 34791 };

  before(() => coturn.start());
  after(() => coturn.stop());

  test('two allocations: permission for the relay IP, data both ways by Send indication and then by channel', async () => {
    const a = new TurnClient({ server, username: 'alice', password: 'secret', bindHost: '127.0.0.1' });
    const b = new TurnClient({ server, username: 'bob', password: 'hunter2', bindHost: '127.0.0.1' });
    try {
      await Promise.all([a.open(), b.open()]);
      assert.equal(a.state, 'allocated');
      const relayA = a.address();
      const relayB = b.address();
      assert.equal(relayA.address, '127.0.0.1');
      assert.ok(relayA.port >= 49300 && relayA.port <= 49340, `relayed port ${relayA.port}`);
      assert.notEqual(relayA.port, relayB.port);
      assert.equal(a.mappedAddress()?.address, '127.0.0.1');
      // Each lets the server's relay IP in: the other's allocation sends from there.
      await Promise.all([a.permit(relayB.address), b.permit(relayA.address)]);
      const inbox = (client: TurnClient): Array<{ text: string; from: string }> => {
        const got: Array<{ text: string; from: string }> = [];
        client.handle(() => true, (buf, from) => got.push({ text: buf.toString(), from: `${from.address}:${from.port}` }));
        return got;
      };
      const gotA = inbox(a);
      const gotB = inbox(b);
      const until = async (what: string, check: () => boolean, send: () => void): Promise<void> => {
        const deadline = Date.now() + WAIT_LIMIT_MS;
        while (!check()) {
          assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
          send();
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      // The first datagrams go as Send indications while the channel is bound, later ones as ChannelData.
      await until('A→B', () => gotB.some((m) => m.text === 'to b'), () => a.send(Buffer.from('to b'), relayB.port, relayB.address));
      assert.equal(gotB.find((m) => m.text === 'to b')!.from, `${relayA.address}:${relayA.port}`);
      await until('B→A', () => gotA.some((m) => m.text === 'to a'), () => b.send(Buffer.from('to a'), relayA.port, relayA.address));
      assert.equal(gotA.find((m) => m.text === 'to a')!.from, `${relayB.address}:${relayB.port}`);
      // Once both channels are bound, data still flows (now as ChannelData).
      await until('channels bound', () => (a as unknown as { peers: Map<string, { bound: boolean }> }).peers.values().next().value?.bound === true && (b as unknown as { peers: Map<string, { bound: boolean }> }).peers.values().next().value?.bound === true, () => undefined);
      const before_ = gotB.length;
      await until('A→B over the channel', () => gotB.slice(before_).some((m) => m.text === 'channel'), () => a.send(Buffer.from('channel'), relayB.port, relayB.address));
      assert.equal(a.report().state, 'allocated');
      assert.ok(!JSON.stringify(a.report()).includes('secret'));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('the peer table is bounded: a peer beyond it is dropped until an idle one can give its place', async () => {
    const client = new TurnClient({ server, username: 'alice', password: 'secret', bindHost: '127.0.0.1' });
    try {
      await client.open();
      for (let i = 0; i < MAX_TURN_PEERS; i++) client.send(Buffer.from('x'), 40000 + i, '127.0.0.1');
      assert.equal(client.peerCount, MAX_TURN_PEERS);
      const dropped = client.dropped;
      client.send(Buffer.from('x'), 41000, '127.0.0.1');
      assert.equal(client.peerCount, MAX_TURN_PEERS);
      assert.equal(client.dropped, dropped + 1, 'the peer beyond the bound was dropped');
      // The oldest peer falls idle: the next new one takes its place.
      const peers = (client as unknown as { peers: Map<string, { lastUsedMs: number; binding: boolean }> }).peers;
      const [firstKey, first] = peers.entries().next().value!;
      await until('binds to settle', () => [...peers.values()].every((p) => !p.binding));
      first.lastUsedMs -= PEER_IDLE_MS;
      client.send(Buffer.from('x'), 41000, '127.0.0.1');
      assert.equal(client.peerCount, MAX_TURN_PEERS);
      assert.ok(!peers.has(firstKey) && peers.has('127.0.0.1|41000'));
    } finally {
      await client.close();
    }
  });

  test('a bad password is a HANDSHAKE error naming the server, not the password', async () => {
    const client = new TurnClient({ server, username: 'alice', password: 'wrong-pass', bindHost: '127.0.0.1' });
    try {
      await assert.rejects(client.open(), (err: unknown) => isFerryError(err, 'HANDSHAKE') && /refused the credentials/.test((err as Error).message) && !(err as Error).message.includes('wrong-pass'));
      assert.equal(client.state, 'failed');
    } finally {
      await client.close();
    }
  });
});
