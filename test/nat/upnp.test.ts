// UPnP IGD client against fake responders on loopback: the happy path, taken ports, and hostile or broken routers.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { fetchIgdService, soapCall, UpnpFault } from '../../src/nat/igd.js';
import { isGlobalIpv6 } from '../../src/nat/pinhole.js';
import { parseSsdpReply, searchGateways, searchMessage, SSDP_MULTICAST6 } from '../../src/nat/ssdp.js';
import { UpnpClient } from '../../src/nat/upnp.js';
import { descriptionXml, FakeIgd, FakeUdp, memoryLogger, ssdpReply } from './fake-router.js';

const request = { protocol: 'TCP' as const, internalPort: 22100, externalPort: 22100, leaseS: 3600, description: 'Ferry test' };

test('parseSsdpReply keeps gateway answers and says why it drops the rest', () => {
  const ok = parseSsdpReply(ssdpReply('http://10.0.0.1:5000/rootDesc.xml'), '10.0.0.1');
  assert.equal(typeof ok === 'object' && ok.location.href, 'http://10.0.0.1:5000/rootDesc.xml');
  const v2 = parseSsdpReply(ssdpReply('http://10.0.0.1/d.xml', 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'), '10.0.0.1');
  assert.equal(typeof v2 === 'object' && v2.st, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2');
  const reasons = [
    parseSsdpReply(Buffer.from('garbage\x00\xff'), '10.0.0.1'),
    parseSsdpReply(Buffer.from('HTTP/1.1 404 Not Found\r\n\r\n'), '10.0.0.1'),
    parseSsdpReply(ssdpReply('http://10.0.0.1/d.xml', 'urn:schemas-upnp-org:device:MediaServer:1'), '10.0.0.1'),
    parseSsdpReply(ssdpReply('http://10.0.0.99:5000/rootDesc.xml'), '10.0.0.1'),
    parseSsdpReply(ssdpReply('https://10.0.0.1/d.xml'), '10.0.0.1'),
    parseSsdpReply(ssdpReply('file:///etc/passwd'), '10.0.0.1'),
    parseSsdpReply(ssdpReply('not a url'), '10.0.0.1'),
    parseSsdpReply(Buffer.concat([ssdpReply('http://10.0.0.1/d.xml'), Buffer.alloc(4000, 'x')]), '10.0.0.1'),
  ];
  for (const reason of reasons) assert.equal(typeof reason, 'string');
  assert.match(String(reasons[3]), /not the sender/);
});

test('IPv6: a LOCATION in brackets is the sender; another host or a link-local sender naming a global address is not', () => {
  const ok = parseSsdpReply(ssdpReply('http://[2001:db8:1::1]:5000/rootDesc.xml'), '2001:db8:1::1');
  assert.equal(typeof ok === 'object' && ok.location.hostname, '[2001:db8:1::1]');
  assert.match(String(parseSsdpReply(ssdpReply('http://[2001:db8:1::9]:5000/rootDesc.xml'), '2001:db8:1::1')), /not the sender/);
  assert.match(String(parseSsdpReply(ssdpReply('http://[2001:db8:1::1]:5000/rootDesc.xml'), 'fe80::1%eth0')), /not the sender/);
  assert.match(searchMessage('urn:x', SSDP_MULTICAST6).toString(), /^HOST: \[FF02::C\]:1900\r$/m);
});

test('isGlobalIpv6: 2000::/3 only', () => {
  for (const a of ['2001:db8:1::2', '2a01:4f8::1', '3fff::1']) assert.equal(isGlobalIpv6(a), true, a);
  for (const a of ['fe80::1', 'fe80::1%eth0', 'fd00::1', '::1', '::', '::ffff:10.0.0.1', 'ff02::c', '10.0.0.1', 'not an address']) assert.equal(isGlobalIpv6(a), false, a);
});

describe('UPnP against a fake gateway on loopback', () => {
  let igd: FakeIgd;
  let ssdp: FakeUdp;
  let client: UpnpClient;
  let log: ReturnType<typeof memoryLogger>;

  before(async () => {
    igd = new FakeIgd();
    ssdp = new FakeUdp();
    await Promise.all([igd.listen(), ssdp.listen()]);
  });

  after(async () => {
    await Promise.all([igd.close(), ssdp.close()]);
  });

  beforeEach(() => {
    igd.reset();
    ssdp.answer = () => [ssdpReply(igd.location)];
    log = memoryLogger();
    client = new UpnpClient({ ssdpTarget: { address: '127.0.0.1', port: ssdp.port }, searchTimeoutMs: 1500, requestTimeoutMs: 1000, logger: log.logger });
  });

  test('searches for IGD v1 and v2, maps, renews and removes', async () => {
    const mapping = await client.map(request);
    const searches = ssdp.received.map((m) => /^ST: (\S+)/m.exec(m.toString())?.[1]);
    assert.ok(searches.includes('urn:schemas-upnp-org:device:InternetGatewayDevice:1'));
    assert.ok(searches.includes('urn:schemas-upnp-org:device:InternetGatewayDevice:2'));
    assert.deepEqual(
      { address: mapping.externalAddress, port: mapping.externalPort, client: mapping.internalClient, lifetimeS: mapping.lifetimeS },
      { address: '203.0.113.7', port: 22100, client: '127.0.0.1', lifetimeS: 3600 },
    );
    assert.deepEqual(igd.mappings.get(22100), { client: '127.0.0.1', internalPort: 22100, leaseS: 3600 });
    const add = igd.calls.find((c) => c.action === 'AddPortMapping')!;
    assert.deepEqual(Object.keys(add.args), [
      'NewRemoteHost', 'NewExternalPort', 'NewProtocol', 'NewInternalPort', 'NewInternalClient', 'NewEnabled', 'NewPortMappingDescription', 'NewLeaseDuration',
    ]);

    igd.externalAddress = '203.0.113.8';
    const renewed = await client.renew(mapping);
    assert.equal(renewed.externalAddress, '203.0.113.8');
    assert.equal(igd.calls.filter((c) => c.action === 'AddPortMapping').length, 2);

    await client.unmap(renewed);
    assert.equal(igd.mappings.size, 0);
  });

  test('WANPPPConnection and IGD v1 services work too', async () => {
    igd.serviceType = 'urn:schemas-upnp-org:service:WANPPPConnection:1';
    const mapping = await client.map(request);
    assert.equal(mapping.externalPort, 22100);
    assert.match(log.lines.join('\n'), /WANPPPConnection:1/);
  });

  test('a taken external port → the next one; only permanent leases → lease 0', async () => {
    igd.taken.add(22100);
    igd.taken.add(22101);
    igd.onlyPermanentLeases = true;
    const mapping = await client.map(request);
    assert.equal(mapping.externalPort, 22102);
    assert.equal(mapping.lifetimeS, 0);
    const all = new UpnpClient({ ssdpTarget: { address: '127.0.0.1', port: ssdp.port }, maxPortTries: 3, requestTimeoutMs: 1000 });
    igd.taken.add(22102).add(22103).add(22104);
    igd.mappings.clear();
    await assert.rejects(all.map(request), /3 external ports from 22100 are taken/);
  });

  test('garbage SSDP replies and LOCATIONs on other hosts are ignored with a log line', async () => {
    ssdp.answer = () => [
      Buffer.from('\x00\x01garbage'),
      Buffer.alloc(3000, 'A'),
      ssdpReply(`http://127.0.0.2:${igd.port}/rootDesc.xml`),
      ssdpReply('http://192.0.2.1/rootDesc.xml'),
      ssdpReply(igd.location),
    ];
    const found = await searchGateways({ target: { address: '127.0.0.1', port: ssdp.port }, timeoutMs: 1500, logger: log.logger });
    assert.deepEqual(found.map((g) => g.location.href), [igd.location]);
    const ignored = log.lines.filter((l) => l.includes('ignoring SSDP reply'));
    assert.ok(ignored.length >= 4, log.lines.join('\n'));
    assert.ok(ignored.some((l) => l.includes('127.0.0.2') && l.includes('not the sender')));
  });

  test('nobody answering: the search ends at its deadline with nothing, the client says so', async () => {
    ssdp.answer = () => [];
    assert.deepEqual(await searchGateways({ target: { address: '127.0.0.1', port: ssdp.port }, timeoutMs: 300 }), []);
    await assert.rejects(client.map(request), (err) => isFerryError(err, 'TIMEOUT'));
  });

  test('a description with its control URL on another host is refused', async () => {
    for (const controlUrl of ['http://192.0.2.1/ctl', 'https://127.0.0.1/ctl', 'file:///etc/passwd']) {
      igd.handler = (_req, res) => void res.writeHead(200).end(descriptionXml({ controlUrl }));
      await assert.rejects(fetchIgdService(new URL(igd.location), { timeoutMs: 1000 }), /not on the device|no WANIPConnection/, controlUrl);
    }
    // A URLBase elsewhere is ignored: the control URL resolves against the description's own URL.
    igd.handler = (_req, res) => void res.writeHead(200).end(descriptionXml({ urlBase: 'http://192.0.2.1:80/' }));
    const service = await fetchIgdService(new URL(igd.location), { timeoutMs: 1000 });
    assert.equal(service.controlUrl.href, `http://127.0.0.1:${igd.port}/ctl/IPConn`);
  });

  test('XML bombs, huge and endless documents, and silent servers fail bounded, with an error', async () => {
    const bomb = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><root>&b;</root>';
    const cases: Array<[string, http.RequestListener, RegExp]> = [
      ['bomb', (_q, s) => void s.writeHead(200).end(bomb), /document type declarations/],
      ['announced huge', (_q, s) => void s.writeHead(200, { 'Content-Length': String(50 * 1024 * 1024) }).end(), /over the 131072-byte limit/],
      ['endless chunked', (_q, s) => {
        s.writeHead(200);
        const timer = setInterval(() => s.write(Buffer.alloc(16 * 1024, '<')), 1);
        s.on('close', () => clearInterval(timer));
      }, /over the 131072-byte limit/],
      ['silent', () => undefined, /no complete answer in 500 ms/],
      ['trickle', (_q, s) => {
        s.writeHead(200);
        const timer = setInterval(() => s.write('<'), 50);
        s.on('close', () => clearInterval(timer));
      }, /no complete answer in 500 ms/],
      ['404', (_q, s) => void s.writeHead(404).end(), /HTTP 404/],
      ['not xml', (_q, s) => void s.writeHead(200).end('{"json": true}'), /XML/],
    ];
    for (const [name, handler, expected] of cases) {
      igd.handler = (req, res) => handler(req, res);
      await assert.rejects(fetchIgdService(new URL(igd.location), { timeoutMs: 500 }), expected, name);
    }
  });

  test('SOAP faults and broken SOAP answers become errors, never crashes', async () => {
    const service = await fetchIgdService(new URL(igd.location), { timeoutMs: 1000 });
    const call = (): Promise<unknown> => soapCall(service, 'GetExternalIPAddress', [], { timeoutMs: 500 });
    igd.handler = (_q, s) => void s.writeHead(500).end('<s:Envelope xmlns:s="x"><s:Body><s:Fault><detail><UPnPError><errorCode>501</errorCode><errorDescription>ActionFailed</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>');
    await assert.rejects(call(), (err) => err instanceof UpnpFault && err.upnpCode === 501);
    igd.handler = (_q, s) => void s.writeHead(500).end('Internal error');
    await assert.rejects(call(), /unreadable body/);
    igd.handler = (_q, s) => void s.writeHead(500).end('<Envelope><Body><Fault/></Body></Envelope>');
    await assert.rejects(call(), /without a UPnP error code/);
    igd.handler = (_q, s) => void s.writeHead(200).end('<Envelope><Body><Other/></Body></Envelope>');
    await assert.rejects(call(), /no GetExternalIPAddressResponse/);
    igd.handler = (_q, s) => void s.writeHead(200).end(`<Envelope><Body><GetExternalIPAddressResponse>${'<x/>'.repeat(5000)}</GetExternalIPAddressResponse></Body></Envelope>`);
    await assert.rejects(call(), /limit/);

    // A router that has no external address (miniupnpd before STUN answered) is not usable.
    igd.reset();
    igd.externalAddress = '';
    await assert.rejects(client.map(request), /no usable external address/);
  });
});
