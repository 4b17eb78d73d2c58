// Hole punching through a third device: the Introduce messages' validators, the introducer's rules
// (both devices proved the folder to it, rate limits hold, both get the other's endpoints), and the
// introduced side's rounds (dial at once, up to 3 tries, then a reason in status).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { encodeBody } from '../../src/protocol/frames.js';
import { MESSAGE_CODES, type Message } from '../../src/protocol/messages.js';
import { decodeMessage } from '../../src/protocol/validate.js';
import { INTRO_FIRST_BACKOFF_MS, INTRO_TRIES, IntroduceService, REQUESTS_PER_PEER } from '../../src/daemon/introduce-service.js';
import { Reachability, type ServiceContext } from '../../src/daemon/services.js';
import type { EstablishedPeer } from '../../src/connections/index.js';
import { silentLogger } from '../../src/util/log.js';

const FOLDER = Buffer.alloc(20, 7);
const OTHER_FOLDER = Buffer.alloc(20, 8);
const id = (c: string): string => c.repeat(52);

function decode(name: keyof typeof MESSAGE_CODES, fields: object): Message {
  return decodeMessage(MESSAGE_CODES[name], encodeBody(fields));
}

function refused(name: keyof typeof MESSAGE_CODES, fields: object, pattern: RegExp): void {
  assert.throws(() => decode(name, fields), (err: unknown) => isFerryError(err, 'PROTOCOL') && pattern.test((err as Error).message), JSON.stringify(fields));
}

describe('Introduce messages are validated like every other', () => {
  const good = { folderId: FOLDER, device: id('B'), addresses: ['203.0.113.7:22100'], delayMs: 0 };

  test('a well-formed Introduce passes, unknown fields dropped', () => {
    assert.deepEqual(decode('Introduce', { ...good, extra: 1 }), { type: 'Introduce', ...good });
    assert.deepEqual(decode('IntroduceRequest', { folderId: FOLDER, device: id('B'), addresses: [] }), { type: 'IntroduceRequest', folderId: FOLDER, device: id('B'), addresses: [] });
  });

  test('a bad Introduce is refused with a clear error', () => {
    refused('Introduce', { ...good, addresses: [] }, /Introduce\.addresses: fewer than 1/);
    refused('Introduce', { ...good, addresses: ['example.com:22100'] }, /Introduce\.addresses\[0\]: not an IP-literal HOST:PORT/);
    refused('Introduce', { ...good, addresses: ['203.0.113.7:0'] }, /not an IP-literal/);
    refused('Introduce', { ...good, addresses: Array.from({ length: 9 }, (_, i) => `203.0.113.${i}:1`) }, /more than 8 entries/);
    refused('Introduce', { ...good, addresses: ['203.0.113.7:1', '203.0.113.7:1'] }, /duplicate entries/);
    refused('Introduce', { ...good, delayMs: 5001 }, /Introduce\.delayMs: not an integer in 0\.\.5000/);
    refused('Introduce', { ...good, device: '__proto__' }, /Introduce\.device: not a device ID/);
    refused('Introduce', { ...good, folderId: Buffer.alloc(19) }, /Introduce\.folderId: 19 bytes/);
    refused('IntroduceRequest', { folderId: FOLDER, device: id('B') }, /IntroduceRequest\.addresses: not an array/);
    refused('IntroduceFailed', { folderId: FOLDER, device: id('B'), code: 'WHATEVER' }, /IntroduceFailed\.code: not one of/);
  });
});

interface FakePeer extends EstablishedPeer {
  sent: Message[];
}

function fakePeer(deviceId: string, address: string, folders: Buffer[], rttMs?: number, path?: string): FakePeer {
  const sent: Message[] = [];
  return {
    deviceId,
    deviceName: deviceId[0]!,
    address,
    localAddress: '0.0.0.0:22100',
    direction: 'in',
    source: 'incoming',
    connection: { closed: false, send: async (m: Message) => void sent.push(m) } as unknown as EstablishedPeer['connection'],
    handshake: { peer: { deviceId }, folders: folders.map((f) => ({ keys: { folderId: f, folderIdHex: f.toString('hex') } })) } as unknown as EstablishedPeer['handshake'],
    connectedAtMs: Date.now(),
    path: () => (path ?? (rttMs === undefined ? 'tcp' : 'udp')) as ReturnType<EstablishedPeer['path']>,
    rttMs: () => rttMs,
    sent,
  };
}

function service(peers: FakePeer[], punchDial: (device: string, target: { host: string; port: number }) => Promise<{ connected: boolean; error?: string }> = async () => ({ connected: false, error: 'timeout' })) {
  const context = {
    identity: { id: id('C') },
    reachability: new Reachability(),
    logger: silentLogger,
    connections: { peers: () => peers, udpOn: true, punchDial, directlyConnected: (device: string) => peers.some((p) => p.deviceId === device && !p.path().startsWith('relay via')) },
  } as unknown as ServiceContext;
  return new IntroduceService(context);
}

