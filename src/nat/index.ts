// Port mapping on the home router (UPnP IGD, NAT-PMP): what the daemon uses.

export { PortMapper, DEFAULT_LEASE_S, type PortMapperOptions, type PortMapperReport, type PortMapperState } from './port-mapper.js';
export { UpnpClient, type UpnpClientOptions } from './upnp.js';
export { NatPmpClient, NATPMP_PORT, type NatPmpOptions } from './natpmp.js';
export { defaultGateway, parseDefaultGateway } from './gateway.js';
export type { Mapping, MappingClient, MappingMethod, MappingProtocol, MapRequest } from './types.js';
export {
  StunClient, dgramPort, decodeBindingResponse, encodeBindingRequest, isStunMessage, STUN_MAGIC_COOKIE,
  type DatagramPort, type StunClientOptions, type UdpEndpoint,
} from './stun.js';
export { TURN_PASSWORD_MASK, TurnClient, maskTurnUrl, parseTurnUrl, turnServerLabel, type TurnClientOptions, type TurnServer, type TurnState } from './turn.js';
export { PinholeClient, globalIpv6Addresses, isGlobalIpv6, type LocalIpv6, type PinholeClientOptions } from './pinhole.js';
