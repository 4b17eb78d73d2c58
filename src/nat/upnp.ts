// Port mapping by UPnP IGD: SSDP search, WAN service, external address, AddPortMapping with a lease, removal.

import { isIPv4 } from 'node:net';
import { FerryError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { addPortMapping, deletePortMapping, fetchIgdService, getExternalAddress, UpnpFault, type IgdService } from './igd.js';
import { searchGateways } from './ssdp.js';
import type { MapRequest, Mapping, MappingClient } from './types.js';

/** UPnP error codes that mean "that external port is taken": try the next one. */
const PORT_TAKEN = new Set([718, 729]);
const ONLY_PERMANENT_LEASES = 725;
const SAME_PORT_REQUIRED = 724;

export interface UpnpClientOptions {
  /** How long SSDP waits for gateways. @default 3000 */
  searchTimeoutMs?: number;
  /** Deadline of each HTTP exchange with the router. @default 5000 */
  requestTimeoutMs?: number;
  /** External ports tried, starting at the one asked for. @default 16 */
  maxPortTries?: number;
  /** Where M-SEARCH goes (tests: a responder on loopback). */
  ssdpTarget?: { address: string; port: number };
  logger?: Logger;
}

interface UpnpState {
  service: IgdService;
  request: MapRequest;
}

function nextPort(port: number): number {
  return port >= 65535 ? 1024 : port + 1;
}

export class UpnpClient implements MappingClient {
  readonly method = 'upnp';
  private readonly log: Logger;
  private readonly searchTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxPortTries: number;
  private readonly states = new WeakMap<Mapping, UpnpState>();

  constructor(private readonly options: UpnpClientOptions = {}) {
    this.log = options.logger ?? silentLogger;
    this.searchTimeoutMs = options.searchTimeoutMs ?? 3000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.maxPortTries = options.maxPortTries ?? 16;
  }

  async map(request: MapRequest, signal?: AbortSignal): Promise<Mapping> {
    const gateways = await searchGateways({
      timeoutMs: this.searchTimeoutMs,
      target: this.options.ssdpTarget,
      bindAddress: request.internalHost,
      signal,
      logger: this.log,
    });
    if (signal?.aborted) throw new FerryError('ABORTED', 'operation aborted');
    if (gateways.length === 0) throw new FerryError('TIMEOUT', `no UPnP gateway answered in ${this.searchTimeoutMs} ms`);
    let lastError: unknown;
    for (const gateway of gateways) {
      try {
        const service = await fetchIgdService(gateway.location, { timeoutMs: this.requestTimeoutMs, signal });
        this.log.debug('gateway service', { location: gateway.location.href, service: service.serviceType, control: service.controlUrl.href });
        return await this.mapOn(service, request, signal);
      } catch (err) {
        if (signal?.aborted) throw err;
        lastError = err;
        this.log.warn('UPnP gateway not usable', { location: gateway.location.href, err: err as Error });
      }
    }
    throw lastError;
  }

  private async mapOn(service: IgdService, request: MapRequest, signal?: AbortSignal): Promise<Mapping> {
    const call = { timeoutMs: this.requestTimeoutMs, signal };
    const externalAddress = await getExternalAddress(service, call);
    const internalClient = request.internalHost && isIPv4(request.internalHost) && request.internalHost !== '0.0.0.0'
      ? request.internalHost
      : service.localAddress;
    if (!isIPv4(internalClient)) throw new FerryError('INTERNAL', `no IPv4 address toward the router (${internalClient})`);

    let leaseS = request.leaseS;
    let externalPort = request.externalPort;
    for (let tries = 0; tries < this.maxPortTries; ) {
      try {
        await addPortMapping(service, { ...request, externalPort, internalClient, leaseS }, call);
        const mapping: Mapping = {
          method: 'upnp',
          protocol: request.protocol,
          internalPort: request.internalPort,
          internalClient,
          externalAddress,
          externalPort,
          lifetimeS: leaseS,
          gateway: service.location.href,
        };
        this.states.set(mapping, { service, request: { ...request, leaseS } });
        return mapping;
      } catch (err) {
        if (!(err instanceof UpnpFault)) throw err;
        if (err.upnpCode === ONLY_PERMANENT_LEASES && leaseS !== 0) {
          this.log.info('router takes only permanent leases; mapping without one', { port: externalPort });
          leaseS = 0;
          continue;
        }
        if (err.upnpCode === SAME_PORT_REQUIRED && externalPort !== request.internalPort) {
          externalPort = request.internalPort;
          tries++;
          continue;
        }
        if (!PORT_TAKEN.has(err.upnpCode)) throw err;
        this.log.debug('external port taken; trying the next', { port: externalPort, code: err.upnpCode });
        externalPort = nextPort(externalPort);
        tries++;
      }
    }
    throw new FerryError('REQUEST_FAILED', `AddPortMapping: ${this.maxPortTries} external ports from ${request.externalPort} are taken`);
  }

  async renew(mapping: Mapping, signal?: AbortSignal): Promise<Mapping> {
    const state = this.states.get(mapping);
    if (!state) throw new FerryError('INTERNAL', 'not a mapping made by this UPnP client');
    const call = { timeoutMs: this.requestTimeoutMs, signal };
    const externalAddress = await getExternalAddress(state.service, call);
    await addPortMapping(
      state.service,
      { ...state.request, externalPort: mapping.externalPort, internalClient: mapping.internalClient },
      call,
    );
    const renewed: Mapping = { ...mapping, externalAddress };
    this.states.set(renewed, state);
    return renewed;
  }

  async unmap(mapping: Mapping, signal?: AbortSignal): Promise<void> {
    const state = this.states.get(mapping);
    if (!state) throw new FerryError('INTERNAL', 'not a mapping made by this UPnP client');
    await deletePortMapping(state.service, mapping, { timeoutMs: this.requestTimeoutMs, signal });
  }
}
