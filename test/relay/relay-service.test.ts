// RelayService's choices, with a stand-in connection manager: it relays to a device heard of by
// peer exchange through a peer that told of it, once every address of it failed, a hole punch to it
// failed, or the direct attempts' head start ran out (not the old 30 s wait); the device with the
// larger ID yields first; a refusal is shown in the report and retried later.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConnectionManager, EstablishedPeer } from '../../src/connections/index.js';
import { RELAY_HEAD_START_MS, RELAY_YIELD_MS, RelayService } from '../../src/daemon/relay-service.js';
import type { RelayMessage } from '../../src/protocol/index.js';
import { silentLogger } from '../../src/util/log.js';

const FOLDER = 'ab'.repeat(20);

function peer(deviceId: string, sent: RelayMessage[]): EstablishedPeer {
  return {
    deviceId,
    deviceName: `name-${deviceId}`,
    address: '203.0.113.9:22100',
    localAddress: '10.0.0.2:5000',
    direction: 'out',
    source: 'known',
    connection: { send: async (m: RelayMessage) => void sent.push(m), closed: false } as unknown as EstablishedPeer['connection'],
    handshake: { folders: [{ keys: { folderIdHex: FOLDER } }] } as unknown as EstablishedPeer['handshake'],
    connectedAtMs: 0,
    path: () => 'tcp',
    rttMs: () => undefined,
  };
}

function service(
  self: string,
  peers: EstablishedPeer[],
  addresses: Array<{ address: string; connected: boolean; lastError?: string }>,
  punchFailures = new Map<string, { atMs: number; error: string }>(),
) {
  const connections = {
    peers: () => peers,
    addresses: () => addresses,
    connectOver: async () => undefined,
    lastPunchFailure: (device: string) => punchFailures.get(device),
  } as unknown as ConnectionManager;
  const relay = new RelayService({ deviceId: self, connections, relay: true, rateBps: 0, logger: silentLogger, pollMs: 1_000_000 });
  return relay;
}

const pex = (device: string, addresses: string[]) => ({ type: 'PeerExchange' as const, folderId: Buffer.from(FOLDER, 'hex'), listenPort: 22100, peers: [{ device, addresses }] });

test('a device heard of by peer exchange is relayed to only once its addresses all failed, through the peer that told of it', async () => {
  const sent: RelayMessage[] = [];
  const c = peer('CCCC', sent);
  const addresses = [{ address: '198.51.100.7:22100', connected: false as boolean, lastError: undefined as string | undefined }];
  const relay = service('AAAA', [c], addresses);
  await relay.open();
  try {
    relay.onPeerExchange(c, pex('BBBB', ['198.51.100.7:22100']));
    const now = Date.now();
    relay.tick(now);
    assert.equal(sent.length, 0, 'the direct dial has not failed yet');
    addresses[0]!.lastError = 'TIMEOUT: no TLS connection';
    relay.tick(now);
    assert.deepEqual(sent.map((m) => [m.type, (m as { device?: string }).device]), [['RelayOpen', 'BBBB']]);
    // The relay refuses: the reason is shown, and the device is tried again only after a backoff.
    relay.onRelayMessage(c, { type: 'RelayRefuse', stream: (sent[0] as { stream: number }).stream, code: 'RELAY_OFF', reason: 'this device does not relay' });
    await new Promise((resolve) => setImmediate(resolve));
    const report = relay.report() as { devices: Array<{ device: string; lastError?: string; failures: number; nextTryInMs?: number; vias: string[] }> };
    const entry = report.devices.find((d) => d.device === 'BBBB')!;
    assert.match(entry.lastError ?? '', /relay refused: RELAY_OFF: this device does not relay/);
    assert.equal(entry.failures, 1);
    assert.deepEqual(entry.vias, ['CCCC']);
    assert.ok(entry.nextTryInMs! > 0);
    relay.tick(Date.now());
    assert.equal(sent.length, 1, 'not again before the backoff');
    relay.tick(Date.now() + 60_000);
    assert.equal(sent.length, 2, 'again after it');
  } finally {
    await relay.close();
  }
});

