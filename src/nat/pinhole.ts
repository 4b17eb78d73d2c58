// IPv6 pinholes by UPnP IGD v2 (WANIPv6FirewallControl): a router that routes IPv6 keeps a stateful firewall
// in front of its LAN instead of a NAT, and miniupnpd (among others) opens holes in it on request. The search
// and the SOAP calls go over IPv6 (routers take pinhole requests only from the address the hole is for):
// SSDP on ff02::c from each global address, AddPinhole to this device's own address with a lease,
// UpdatePinhole to renew, DeletePinhole on close. Used by PortMapper like the IPv4 methods.

import { isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { FerryError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { addPinhole, deletePinhole, fetchIgdService, FIREWALL6_SERVICE_TYPES, MAX_PINHOLE_LEASE_S, updatePinhole, type IgdService } from './igd.js';
import { searchGateways, type SsdpGateway } from './ssdp.js';
import type { MapRequest, Mapping, MappingClient } from './types.js';

/** Interfaces searched at once; a host with more is unusual, and the rest are left out. */
export const MAX_PINHOLE_INTERFACES = 8;

export interface LocalIpv6 {
  address: string;
  interfaceName: string;
}

export interface PinholeClientOptions {
  /** How long SSDP waits for gateways on each interface. @default 3000 */
  searchTimeoutMs?: number;
  /** Deadline of each HTTP exchange with the router. @default 5000 */
  requestTimeoutMs?: number;
  /** Where M-SEARCH goes (tests: a responder on loopback). @default ff02::c on each interface */
  ssdpTarget?: { address: string; port: number };
  /** This host's global IPv6 addresses (tests). @default globalIpv6Addresses() */
  addresses?: () => LocalIpv6[];
  /** Which of this host's addresses a pinhole may be for (tests: loopback). @default isGlobalIpv6 */
  usable?: (address: string) => boolean;
  logger?: Logger;
}

interface PinholeState {
  service: IgdService;
  id: number;
  leaseS: number;
}

/** Global unicast IPv6 (2000::/3): what a router's firewall guards and a peer elsewhere can dial. */
export function isGlobalIpv6(address: string): boolean {
  const plain = address.replace(/%.*$/, '');
  if (!isIPv6(plain) || plain.startsWith('::')) return false;
  const first = parseInt(plain.split(':')[0]!, 16);
  return (first & 0xe000) === 0x2000;
}

/** This host's global IPv6 addresses with their interfaces, first address of each interface first. */
export function globalIpv6Addresses(): LocalIpv6[] {
  const out: LocalIpv6[] = [];
  for (const [interfaceName, infos] of Object.entries(networkInterfaces())) {
    for (const info of infos ?? []) {
      if (info.family === 'IPv6' && !info.internal && isGlobalIpv6(info.address)) out.push({ address: info.address.toLowerCase(), interfaceName });
    }
  }
  return out;
}

export class PinholeClient implements MappingClient {
  readonly method = 'pinhole';
  private readonly log: Logger;
  private readonly searchTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly states = new WeakMap<Mapping, PinholeState>();

  constructor(private readonly options: PinholeClientOptions = {}) {
    this.log = options.logger ?? silentLogger;
    this.searchTimeoutMs = options.searchTimeoutMs ?? 3000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
  }

  /** The addresses to search from: the listener's own when it is bound to a global IPv6 address, else one per interface. */
  private sources(request: MapRequest): LocalIpv6[] {
    const all = (this.options.addresses ?? globalIpv6Addresses)();
    const host = request.internalHost?.toLowerCase();
    if (host && isIPv6(host) && host !== '::') return all.filter((a) => a.address === host);
    const perInterface = new Map<string, LocalIpv6>();
    for (const a of all) if (!perInterface.has(a.interfaceName)) perInterface.set(a.interfaceName, a);
    return [...perInterface.values()].slice(0, MAX_PINHOLE_INTERFACES);
  }

  async map(request: MapRequest, signal?: AbortSignal): Promise<Mapping> {
    const host = request.internalHost;
    if (host && !isIPv6(host) && host !== '0.0.0.0') throw new FerryError('REQUEST_FAILED', `listening on IPv4 ${host} only: no IPv6 pinhole`);
    const sources = this.sources(request);
    if (sources.length === 0) throw new FerryError('REQUEST_FAILED', 'no global IPv6 address on this host');
    const found = await Promise.all(
      sources.map((source) =>
        searchGateways({
          timeoutMs: this.searchTimeoutMs,
          bindAddress: source.address,
          interfaceName: source.interfaceName,
          target: this.options.ssdpTarget,
          signal,
          logger: this.log,
        }),
      ),
    );
    if (signal?.aborted) throw new FerryError('ABORTED', 'operation aborted');
    const gateways: SsdpGateway[] = [];
    for (const gateway of found.flat()) if (!gateways.some((g) => g.location.href === gateway.location.href)) gateways.push(gateway);
    if (gateways.length === 0) {
      throw new FerryError('TIMEOUT', `no UPnP gateway answered over IPv6 in ${this.searchTimeoutMs} ms (from ${sources.map((s) => s.address).join(', ')})`);
    }
    let lastError: unknown;
    for (const gateway of gateways) {
      try {
        const service = await fetchIgdService(gateway.location, { timeoutMs: this.requestTimeoutMs, signal }, FIREWALL6_SERVICE_TYPES);
        return await this.openOn(service, request, signal);
      } catch (err) {
        if (signal?.aborted) throw err;
        lastError = err;
        this.log.info('no IPv6 pinhole on this gateway', { location: gateway.location.href, err: err as Error });
      }
    }
    throw lastError;
  }

  private async openOn(service: IgdService, request: MapRequest, signal?: AbortSignal): Promise<Mapping> {
    // The router lets a control point open holes only to the address it speaks from: that one, as the router sees it.
    const internalClient = service.localAddress.replace(/%.*$/, '').toLowerCase();
    if (!isIPv6(internalClient) || !(this.options.usable ?? isGlobalIpv6)(internalClient)) throw new FerryError('REQUEST_FAILED', `no global IPv6 address toward the router (${internalClient})`);
    const leaseS = request.leaseS > 0 ? Math.min(request.leaseS, MAX_PINHOLE_LEASE_S) : MAX_PINHOLE_LEASE_S;
    const id = await addPinhole(
      service,
      { protocol: request.protocol, internalClient, internalPort: request.internalPort, leaseS },
      { timeoutMs: this.requestTimeoutMs, signal },
    );
    const mapping: Mapping = {
      method: 'pinhole',
      protocol: request.protocol,
      internalPort: request.internalPort,
      internalClient,
      externalAddress: internalClient,
      externalPort: request.internalPort,
      lifetimeS: leaseS,
      gateway: service.location.href,
    };
    this.states.set(mapping, { service, id, leaseS });
    return mapping;
  }

  async renew(mapping: Mapping, signal?: AbortSignal): Promise<Mapping> {
    const state = this.states.get(mapping);
    if (!state) throw new FerryError('INTERNAL', 'not a pinhole made by this client');
    const call = { timeoutMs: this.requestTimeoutMs, signal };
    // A new prefix from the ISP (or a privacy address retired): the hole leads nowhere; the mapper opens a new one.
    if (!(this.options.addresses ?? globalIpv6Addresses)().some((a) => a.address === mapping.internalClient)) {
      await deletePinhole(state.service, state.id, call).catch(() => undefined);
      throw new FerryError('REQUEST_FAILED', `${mapping.internalClient} is no longer an address of this host`);
    }
    await updatePinhole(state.service, state.id, state.leaseS, call);
    const renewed: Mapping = { ...mapping };
    this.states.set(renewed, state);
    return renewed;
  }

  async unmap(mapping: Mapping, signal?: AbortSignal): Promise<void> {
    const state = this.states.get(mapping);
    if (!state) throw new FerryError('INTERNAL', 'not a pinhole made by this client');
    await deletePinhole(state.service, state.id, { timeoutMs: this.requestTimeoutMs, signal });
  }

  /** The router's ID of `mapping`'s pinhole (for reports and tests). */
  pinholeId(mapping: Mapping): number | undefined {
    return this.states.get(mapping)?.id;
  }
}
