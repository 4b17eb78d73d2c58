// The Hello's optional `observed` field: each side tells the other the address it sees it at
// (how a device behind NAT learns its external address); a bad value is refused, none is fine.
// And its optional `punched` flag: the sender's end of a UDP link saw a simultaneous open.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { FolderKeys, type DeviceIdentity } from '../../src/keys/index.js';
import { encodeBody } from '../../src/protocol/frames.js';
import { HELLO_MAGIC, MESSAGE_CODES, PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { establishPeer } from '../../src/protocol/tls.js';
import { decodeMessage } from '../../src/protocol/validate.js';
import { makeIdentities, tlsPair, type TempIdentities } from './helpers.js';

let temp: TempIdentities;
let alice: DeviceIdentity;
let bob: DeviceIdentity;
before(async () => {
  temp = await makeIdentities(2);
  [alice, bob] = temp.identities as [DeviceIdentity, DeviceIdentity];
});
after(() => temp.cleanup());

test('each side learns the address the other sees it at', async () => {
  const folder = FolderKeys.generate();
  const pair = await tlsPair(alice, bob);
  try {
    const options = { softwareVersion: 'test', folders: [folder], handshakeTimeoutMs: 5000, closeTimeoutMs: 500 };
    const [a, b] = await Promise.all([
      establishPeer(pair.client, { ...options, role: 'client', identity: alice }),
      establishPeer(pair.server, { ...options, role: 'server', identity: bob }),
    ]);
    assert.equal(a.handshake.peer.observed, `127.0.0.1:${pair.client.localPort}`);
    assert.equal(b.handshake.peer.observed, `127.0.0.1:${pair.server.localPort}`);
    await Promise.all([a.connection.close(), b.connection.close()]);
  } finally {
    await pair.close();
  }
});

const hello = { magic: HELLO_MAGIC, protocolVersion: PROTOCOL_VERSION, deviceId: 'ABCDEFGHIJKLMNOP', deviceName: 'nas', softwareVersion: '0.1.0' };
const decodeHello = (fields: object) => decodeMessage(MESSAGE_CODES.Hello, encodeBody(fields));

test('observed is optional (older peers send none) and must be an IP-literal HOST:PORT', () => {
  assert.equal((decodeHello(hello) as { observed?: string }).observed, undefined);
  assert.equal((decodeHello({ ...hello, observed: '203.0.113.7:40000' }) as { observed?: string }).observed, '203.0.113.7:40000');
  assert.equal((decodeHello({ ...hello, observed: '[2001:db8::7]:40000' }) as { observed?: string }).observed, '[2001:db8::7]:40000');
  for (const bad of ['router.example:1', '203.0.113.7', '203.0.113.7:0', '999.1.1.1:5', '[fe80::1%eth0]:5', 42, '1'.repeat(100), ['1.2.3.4:5']]) {
    assert.throws(() => decodeHello({ ...hello, observed: bad }), (err: unknown) => isFerryError(err, 'PROTOCOL'), String(bad).slice(0, 40));
  }
});

test('punched is optional (older peers send none), true or false, and travels in the handshake', async () => {
  assert.equal((decodeHello(hello) as { punched?: boolean }).punched, undefined);
  assert.equal((decodeHello({ ...hello, punched: true }) as { punched?: boolean }).punched, true);
  assert.equal((decodeHello({ ...hello, punched: false }) as { punched?: boolean }).punched, undefined);
  for (const bad of [1, 'yes', [true]]) {
    assert.throws(() => decodeHello({ ...hello, punched: bad }), (err: unknown) => isFerryError(err, 'PROTOCOL'), String(bad));
  }
  const folder = FolderKeys.generate();
  const pair = await tlsPair(alice, bob);
  try {
    const options = { softwareVersion: 'test', folders: [folder], handshakeTimeoutMs: 5000, closeTimeoutMs: 500 };
    const [a, b] = await Promise.all([
      establishPeer(pair.client, { ...options, role: 'client', identity: alice, punched: () => false }),
      establishPeer(pair.server, { ...options, role: 'server', identity: bob, punched: () => true }),
    ]);
    assert.equal(a.handshake.peer.punched, true, "the server's end saw a punch: its Hello says so");
    assert.equal(b.handshake.peer.punched, undefined);
    await Promise.all([a.connection.close(), b.connection.close()]);
  } finally {
    await pair.close();
  }
});
