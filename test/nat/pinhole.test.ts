// IPv6 pinholes (UPnP IGD v2 WANIPv6FirewallControl) against a fake gateway on [::1]: SSDP over IPv6, the
// SOAP arguments routers expect (protocol numbers, lease bounds), renewal, removal, and refusals. The
// real router (miniupnpd) is in test/netlab/pinhole.test.ts.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { FIREWALL6_SERVICE_TYPES, UpnpFault } from '../../src/nat/igd.js';
import { PinholeClient, type LocalIpv6 } from '../../src/nat/pinhole.js';
import { PortMapper } from '../../src/nat/port-mapper.js';
import { waitFor } from '../helpers/daemon.js';
import { descriptionXml, soapFault, soapResponse, ssdpReply } from './fake-router.js';

const FIREWALL6 = FIREWALL6_SERVICE_TYPES[0];
const request = { protocol: 'TCP' as const, internalPort: 22100, externalPort: 22100, leaseS: 3600, description: 'Ferry test' };

/** A gateway on [::1]: SSDP over udp6 and a WANIPv6FirewallControl service that keeps pinholes by UniqueID. */
class FakeGateway6 {
  readonly http = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => this.handle(req, res, body));
  });
  readonly ssdp = dgram.createSocket('udp6');
  readonly calls: Array<{ action: string; args: Record<string, string> }> = [];
  readonly holes = new Map<number, { client: string; port: number; protocol: string; leaseS: number }>();
  serviceType: string = FIREWALL6;
  /** Replaces the SOAP answer when set. */
  answer: ((action: string) => [number, string]) | null = null;
  private nextId = 1;

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.http.listen(0, '::1', r));
    await new Promise<void>((r) => this.ssdp.bind(0, '::1', r));
    this.ssdp.on('message', (_m, from) => this.ssdp.send(ssdpReply(this.location, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'), from.port, from.address));
  }

  get location(): string {
    return `http://[::1]:${(this.http.address() as AddressInfo).port}/rootDesc.xml`;
  }

  get ssdpPort(): number {
    return this.ssdp.address().port;
  }

  reset(): void {
    this.calls.length = 0;
    this.holes.clear();
    this.serviceType = FIREWALL6;
    this.answer = null;
  }

  async close(): Promise<void> {
    this.ssdp.close();
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const reply = (status: number, xml: string): void => void res.writeHead(status, { 'Content-Type': 'text/xml' }).end(xml);
    if (req.method === 'GET') return reply(200, descriptionXml({ serviceType: this.serviceType, controlUrl: '/ctl/IP6FCtl' }));
    const action = /#(\w+)"?$/.exec(String(req.headers.soapaction ?? ''))?.[1] ?? '';
    const args: Record<string, string> = {};
    for (const m of body.matchAll(/<(\w+)>([^<]*)<\/\1>/g)) args[m[1]!] = m[2]!;
    this.calls.push({ action, args });
    if (this.answer) return reply(...this.answer(action));
    const sender = (req.socket.remoteAddress ?? '').toLowerCase();
    switch (action) {
      case 'AddPinhole': {
        // As miniupnpd: a control point opens holes only to itself, above port 1024, with a lease of 1..86400 s.
        if (args.InternalClient !== sender || Number(args.InternalPort) < 1024) return reply(500, soapFault(606, 'Action not authorized'));
        if (!(Number(args.LeaseTime) >= 1 && Number(args.LeaseTime) <= 86400)) return reply(500, soapFault(402, 'Invalid Args'));
        const id = this.nextId++;
        this.holes.set(id, { client: args.InternalClient!, port: Number(args.InternalPort), protocol: args.Protocol!, leaseS: Number(args.LeaseTime) });
        return reply(200, soapResponse(action, FIREWALL6, { UniqueID: String(id) }));
      }
      case 'UpdatePinhole':
      case 'DeletePinhole': {
        const id = Number(args.UniqueID);
        if (!this.holes.has(id)) return reply(500, soapFault(704, 'NoSuchEntry'));
        if (action === 'DeletePinhole') this.holes.delete(id);
        else this.holes.get(id)!.leaseS = Number(args.NewLeaseTime);
        return reply(200, soapResponse(action, FIREWALL6, {}));
      }
      default:
        return reply(500, soapFault(401, 'Invalid Action'));
    }
  }
}

describe('IPv6 pinholes against a fake gateway on [::1]', () => {
  let gateway: FakeGateway6;
  let addresses: LocalIpv6[];

  const client = (): PinholeClient =>
    new PinholeClient({
      ssdpTarget: { address: '::1', port: gateway.ssdpPort },
      addresses: () => addresses,
      usable: (address) => address === '::1',
      searchTimeoutMs: 1500,
      requestTimeoutMs: 1000,
    });

  before(async () => {
    gateway = new FakeGateway6();
    await gateway.listen();
  });

  after(() => gateway.close());

  beforeEach(() => {
    gateway.reset();
    addresses = [{ address: '::1', interfaceName: 'lo' }];
  });

  test('finds the gateway over IPv6, opens a TCP pinhole to its own address, renews it and deletes it', async () => {
    const pinholes = client();
    const hole = await pinholes.map(request);
    assert.deepEqual(
      { method: hole.method, client: hole.internalClient, external: `${hole.externalAddress} ${hole.externalPort}`, lifetimeS: hole.lifetimeS, gateway: hole.gateway },
      { method: 'pinhole', client: '::1', external: '::1 22100', lifetimeS: 3600, gateway: gateway.location },
    );
    assert.deepEqual(gateway.calls[0], {
      action: 'AddPinhole',
      args: { RemoteHost: '', RemotePort: '0', InternalClient: '::1', InternalPort: '22100', Protocol: '6', LeaseTime: '3600' },
    });
    const id = pinholes.pinholeId(hole)!;
    const renewed = await pinholes.renew(hole);
    assert.deepEqual(gateway.calls[1], { action: 'UpdatePinhole', args: { UniqueID: String(id), NewLeaseTime: '3600' } });
    await pinholes.unmap(renewed);
    assert.deepEqual(gateway.calls[2], { action: 'DeletePinhole', args: { UniqueID: String(id) } });
    assert.equal(gateway.holes.size, 0);
  });

  test('UDP is protocol 17; a permanent or over-long lease asks for the longest the service allows (86400 s)', async () => {
    const pinholes = client();
    const udp = await pinholes.map({ ...request, protocol: 'UDP', leaseS: 0 });
    const long = await pinholes.map({ ...request, internalPort: 22101, leaseS: 7 * 86400 });
    assert.deepEqual([...gateway.holes.values()].map((h) => [h.protocol, h.leaseS]), [['17', 86400], ['6', 86400]]);
    assert.deepEqual([udp.lifetimeS, long.lifetimeS], [86400, 86400]);
  });

  test('an address that went away: renewal deletes the old hole and fails, and the port mapper opens a new one', async () => {
    const pinholes = client();
    const hole = await pinholes.map(request);
    addresses = [];
    await assert.rejects(pinholes.renew(hole), /no longer an address of this host/);
    assert.equal(gateway.holes.size, 0, 'the old pinhole was deleted');

    // Through PortMapper: a renewal the router refuses (its pinhole expired) leads to a fresh AddPinhole.
    addresses = [{ address: '::1', interfaceName: 'lo' }];
    const changes: Array<string | null> = [];
    const mapper = new PortMapper({ clients: [client()], request: { ...request, leaseS: 1 }, onChange: (m) => changes.push(m?.externalAddress ?? null) });
    await mapper.open();
    await mapper.settled();
    const first = [...gateway.holes.keys()];
    gateway.holes.clear(); // the router forgot it: UpdatePinhole gets 704 NoSuchEntry
    // The mapper has the new hole once it says so (the router holds it a moment before its answer arrives).
    await waitFor(async () => changes.length === 3 && gateway.holes.size === 1 && ![...gateway.holes.keys()].some((id) => first.includes(id)), 'a new pinhole after the failed renewal');
    assert.ok(gateway.calls.some((c) => c.action === 'UpdatePinhole'));
    await mapper.close();
    assert.equal(gateway.holes.size, 0, 'closed: the pinhole is deleted');
    assert.deepEqual(changes, ['::1', null, '::1'], 'the hole went and came back');
  });

  test('refusals are errors with the reason: no firewall service, not authorized, a broken UniqueID, no global address, an IPv4-only listener', async () => {
    gateway.serviceType = 'urn:schemas-upnp-org:service:WANIPConnection:2';
    await assert.rejects(client().map(request), /no WANIPv6FirewallControl service/);
    gateway.serviceType = FIREWALL6;

    await assert.rejects(client().map({ ...request, internalPort: 80 }), (err: unknown) => err instanceof UpnpFault && err.upnpCode === 606);
    gateway.answer = () => [200, soapResponse('AddPinhole', FIREWALL6, { UniqueID: 'x1' })];
    await assert.rejects(client().map(request), (err: unknown) => isFerryError(err) && err.code === 'PROTOCOL' && /UniqueID/.test(err.message));
    gateway.answer = null;

    addresses = [];
    await assert.rejects(client().map(request), /no global IPv6 address on this host/);
    addresses = [{ address: '::1', interfaceName: 'lo' }];
    await assert.rejects(client().map({ ...request, internalHost: '192.168.1.20' }), /IPv4 192\.168\.1\.20 only/);
    assert.equal(gateway.holes.size, 0);
  });
});
