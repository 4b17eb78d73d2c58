// Peer addresses: the shared parser in util/ (discovery uses the same one).
export { formatAddress, normalizeAddress, parseAddress, socketAddress, type HostPort } from '../util/address.js';
