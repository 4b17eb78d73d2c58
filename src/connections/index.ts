// Public API of connections/: the connection manager (listen, dial, one connection per device pair) and its helpers.

export {
  CLOSE_DUPLICATE,
  CLOSE_SUPERSEDED,
  CLOSE_RECONNECT,
  CLOSE_SHUTDOWN,
  ConnectionManager,
  DEFAULT_BACKOFF,
  SOURCE_INCOMING,
  UDP_DIAL_DELAY_MS,
  UDP_PROBE_MS,
  SOURCE_KNOWN,
  type ConnectionManagerOptions,
  type EstablishedPeer,
} from './connection-manager.js';
export { formatAddress, normalizeAddress, parseAddress, socketAddress, type HostPort } from '../util/address.js';
export { prefersCandidate, type Direction, type LinkFacts } from './duplicates.js';
export { dialTls, type DialOptions } from './dial.js';
export { linkOf, type LinkPath } from './udp-transport.js';
export type { AddressStatus } from './known-address.js';
export { MAX_PENDING_HANDSHAKES, PeerListener, type PeerListenerOptions } from './listener.js';
export { certificateDeviceId } from './peer-id.js';