describe('the introducer', () => {
  test('introduces two devices that both proved the folder: each gets the other\'s endpoints at once', async () => {
    const a = fakePeer(id('A'), '198.51.100.1:40001', [FOLDER], 40);
    const b = fakePeer(id('B'), '198.51.100.2:22100', [FOLDER], 10);
    const svc = service([a, b]);
    await svc.open();
    svc.onPeerExchange(b, { type: 'PeerExchange', folderId: FOLDER, listenPort: 22100, peers: [] });
    svc.onIntroduce(a, { type: 'IntroduceRequest', folderId: FOLDER, device: id('B'), addresses: ['198.51.100.1:32100'] });
    await svc.close();
    // A's link runs over UDP: its remote is its NAT's mapping; plus what it stated. B: its IP at its listen port.
    // A is 30 ms further away from C than B: B starts (40 - 10) / 2 = 15 ms after receiving, so both start together.
    assert.deepEqual(b.sent, [{ type: 'Introduce', folderId: FOLDER, device: id('A'), addresses: ['198.51.100.1:40001', '198.51.100.1:32100'], delayMs: 15 }]);
    assert.deepEqual(a.sent, [{ type: 'Introduce', folderId: FOLDER, device: id('B'), addresses: ['198.51.100.2:22100'], delayMs: 0 }]);
  });

  test('never introduces a device that did not prove the folder, nor one not connected, nor the requester itself', async () => {
    const a = fakePeer(id('A'), '198.51.100.1:40001', [FOLDER]);
    const b = fakePeer(id('B'), '198.51.100.2:40002', [OTHER_FOLDER]);
    const svc = service([a, b]);
    await svc.open();
    svc.onIntroduce(a, { type: 'IntroduceRequest', folderId: FOLDER, device: id('B'), addresses: ['198.51.100.1:22100'] });
    svc.onIntroduce(a, { type: 'IntroduceRequest', folderId: FOLDER, device: id('D'), addresses: [] });
    svc.onIntroduce(a, { type: 'IntroduceRequest', folderId: FOLDER, device: id('A'), addresses: [] });
    await svc.close();
    assert.deepEqual(b.sent, []);
    assert.deepEqual(a.sent.map((m) => m.type === 'IntroduceFailed' && m.code), ['NOT_CONNECTED', 'NOT_CONNECTED', 'SELF']);
  });

  test('requests are rate-limited per peer', async () => {
    const a = fakePeer(id('A'), '198.51.100.1:40001', [FOLDER]);
    const b = fakePeer(id('B'), '198.51.100.2:40002', [FOLDER]);
    const svc = service([a, b]);
    await svc.open();
    for (let i = 0; i < 50; i++) svc.onIntroduce(a, { type: 'IntroduceRequest', folderId: FOLDER, device: id('B'), addresses: ['198.51.100.1:22100'] });
    await svc.close();
    const introduced = a.sent.filter((m) => m.type === 'Introduce' || (m.type === 'IntroduceFailed' && m.code !== 'RATE_LIMITED')).length;
    // The burst (plus at most one refilled token in the few ms the loop takes).
    assert.ok(introduced >= REQUESTS_PER_PEER.burst && introduced <= REQUESTS_PER_PEER.burst + 1, `${introduced} served`);
    assert.ok(b.sent.length <= REQUESTS_PER_PEER.burst + 1, `${b.sent.length} introductions sent to B`);
    assert.equal(a.sent.filter((m) => m.type === 'IntroduceFailed' && m.code === 'RATE_LIMITED').length, 50 - introduced);
    assert.equal((svc.report() as { counters: { rateLimited: number } }).counters.rateLimited, 50 - introduced);
  });
});

