// An Internet Gateway Device's WAN connection service: description fetch and parse, and its SOAP actions.

import { isIPv4 } from 'node:net';
import { FerryError } from '../errors.js';
import { httpRequest } from './http.js';
import { childText, findAll, findFirst, parseXml, type XmlElement } from './xml.js';

/** The services that can map ports, best first. */
export const WAN_SERVICE_TYPES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
] as const;

/** IGD v2's IPv6 firewall service: pinholes for inbound IPv6 (the router routes IPv6; it does not translate it). */
export const FIREWALL6_SERVICE_TYPES = ['urn:schemas-upnp-org:service:WANIPv6FirewallControl:1'] as const;

export const MAX_DESCRIPTION_BYTES = 128 * 1024;
export const MAX_SOAP_RESPONSE_BYTES = 16 * 1024;

export interface IgdService {
  serviceType: string;
  controlUrl: URL;
  /** The device description's URL. */
  location: URL;
  /** This host's address as the router sees it (the internal client of a mapping). */
  localAddress: string;
}

export interface IgdCallOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

/** A SOAP fault from the router, with its UPnP error code (718 = the port is taken, 725 = only permanent leases). */
export class UpnpFault extends FerryError {
  constructor(
    readonly upnpCode: number,
    readonly description: string,
    action: string,
  ) {
    super('REQUEST_FAILED', `${action}: router answered UPnP error ${upnpCode} ${description}`.trim());
  }
}

function sameHost(a: URL, b: URL): boolean {
  return a.hostname === b.hostname;
}

/** Fetches the device description at `location` and finds the service to control: of `types`, the first listed. */
export async function fetchIgdService(location: URL, options: IgdCallOptions, types: readonly string[] = WAN_SERVICE_TYPES): Promise<IgdService> {
  const response = await httpRequest(location, { ...options, maxBodyBytes: MAX_DESCRIPTION_BYTES });
  if (response.status !== 200) throw new FerryError('PROTOCOL', `${location.href}: HTTP ${response.status}`);
  const root = parseXml(response.body);
  if (root.name !== 'root') throw new FerryError('PROTOCOL', `${location.href}: not a UPnP device description`);

  let base = location;
  const urlBase = childText(root, 'URLBase');
  if (urlBase) {
    try {
      const candidate = new URL(urlBase);
      if (candidate.protocol === 'http:' && sameHost(candidate, location)) base = candidate;
    } catch {
      // a broken URLBase: resolve against the description's own URL
    }
  }

  const services = findAll(root, 'service');
  for (const type of types) {
    const service = services.find((s) => childText(s, 'serviceType') === type);
    if (!service) continue;
    const control = childText(service, 'controlURL');
    if (!control) continue;
    let controlUrl: URL;
    try {
      controlUrl = new URL(control, base);
    } catch {
      continue;
    }
    if (controlUrl.protocol !== 'http:' || !sameHost(controlUrl, location)) {
      throw new FerryError('PROTOCOL', `${location.href}: control URL ${controlUrl.href} is not on the device`);
    }
    return { serviceType: type, controlUrl, location, localAddress: response.localAddress.replace(/^::ffff:/, '') };
  }
  const wanted = types === WAN_SERVICE_TYPES ? 'WANIPConnection or WANPPPConnection' : types.map((t) => t.split(':').at(-2)).join(' or ');
  throw new FerryError('PROTOCOL', `${location.href}: no ${wanted} service`);
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function soapEnvelope(serviceType: string, action: string, args: ReadonlyArray<readonly [string, string | number]>): string {
  const body = args.map(([name, value]) => `<${name}>${escapeXml(String(value))}</${name}>`).join('');
  return (
    '<?xml version="1.0"?>\r\n' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${escapeXml(serviceType)}">${body}</u:${action}></s:Body></s:Envelope>\r\n`
  );
}

/** Calls `action` with `args` (in order: some routers care); returns the response's out-arguments by name. */
export async function soapCall(
  service: IgdService,
  action: string,
  args: ReadonlyArray<readonly [string, string | number]>,
  options: IgdCallOptions,
): Promise<Record<string, string>> {
  const response = await httpRequest(service.controlUrl, {
    ...options,
    method: 'POST',
    maxBodyBytes: MAX_SOAP_RESPONSE_BYTES,
    headers: {
      'Content-Type': 'text/xml; charset="utf-8"',
      SOAPAction: `"${service.serviceType}#${action}"`,
    },
    body: soapEnvelope(service.serviceType, action, args),
  });
  let envelope: XmlElement;
  try {
    envelope = parseXml(response.body);
  } catch (err) {
    throw new FerryError('PROTOCOL', `${action}: HTTP ${response.status} with an unreadable body (${(err as Error).message})`);
  }
  const fault = findFirst(envelope, 'Fault');
  if (response.status !== 200 || fault) {
    const upnpError = fault && findFirst(fault, 'UPnPError');
    const code = Number(upnpError && childText(upnpError, 'errorCode'));
    if (Number.isInteger(code) && code > 0) {
      throw new UpnpFault(code, (childText(upnpError!, 'errorDescription') ?? '').slice(0, 200), action);
    }
    throw new FerryError('REQUEST_FAILED', `${action}: router answered HTTP ${response.status} without a UPnP error code`);
  }
  const result = findFirst(envelope, `${action}Response`);
  if (!result) throw new FerryError('PROTOCOL', `${action}: no ${action}Response in the answer`);
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const child of result.children) out[child.name] = child.text.trim();
  return out;
}