test('the device with the larger ID yields to the other for a while; a device connected already is left alone', async () => {
  const sent: RelayMessage[] = [];
  const c = peer('CCCC', sent);
  const failed = [{ address: '198.51.100.7:22100', connected: false, lastError: 'IO: refused' }];
  const relay = service('ZZZZ', [c], failed);
  await relay.open();
  try {
    relay.onPeerExchange(c, pex('BBBB', ['198.51.100.7:22100']));
    const now = Date.now();
    relay.tick(now);
    assert.equal(sent.length, 0, 'ZZZZ > BBBB: it waits');
    relay.tick(now + 10_000);
    assert.equal(sent.length, 1);
  } finally {
    await relay.close();
  }
  const sent2: RelayMessage[] = [];
  const c2 = peer('CCCC', sent2);
  const b = peer('BBBB', []);
  const other = service('AAAA', [c2, b], failed);
  await other.open();
  try {
    other.onPeerExchange(c2, pex('BBBB', ['198.51.100.7:22100']));
    other.tick(Date.now() + 100_000);
    assert.equal(sent2.length, 0, 'B is connected already');
  } finally {
    await other.close();
  }
});

type Report = { devices: Array<{ device: string; trigger?: string; triggerAfterMs?: number }> };

test('a device still unconnected after the direct attempts\' head start is relayed to alongside them, not after 30 s', async () => {
  const sent: RelayMessage[] = [];
  const c = peer('CCCC', sent);
  // The direct dial is still running (no error yet): a TCP SYN into a NAT that drops it, say.
  const relay = service('AAAA', [c], [{ address: '198.51.100.7:22100', connected: false }]);
  await relay.open();
  try {
    const heard = Date.now();
    relay.onPeerExchange(c, pex('BBBB', ['198.51.100.7:22100']));
    relay.tick(heard + RELAY_HEAD_START_MS - 500);
    assert.equal(sent.length, 0, 'within the head start the direct attempts have the device to themselves');
    relay.tick(heard + RELAY_HEAD_START_MS + 500);
    assert.deepEqual(sent.map((m) => [m.type, (m as { device?: string }).device]), [['RelayOpen', 'BBBB']]);
    const entry = (relay.report() as Report).devices.find((d) => d.device === 'BBBB')!;
    assert.equal(entry.trigger, 'head start');
    assert.ok(RELAY_HEAD_START_MS < 30_000 && entry.triggerAfterMs! < 30_000, JSON.stringify(entry));
  } finally {
    await relay.close();
  }
});

test('a failed hole punch sends the device to the relay at once; one from before we heard of it does not', async () => {
  const sent: RelayMessage[] = [];
  const c = peer('CCCC', sent);
  const punches = new Map<string, { atMs: number; error: string }>([['BBBB', { atMs: Date.now() - 60_000, error: 'an old punch' }]]);
  const relay = service('AAAA', [c], [{ address: '198.51.100.7:22100', connected: false }], punches);
  await relay.open();
  try {
    const heard = Date.now();
    relay.onPeerExchange(c, pex('BBBB', ['198.51.100.7:22100']));
    relay.tick(heard + 1);
    assert.equal(sent.length, 0, 'a punch that failed before the device was heard of says nothing of now');
    const failedAt = Date.now() + 1; // after the device was heard of
    punches.set('BBBB', { atMs: failedAt, error: 'UDP: dial timed out' });
    relay.tick(failedAt + 1);
    assert.deepEqual(sent.map((m) => [m.type, (m as { device?: string }).device]), [['RelayOpen', 'BBBB']]);
    const entry = (relay.report() as Report).devices.find((d) => d.device === 'BBBB')!;
    assert.equal(entry.trigger, 'punch failed');
    assert.ok(entry.triggerAfterMs! < RELAY_HEAD_START_MS, JSON.stringify(entry));
  } finally {
    await relay.close();
  }
  // The device with the larger ID still yields for RELAY_YIELD_MS after the punch failed.
  const sent2: RelayMessage[] = [];
  const c2 = peer('CCCC', sent2);
  const punches2 = new Map<string, { atMs: number; error: string }>();
  const yielding = service('ZZZZ', [c2], [{ address: '198.51.100.7:22100', connected: false }], punches2);
  await yielding.open();
  try {
    yielding.onPeerExchange(c2, pex('BBBB', ['198.51.100.7:22100']));
    const failedAt = Date.now() + 1;
    punches2.set('BBBB', { atMs: failedAt, error: 'UDP: dial timed out' });
    yielding.tick(failedAt + 1);
    assert.equal(sent2.length, 0);
    yielding.tick(failedAt + 1 + RELAY_YIELD_MS);
    assert.equal(sent2.length, 1);
  } finally {
    await yielding.close();
  }
});
