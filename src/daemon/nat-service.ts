// The port-mapping service: maps the sync port on the home router and publishes the result as the daemon's reachability.

import { isIPv4 } from 'node:net';
import { NatPmpClient, PinholeClient, PortMapper, UpnpClient, type MappingProtocol, type PortMapperReport } from '../nat/index.js';
import { Resource } from '../util/resource.js';
import type { Service, ServiceContext, ServiceFactory } from './services.js';
import { formatAddress, isLoopback } from '../util/address.js';

const NO_MAPPING = 'no port mapping';

export class NatService extends Resource implements Service {
  readonly name = 'nat';
  private readonly mapper: PortMapper | null;
  /** The UDP port (µTP, STUN) mapped to the same external port as TCP, once TCP is mapped. */
  private udpMapper: PortMapper | null = null;
  /** IPv6 firewall pinholes (UPnP IGD v2) to the sync port, TCP and UDP: independent of the IPv4 mapping. */
  private readonly pinholes = new Map<MappingProtocol, PortMapper>();
  /** The TCP pinhole's address, as given to reachability (to take back when it goes). */
  private pinholeAt: { host: string; port: number } | null = null;
  private readonly skipped: string | null;

  constructor(private readonly context: ServiceContext) {
    super();
    const logger = context.logger.child('nat');
    const { listen } = context;
    // A listener on loopback cannot be reached through the router whatever it maps.
    this.skipped = isLoopback(listen.host) ? `listening on ${listen.host} only` : null;
    this.mapper = this.skipped
      ? null
      : new PortMapper({
          clients: [new UpnpClient({ logger: logger.child('upnp') }), new NatPmpClient({ logger: logger.child('natpmp') })],
          request: {
            protocol: 'TCP',
            internalPort: listen.port,
            ...(listen.host !== '0.0.0.0' && listen.host !== '::' ? { internalHost: listen.host } : {}),
            description: `Ferry ${context.identity.shortId}`,
          },
          logger,
          onChange: (mapping) => {
            if (mapping) context.reachability.set({ host: mapping.externalAddress, port: mapping.externalPort }, mapping.method);
            else context.reachability.set(null, NO_MAPPING);
          },
        });
  }

  protected async _open(): Promise<void> {
    this.context.reachability.set(null, NO_MAPPING);
    await this.mapper?.open();
    await this.openPinholes();
    // Trackers wait for the first attempt (bounded), so they announce the mapped port from the start.
    if (this.mapper) void this.mapper.settled().finally(() => {
      this.context.reachability.mappingAttemptDone();
      void this.mapUdp();
    });
    else this.context.reachability.mappingAttemptDone();
  }

  /** Maps the sync port's UDP socket to the external port TCP got: peers dial both at one address. */
  private async mapUdp(): Promise<void> {
    const tcp = this.mapper?.current();
    if (!tcp || this.closed || !this.context.connections.udpSocket()) return;
    const { listen, identity } = this.context;
    const logger = this.context.logger.child('nat');
    this.udpMapper = new PortMapper({
      clients: [new UpnpClient({ logger: logger.child('upnp') }), new NatPmpClient({ logger: logger.child('natpmp') })],
      request: {
        protocol: 'UDP',
        internalPort: listen.port,
        externalPort: tcp.externalPort,
        ...(listen.host !== '0.0.0.0' && listen.host !== '::' ? { internalHost: listen.host } : {}),
        description: `Ferry ${identity.shortId} UDP`,
      },
      logger,
    });
    await this.udpMapper.open();
  }

  /**
   * Asks the router to open its IPv6 firewall to the sync port (TCP and, when the UDP transport runs, UDP), so
   * peers reach this device at its global IPv6 address with no punching. Not for a listener on an IPv4 address.
   */
  private async openPinholes(): Promise<void> {
    const { listen, identity, reachability } = this.context;
    if (this.skipped || (isIPv4(listen.host) && listen.host !== '0.0.0.0')) return;
    const logger = this.context.logger.child('nat');
    const protocols: MappingProtocol[] = this.context.connections.udpSocket() ? ['TCP', 'UDP'] : ['TCP'];
    for (const protocol of protocols) {
      const mapper = new PortMapper({
        clients: [new PinholeClient({ logger: logger.child('pinhole') })],
        request: {
          protocol,
          internalPort: listen.port,
          ...(listen.host !== '0.0.0.0' && listen.host !== '::' ? { internalHost: listen.host } : {}),
          description: `Ferry ${identity.shortId}${protocol === 'UDP' ? ' UDP' : ''}`,
        },
        logger,
        // TCP's pinhole is the address peers are told of (the UDP one has the same address and port).
        onChange: protocol === 'TCP' ? (hole) => {
          const previous = this.pinholeAt;
          if (previous) reachability.forget('pinhole', previous);
          this.pinholeAt = hole ? { host: hole.externalAddress, port: hole.externalPort } : null;
          if (this.pinholeAt) reachability.learn('pinhole', this.pinholeAt, hole!.gateway);
        } : undefined,
      });
      this.pinholes.set(protocol, mapper);
      await mapper.open();
    }
  }

  protected async _close(): Promise<void> {
    await Promise.all([...this.pinholes.values()].map((mapper) => mapper.close()));
    if (this.pinholeAt) this.context.reachability.forget('pinhole', this.pinholeAt);
    this.pinholeAt = null;
    await this.udpMapper?.close();
    await this.mapper?.close();
    this.context.reachability.set(null, NO_MAPPING);
  }

  report(): PortMapperReport & { reachable: string; method: string | null; udp?: PortMapperReport; pinhole?: { tcp?: PortMapperReport; udp?: PortMapperReport } } {
    const { external, method } = this.context.reachability;
    const base: PortMapperReport = this.mapper?.report() ?? {
      state: 'idle',
      method: null,
      external: null,
      internalPort: this.context.listen.port,
      protocol: 'TCP',
      gateway: null,
      lifetimeS: null,
      renewAt: null,
      error: this.skipped,
    };
    return {
      ...base,
      reachable: external ? formatAddress(external) : NO_MAPPING,
      method: external ? method : null,
      ...(this.udpMapper ? { udp: this.udpMapper.report() } : {}),
      ...(this.pinholes.size
        ? { pinhole: { tcp: this.pinholes.get('TCP')?.report(), ...(this.pinholes.has('UDP') ? { udp: this.pinholes.get('UDP')!.report() } : {}) } }
        : {}),
    };
  }
}

export const natServiceFactory: ServiceFactory = (context) => (context.settings.nat ? new NatService(context) : null);
