// Test doubles on loopback: an SSDP responder, an IGD's HTTP/SOAP server, and a NAT-PMP responder, each scriptable.

import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger, type Logger } from '../../src/util/log.js';

/** A logger that keeps its lines, to check that ignored input was logged. */
export function memoryLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ component: 'test', level: 'debug', sink: { write: (l) => void lines.push(l) } }), lines };
}

export function descriptionXml(options: { serviceType?: string; controlUrl?: string; urlBase?: string } = {}): string {
  const serviceType = options.serviceType ?? 'urn:schemas-upnp-org:service:WANIPConnection:2';
  return (
    '<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0">' +
    (options.urlBase ? `<URLBase>${options.urlBase}</URLBase>` : '') +
    '<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>' +
    '<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>' +
    '<controlURL>/ctl/L3F</controlURL></service></serviceList><deviceList><device>' +
    '<deviceType>urn:schemas-upnp-org:device:WANDevice:2</deviceType><deviceList><device>' +
    '<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:2</deviceType><serviceList><service>' +
    `<serviceType>${serviceType}</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>` +
    `<controlURL>${options.controlUrl ?? '/ctl/IPConn'}</controlURL></service></serviceList>` +
    '</device></deviceList></device></deviceList></device></root>'
  );
}

export function soapResponse(action: string, serviceType: string, out: Record<string, string>): string {
  const args = Object.entries(out).map(([k, v]) => `<${k}>${v}</${k}>`).join('');
  return (
    '<?xml version="1.0"?>\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
    `<u:${action}Response xmlns:u="${serviceType}">${args}</u:${action}Response></s:Body></s:Envelope>`
  );
}

export function soapFault(code: number, description: string): string {
  return (
    '<?xml version="1.0"?>\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>' +
    '<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>' +
    `<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode>` +
    `<errorDescription>${description}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`
  );
}

export interface SoapCall {
  action: string;
  args: Record<string, string>;
}

export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** An HTTP server on 127.0.0.1; `handler` may be swapped by each test. Answers like a small miniupnpd by default. */
export class FakeIgd {
  readonly server: http.Server;
  readonly calls: SoapCall[] = [];
  readonly mappings = new Map<number, { client: string; internalPort: number; leaseS: number }>();
  /** External ports another host holds: AddPortMapping on them gets UPnP error 718. */
  readonly taken = new Set<number>();
  externalAddress = '203.0.113.7';
  onlyPermanentLeases = false;
  serviceType = 'urn:schemas-upnp-org:service:WANIPConnection:2';
  handler: HttpHandler = (req, res, body) => this.defaultHandler(req, res, body);

  constructor() {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => this.handler(req, res, body));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get location(): string {
    return `http://127.0.0.1:${this.port}/rootDesc.xml`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Back to a well-behaved router with no mappings. */
  reset(): void {
    this.handler = (req, res, body) => this.defaultHandler(req, res, body);
    this.calls.length = 0;
    this.mappings.clear();
    this.taken.clear();
    this.onlyPermanentLeases = false;
    this.externalAddress = '203.0.113.7';
    this.serviceType = 'urn:schemas-upnp-org:service:WANIPConnection:2';
  }

  defaultHandler(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    if (req.method === 'GET' && req.url === '/rootDesc.xml') {
      res.writeHead(200, { 'Content-Type': 'text/xml' }).end(descriptionXml({ serviceType: this.serviceType }));
      return;
    }
    const action = /#(\w+)"?$/.exec(String(req.headers.soapaction ?? ''))?.[1] ?? '';
    const args: Record<string, string> = {};
    for (const m of body.matchAll(/<(New\w+)>([^<]*)<\/\1>/g)) args[m[1]!] = m[2]!;
    this.calls.push({ action, args });
    const reply = (status: number, xml: string): void => void res.writeHead(status, { 'Content-Type': 'text/xml' }).end(xml);
    switch (action) {
      case 'GetExternalIPAddress':
        return reply(200, soapResponse(action, this.serviceType, { NewExternalIPAddress: this.externalAddress }));
      case 'AddPortMapping': {
        const port = Number(args.NewExternalPort);
        const held = this.mappings.get(port);
        if (this.taken.has(port) || (held && held.client !== args.NewInternalClient)) return reply(500, soapFault(718, 'ConflictInMappingEntry'));
        if (this.onlyPermanentLeases && args.NewLeaseDuration !== '0') return reply(500, soapFault(725, 'OnlyPermanentLeasesSupported'));
        this.mappings.set(port, { client: args.NewInternalClient!, internalPort: Number(args.NewInternalPort), leaseS: Number(args.NewLeaseDuration) });
        return reply(200, soapResponse(action, this.serviceType, {}));
      }
      case 'DeletePortMapping':
        if (!this.mappings.delete(Number(args.NewExternalPort))) return reply(500, soapFault(714, 'NoSuchEntryInArray'));
        return reply(200, soapResponse(action, this.serviceType, {}));
      default:
        return reply(500, soapFault(401, 'Invalid Action'));
    }
  }
}

/** A UDP responder on 127.0.0.1 that answers each datagram with whatever `answer` returns (any number of replies). */
export class FakeUdp {
  readonly socket = dgram.createSocket('udp4');
  readonly received: Buffer[] = [];
  answer: (message: Buffer) => Buffer[] = () => [];

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
    this.socket.on('message', (message, rinfo) => {
      this.received.push(message);
      for (const reply of this.answer(message)) this.socket.send(reply, rinfo.port, rinfo.address);
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.socket.close(() => r()));
  }
}

export function ssdpReply(location: string, st = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'): Buffer {
  return Buffer.from(
    'HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n' +
      `ST: ${st}\r\nUSN: uuid:test::${st}\r\nEXT:\r\nSERVER: test UPnP/1.1 fake/1\r\nLOCATION: ${location}\r\n\r\n`,
  );
}
