// Public API of discovery/: LAN announcements, BitTorrent trackers and DHT, peer exchange, and the address book they feed.

export { ANY_FOLDER, AddressBook, DISCOVERY_SOURCES, type BookEntry, type DiscoverySource } from './address-book.js';
export { Discovery, type DiscoveryOptions } from './discovery.js';
export { DhtDiscovery, type DhtState } from './dht.js';
export { krpcProblem, GuardedSocket } from './dht-guard.js';
export { LAN_GROUP_V4, LAN_GROUP_V6, LAN_PORT, LanDiscovery } from './lan.js';
export { decodeAnnouncement, encodeAnnouncement, MAX_LAN_PACKET_BYTES } from './lan-packet.js';
export { PeerExchange } from './pex.js';
export { TrackerAnnouncer } from './trackers.js';
export { announceHttp } from './tracker-http.js';
export { UdpTrackerClient } from './tracker-udp.js';
export { clampInterval, parseCompactPeers, parseHttpAnnounce, TrackerRefusedError } from './tracker-response.js';
export { isPrivateAddress, localAddresses, unmapIpv4 } from './net-addresses.js';