export async function getExternalAddress(service: IgdService, options: IgdCallOptions): Promise<string> {
  const out = await soapCall(service, 'GetExternalIPAddress', [], options);
  const address = out.NewExternalIPAddress ?? '';
  if (!isIPv4(address)) {
    throw new FerryError('REQUEST_FAILED', `GetExternalIPAddress: router has no usable external address ('${address.slice(0, 60)}')`);
  }
  return address;
}

export interface UpnpMappingRequest {
  protocol: 'TCP' | 'UDP';
  externalPort: number;
  internalPort: number;
  internalClient: string;
  description: string;
  leaseS: number;
}

export async function addPortMapping(service: IgdService, m: UpnpMappingRequest, options: IgdCallOptions): Promise<void> {
  await soapCall(
    service,
    'AddPortMapping',
    [
      ['NewRemoteHost', ''],
      ['NewExternalPort', m.externalPort],
      ['NewProtocol', m.protocol],
      ['NewInternalPort', m.internalPort],
      ['NewInternalClient', m.internalClient],
      ['NewEnabled', 1],
      ['NewPortMappingDescription', m.description],
      ['NewLeaseDuration', m.leaseS],
    ],
    options,
  );
}

export async function deletePortMapping(
  service: IgdService,
  m: { protocol: 'TCP' | 'UDP'; externalPort: number },
  options: IgdCallOptions,
): Promise<void> {
  await soapCall(
    service,
    'DeletePortMapping',
    [
      ['NewRemoteHost', ''],
      ['NewExternalPort', m.externalPort],
      ['NewProtocol', m.protocol],
    ],
    options,
  );
}

/** IANA protocol numbers, as WANIPv6FirewallControl names protocols. */
const IP_PROTOCOL = { TCP: 6, UDP: 17 } as const;
/** The longest pinhole lease WANIPv6FirewallControl allows (seconds). */
export const MAX_PINHOLE_LEASE_S = 86400;

export interface PinholeRequest {
  protocol: 'TCP' | 'UDP';
  /** This device's IPv6 address (routers allow a control point to open holes only to itself). */
  internalClient: string;
  internalPort: number;
  leaseS: number;
}

function pinholeId(out: Record<string, string>, action: string): number {
  const text = out.UniqueID ?? '';
  const id = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(id >= 0 && id <= 65535)) throw new FerryError('PROTOCOL', `${action}: the router's UniqueID is not a number 0..65535 ('${text.slice(0, 20)}')`);
  return id;
}

/** Opens the firewall to `internalClient:internalPort` from anywhere; returns the pinhole's UniqueID. */
export async function addPinhole(service: IgdService, p: PinholeRequest, options: IgdCallOptions): Promise<number> {
  const out = await soapCall(
    service,
    'AddPinhole',
    [
      ['RemoteHost', ''],
      ['RemotePort', 0],
      ['InternalClient', p.internalClient],
      ['InternalPort', p.internalPort],
      ['Protocol', IP_PROTOCOL[p.protocol]],
      ['LeaseTime', p.leaseS],
    ],
    options,
  );
  return pinholeId(out, 'AddPinhole');
}

export async function updatePinhole(service: IgdService, id: number, leaseS: number, options: IgdCallOptions): Promise<void> {
  await soapCall(service, 'UpdatePinhole', [['UniqueID', id], ['NewLeaseTime', leaseS]], options);
}

export async function deletePinhole(service: IgdService, id: number, options: IgdCallOptions): Promise<void> {
  await soapCall(service, 'DeletePinhole', [['UniqueID', id]], options);
}