describe('the introduced device', () => {
  test('dials every address at once; after 3 failed rounds the device is reported with the reason', async () => {
    const c = fakePeer(id('C'), '198.51.100.3:22100', [FOLDER]);
    const dials: string[] = [];
    const svc = service([c], async (device, target) => {
      dials.push(`${device[0]} ${target.host}:${target.port}`);
      return { connected: false, error: 'UDP: timeout' };
    });
    await svc.open();
    // C tells us of B; after the grace for a direct dial, we ask C.
    svc.onPeerExchange(c, { type: 'PeerExchange', folderId: FOLDER, listenPort: 22100, peers: [{ device: id('B'), addresses: ['198.51.100.2:22100'] }] });
    let now = Date.now();
    for (let round = 1; round <= INTRO_TRIES; round++) {
      now += 5_000;
      svc.tick(now);
      const request = c.sent.at(-1)!;
      assert.equal(request.type, 'IntroduceRequest', `round ${round}`);
      assert.equal(c.sent.length, round);
      svc.onIntroduce(c, { type: 'Introduce', folderId: FOLDER, device: id('B'), addresses: ['198.51.100.2:22100', '198.51.100.2:32100'], delayMs: 0 });
      await waitUntil(() => ['waiting', 'failed'].includes(deviceReport(svc, id('B'))?.state ?? ''));
    }
    assert.deepEqual(dials.slice(0, 2), ['B 198.51.100.2:22100', 'B 198.51.100.2:32100']);
    assert.equal(dials.length, 2 * INTRO_TRIES);
    const report = deviceReport(svc, id('B'))!;
    assert.equal(report.state, 'failed');
    assert.equal(report.tries, INTRO_TRIES);
    assert.match(report.reason ?? '', /^introduction via C \(CCCCCCC\) failed: no reply from BBBBBBB's NAT after 3 tries$/);
    // No fourth round until the backoff is over; the first backoff is short (a busy machine may
    // have missed the window), and it doubles with each failed set of rounds. The failed round was
    // timed by the real clock (the dial's answer), so the backoff runs from it.
    let failedAt = Date.now();
    svc.tick(failedAt + INTRO_FIRST_BACKOFF_MS - 1_000);
    assert.equal(c.sent.length, INTRO_TRIES);
    svc.tick(failedAt + INTRO_FIRST_BACKOFF_MS + 1_000);
    assert.equal(c.sent.length, INTRO_TRIES + 1, 'asked again after the first backoff');
    for (let round = 1; round <= INTRO_TRIES; round++) {
      if (round > 1) svc.tick(Date.now() + 5_000);
      svc.onIntroduce(c, { type: 'Introduce', folderId: FOLDER, device: id('B'), addresses: ['198.51.100.2:22100'], delayMs: 0 });
      await waitUntil(() => deviceReport(svc, id('B'))?.tries === round);
    }
    failedAt = Date.now();
    const asked = c.sent.length;
    svc.tick(failedAt + 2 * INTRO_FIRST_BACKOFF_MS - 1_000);
    assert.equal(c.sent.length, asked, 'the second failed set waits twice as long');
    svc.tick(failedAt + 2 * INTRO_FIRST_BACKOFF_MS + 1_000);
    assert.equal(c.sent.length, asked + 1);
    await svc.close();
  });

  test('introduced without having asked, it answers the introducer with its own endpoints, once per round', async () => {
    const c = fakePeer(id('C'), '198.51.100.3:22100', [FOLDER]);
    const dials: string[] = [];
    let finish!: () => void;
    const pending = new Promise<{ connected: boolean }>((resolve) => (finish = () => resolve({ connected: true })));
    const svc = service([c], async (_device, target) => {
      dials.push(`${target.host}:${target.port}`);
      return pending;
    });
    (svc as unknown as { context: ServiceContext }).context.reachability.learn('stun', { host: '198.51.100.1', port: 32101 }, 'stun');
    await svc.open();
    svc.onIntroduce(c, { type: 'Introduce', folderId: FOLDER, device: id('B'), addresses: ['198.51.100.2:22100'], delayMs: 0 });
    svc.onIntroduce(c, { type: 'Introduce', folderId: FOLDER, device: id('B'), addresses: ['198.51.100.2:22100', '198.51.100.2:32102'], delayMs: 0 });
    await new Promise((resolve) => setImmediate(resolve));
    // One answer, carrying our STUN-learned endpoint; the second Introduce only adds its new address to the punch.
    assert.deepEqual(c.sent, [{ type: 'IntroduceRequest', folderId: FOLDER, device: id('B'), addresses: ['198.51.100.1:32101'] }]);
    assert.deepEqual(dials, ['198.51.100.2:22100', '198.51.100.2:32102']);
    finish();
    await waitUntil(() => deviceReport(svc, id('B'))?.state === 'connected');
    await svc.close();
  });

  test('a device connected only through a relay is still introduced and punched to (a direct link replaces the relayed one)', async () => {
    const c = fakePeer(id('C'), '198.51.100.3:22100', [FOLDER]);
    const b = fakePeer(id('B'), 'relay', [FOLDER], undefined, `relay via ${id('C')}`);
    const svc = service([c, b]);
    await svc.open();
    svc.onPeerExchange(c, { type: 'PeerExchange', folderId: FOLDER, listenPort: 22100, peers: [{ device: id('B'), addresses: ['198.51.100.2:22100'] }] });
    svc.tick(Date.now() + 5_000);
    assert.deepEqual(c.sent.map((m) => m.type === 'IntroduceRequest' && m.device), [id('B')]);
    await svc.close();
  });

  test('Introduce messages are rate-limited per introducer', async () => {
    const c = fakePeer(id('C'), '198.51.100.3:22100', [FOLDER]);
    let dials = 0;
    let release!: () => void;
    const hanging = new Promise<{ connected: boolean }>((resolve) => (release = () => resolve({ connected: false })));
    const svc = service([c], async () => {
      dials++;
      return hanging; // still punching: every introduction is a new device
    });
    await svc.open();
    for (let i = 0; i < 40; i++) {
      const device = `D${String(i).padStart(2, '0')}`.padEnd(52, 'X');
      svc.onIntroduce(c, { type: 'Introduce', folderId: FOLDER, device, addresses: ['198.51.100.9:22100'], delayMs: 0 });
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(dials >= 6 && dials <= 7, `${dials} punches started`);
    release();
    await svc.close();
  });
});

function deviceReport(svc: IntroduceService, device: string) {
  return svc.report().devices.find((d) => d.device === device);
}

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition());
}
