// The discovery service: LAN, trackers, DHT and peer exchange as the settings say, announcing the
// port mapping's external port when there is one, the DHT routing table kept in the home.

import { Discovery, type DhtState } from '../discovery/index.js';
import type { ServiceFactory } from './services.js';
import { isLoopback } from '../util/address.js';

/** Where the DHT's node ID and routing table are kept between runs (the index's settings). */
const DHT_STATE_KEY = 'dhtState';
const DHT6_STATE_KEY = 'dhtState6';

export const discoveryServiceFactory: ServiceFactory = (context) => {
  const { settings, store } = context;
  // A loopback listener (tests, a local trial) announces nothing to the LAN and asks no public DHT node.
  const loopbackOnly = isLoopback(context.listen.host);
  const bootstrap = loopbackOnly
    ? settings.dhtBootstrap.filter((address) => isLoopback(address.replace(/^\[/, '').split(/\]?:\d+$/)[0]!))
    : settings.dhtBootstrap;
  return new Discovery({
    deviceId: context.identity.id,
    connections: context.connections,
    folders: context.folders,
    onFoldersChanged: context.onFoldersChanged,
    listen: context.listen,
    sharedUdp: () => context.connections.udpSocket(),
    relays: () => context.connections.relaySockets(),
    external: () => context.reachability.external,
    // Relayed (TURN) addresses are ours at their exact port only (discovery takes them from the relays).
    externalAddresses: () => context.reachability.addresses().filter((at) => at.source !== 'turn'),
    // STUN asks from the shared socket when UDP is on (stun-service.ts): its answer is that socket's mapping.
    udpExternalPort: () => (context.connections.udpSocket() ? context.reachability.addresses().find((a) => a.source === 'stun')?.port : undefined),
    // Without a port-mapping service nothing is worth waiting for.
    mappingSettled: settings.nat ? () => context.reachability.mappingSettled : undefined,
    onExternalChanged: (listener) => context.reachability.onChange(listener),
    onExternalAddress: (at) => context.reachability.learn('dht', at, 'DHT responders'),
    lan: settings.lan && !loopbackOnly ? {} : false,
    trackers: settings.trackers ? { urls: settings.trackerUrls } : false,
    dht: settings.dht
      ? {
          bootstrap,
          loadState: () => store.getSetting<DhtState>(DHT_STATE_KEY),
          saveState: (state) => store.putSetting(DHT_STATE_KEY, state),
          loadState6: () => store.getSetting<DhtState>(DHT6_STATE_KEY),
          saveState6: (state) => store.putSetting(DHT6_STATE_KEY, state),
        }
      : false,
    logger: context.logger.child('discovery'),
  });
};
