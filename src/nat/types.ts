// What a port mapping is, and what every mapping method (UPnP IGD, NAT-PMP) offers the port mapper.

/** 'pinhole': an IPv6 firewall pinhole (UPnP IGD v2 WANIPv6FirewallControl); its external address is the device's own. */
export type MappingMethod = 'upnp' | 'natpmp' | 'pinhole';
export type MappingProtocol = 'TCP' | 'UDP';

export interface MapRequest {
  protocol: MappingProtocol;
  internalPort: number;
  /** The address the service listens on, if it is bound to one (else the address toward the router is used). */
  internalHost?: string;
  /** Asked for first; when taken, the next ports are tried. */
  externalPort: number;
  leaseS: number;
  description: string;
}

export interface Mapping {
  method: MappingMethod;
  protocol: MappingProtocol;
  internalPort: number;
  /** The internal address the router forwards to. */
  internalClient: string;
  externalAddress: string;
  externalPort: number;
  /** Lease the router granted, in seconds; 0 means permanent (removed only by us). */
  lifetimeS: number;
  /** The router: its description URL (UPnP) or address (NAT-PMP), for reports. */
  gateway: string;
}

export interface MappingClient {
  readonly method: MappingMethod;
  /** Finds a router and maps a port; throws when no router answers or it refuses. */
  map(request: MapRequest, signal?: AbortSignal): Promise<Mapping>;
  /** Extends the lease of `mapping` (the external address or port may come back different). */
  renew(mapping: Mapping, signal?: AbortSignal): Promise<Mapping>;
  /** Removes `mapping` from the router. */
  unmap(mapping: Mapping, signal?: AbortSignal): Promise<void>;
}
