// NAT-PMP client against a fake responder on loopback, and the routing-table parser that finds the gateway.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { defaultGateway, parseDefaultGateway } from '../../src/nat/gateway.js';
import { NatPmpClient } from '../../src/nat/natpmp.js';
import { FakeUdp, memoryLogger } from './fake-router.js';

const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t0001E70A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0101E70A\t0003\t0\t0\t100\t00000000\t0\t0\t0
`;

test('the default gateway comes from the routing table, lowest metric first', async () => {
  assert.equal(parseDefaultGateway(ROUTES), '10.231.1.1');
  assert.equal(parseDefaultGateway(ROUTES.split('\n').slice(0, 2).join('\n')), null);
  assert.equal(parseDefaultGateway('garbage\n\x00\x01 1 2 3\n'), null);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-route-'));
  try {
    await writeFile(join(dir, 'route'), ROUTES);
    assert.equal(await defaultGateway(join(dir, 'route')), '10.231.1.1');
    assert.equal(await defaultGateway(join(dir, 'missing')), null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

function externalReply(result = 0, address = [198, 51, 100, 9]): Buffer {
  const b = Buffer.alloc(12);
  b[1] = 128;
  b.writeUInt16BE(result, 2);
  b.writeUInt32BE(1234, 4);
  Buffer.from(address).copy(b, 8);
  return b;
}

function mapReply(request: Buffer, options: { result?: number; externalPort?: number; lifetimeS?: number } = {}): Buffer {
  const b = Buffer.alloc(16);
  b[1] = 128 + request[1]!;
  b.writeUInt16BE(options.result ?? 0, 2);
  b.writeUInt32BE(1234, 4);
  b.writeUInt16BE(request.readUInt16BE(4), 8);
  b.writeUInt16BE(options.externalPort ?? (request.readUInt16BE(6) || 40000), 10);
  b.writeUInt32BE(options.lifetimeS ?? request.readUInt32BE(8), 12);
  return b;
}

describe('NAT-PMP against a fake gateway on loopback', () => {
  let gw: FakeUdp;
  let log: ReturnType<typeof memoryLogger>;
  let client: NatPmpClient;
  const request = { protocol: 'TCP' as const, internalPort: 22100, externalPort: 22100, leaseS: 7200, description: 'x' };

  before(async () => {
    gw = new FakeUdp();
    await gw.listen();
  });
  after(() => gw.close());
  beforeEach(() => {
    gw.received.length = 0;
    log = memoryLogger();
    client = new NatPmpClient({ gateway: '127.0.0.1', port: gw.port, timeoutMs: 800, logger: log.logger });
  });

  test('external address, mapping with the router-chosen port, renewal and removal', async () => {
    gw.answer = (m) => (m[1] === 0 ? [externalReply()] : [mapReply(m, { externalPort: m.readUInt32BE(8) === 0 ? 0 : 40001 })]);
    const mapping = await client.map(request);
    assert.deepEqual(
      { method: mapping.method, address: mapping.externalAddress, port: mapping.externalPort, lifetimeS: mapping.lifetimeS, client: mapping.internalClient },
      { method: 'natpmp', address: '198.51.100.9', port: 40001, lifetimeS: 7200, client: '127.0.0.1' },
    );
    const mapRequest = gw.received.find((m) => m[1] === 2)!;
    assert.deepEqual([mapRequest.length, mapRequest[0], mapRequest.readUInt16BE(4), mapRequest.readUInt16BE(6), mapRequest.readUInt32BE(8)], [12, 0, 22100, 22100, 7200]);
    const renewed = await client.renew(mapping);
    assert.equal(renewed.externalPort, 40001);
    assert.equal(gw.received.at(-1)!.readUInt16BE(6), 40001, 'renewal asks for the port it has');
    await client.unmap(renewed);
    const removal = gw.received.at(-1)!;
    assert.deepEqual([removal[1], removal.readUInt16BE(4), removal.readUInt16BE(6), removal.readUInt32BE(8)], [2, 22100, 0, 0]);
  });

  test('a shorter lifetime granted is reported; renewals ask for the full lease again', async () => {
    gw.answer = (m) => (m[1] === 0 ? [externalReply()] : [mapReply(m, { lifetimeS: 120 })]);
    const mapping = await client.map(request);
    assert.equal(mapping.lifetimeS, 120);
    const renewed = await client.renew(mapping);
    assert.equal(gw.received.at(-1)!.readUInt32BE(8), 7200);
    assert.equal(renewed.lifetimeS, 120);
  });

  test('replies with wrong versions, opcodes or sizes are ignored with a log line; the good one counts', async () => {
    gw.answer = (m) => {
      const good = m[1] === 0 ? externalReply() : mapReply(m);
      const wrongVersion = Buffer.from(good);
      wrongVersion[0] = 2;
      const wrongOpcode = Buffer.from(good);
      wrongOpcode[1] = 129 + (m[1] ?? 0);
      return [Buffer.from([0]), wrongVersion, wrongOpcode, good.subarray(0, 10), Buffer.alloc(1500, 0xff), good];
    };
    const mapping = await client.map(request);
    assert.equal(mapping.externalPort, 22100);
    const ignored = log.lines.filter((l) => l.includes('ignoring NAT-PMP reply'));
    assert.ok(ignored.some((l) => l.includes('version 2')), log.lines.join('\n'));
    assert.ok(ignored.some((l) => l.includes('opcode')), log.lines.join('\n'));
    assert.ok(ignored.some((l) => l.includes('1-byte reply')), log.lines.join('\n'));
  });

  test('result codes, a foreign internal port and a zero lifetime are errors', async () => {
    for (const result of [1, 2, 3, 4, 5, 99]) {
      gw.answer = () => [externalReply(result)];
      await assert.rejects(client.externalAddress(), (err) => isFerryError(err, 'REQUEST_FAILED') && err.message.includes(`result ${result}`));
    }
    gw.answer = (m) => (m[1] === 0 ? [externalReply()] : [mapReply(m, { result: 2 })]);
    await assert.rejects(client.map(request), /not authorized/);
    gw.answer = (m) => {
      if (m[1] === 0) return [externalReply()];
      const r = mapReply(m);
      r.writeUInt16BE(9999, 8);
      return [r];
    };
    await assert.rejects(client.map(request), /internal port 9999/);
    gw.answer = (m) => (m[1] === 0 ? [externalReply()] : [mapReply(m, { lifetimeS: 0 })]);
    await assert.rejects(client.map(request), /without a port or a lifetime/);
    gw.answer = () => [externalReply(0, [0, 0, 0, 0])];
    await assert.rejects(client.map(request), /no external address/);
  });

  test('a silent gateway: retries, then a TIMEOUT at the deadline', async () => {
    gw.answer = () => [];
    await assert.rejects(client.externalAddress(), (err) => isFerryError(err, 'TIMEOUT'));
    assert.ok(gw.received.length >= 2, 'the request was sent again');
    const none = new NatPmpClient({ routeFile: '/nonexistent/route', timeoutMs: 200 });
    await assert.rejects(none.externalAddress(), /no IPv4 default gateway/);
  });

  test('an abort ends a pending request at once', async () => {
    gw.answer = () => [];
    const abort = new AbortController();
    const pending = client.externalAddress(abort.signal);
    abort.abort();
    await assert.rejects(pending, (err) => isFerryError(err, 'ABORTED'));
  });
});
