// Optional daemon services (port mapping, discovery): each built from a shared context, opened after
// the connection manager and closed before it. A service adds itself to SERVICE_FACTORIES below.

import type { ConnectionManager, EstablishedPeer } from '../connections/index.js';
import type { IndexStore } from '../index/store.js';
import type { DeviceIdentity, FolderKeys } from '../keys/index.js';
import type { IntroduceFailedMessage, IntroduceMessage, IntroduceRequestMessage, PeerExchangeMessage, RelayMessage } from '../protocol/index.js';
import type { Logger } from '../util/log.js';
import type { Resource } from '../util/resource.js';
import type { Reachability } from './reachability.js';
import type { Settings } from './settings.js';
import type { HostPort } from '../util/address.js';
import { natServiceFactory } from './nat-service.js';
import { discoveryServiceFactory } from './discovery-service.js';
import { stunServiceFactory } from './stun-service.js';
import { introduceServiceFactory } from './introduce-service.js';
import { turnServiceFactory } from './turn-service.js';
import { relayServiceFactory } from './relay-service.js';

export { Reachability } from './reachability.js';

export interface ServiceContext {
  settings: Settings;
  identity: DeviceIdentity;
  store: IndexStore;
  connections: ConnectionManager;
  /** The keys of the folders shared now (read each time: folders come and go). */
  folders: () => readonly FolderKeys[];
  /** Called when folders are added or removed. */
  onFoldersChanged: (listener: () => void) => () => void;
  /** The sync listener's bound address. */
  listen: HostPort;
  reachability: Reachability;
  logger: Logger;
}

export interface Service extends Resource {
  /** Shown under its name in `status --json`. */
  readonly name: string;
  report(): unknown;
  /** A connected peer's validated PeerExchange (discovery takes it). */
  onPeerExchange?(peer: EstablishedPeer, message: PeerExchangeMessage): void;
  /** A connected peer's validated IntroduceRequest / Introduce / IntroduceFailed (hole punching through a third device). */
  onIntroduce?(peer: EstablishedPeer, message: IntroduceRequestMessage | IntroduceMessage | IntroduceFailedMessage): void;
  /** A connected peer's validated relay message (the relay service takes it); throws PROTOCOL for a broken rule. */
  onRelayMessage?(peer: EstablishedPeer, message: RelayMessage): void;
  /** A connection reported to sessions has ended or was replaced. */
  onPeerClosed?(peer: EstablishedPeer): void;
}

export type ServiceFactory = (context: ServiceContext) => Service | null;

/** Settings the services are built from: a change to any of them rebuilds the services (live settings). */
export const SERVICE_SETTINGS: readonly (keyof Settings)[] = [
  'lan', 'nat', 'dht', 'trackers', 'trackerUrls', 'dhtBootstrap', 'stun', 'stunServers', 'turnServers',
];

/** Services in the order they open (port mapping before the discovery that announces its result). */
export const SERVICE_FACTORIES: ServiceFactory[] = [
  natServiceFactory,
  stunServiceFactory,
  turnServiceFactory,
  discoveryServiceFactory,
  introduceServiceFactory,
  relayServiceFactory,
];
