// HOST:PORT text for discovered addresses (IPv6 in brackets), in the same canonical form the
// connection manager uses, and the slice of the connection manager discovery talks to.

import { isIP } from 'node:net';
import type { PeerExchangeMessage } from '../protocol/index.js';

export interface HostPort {
  host: string;
  port: number;
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)(?:%([^\]]*))?\]|([^\s:[\]%]+)):(\d{1,5})$/;
/** A zone (interface name or index), as src/connections/address.ts accepts it. */
const ZONE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** True for fe80::/10, the only addresses a zone is accepted on. */
function isLinkLocalV6(host: string): boolean {
  if (isIP(host) !== 6 || host.startsWith(':')) return false;
  return (parseInt(host.split(':')[0]!, 16) & 0xffc0) === 0xfe80;
}

/**
 * The address, or null when it is not HOST:PORT with a port in 1..65535; a zone (`[fe80::1%eth0]:PORT`)
 * is kept on link-local IPv6 only, its case untouched.
 */
export function parsePeerAddress(text: string): HostPort | null {
  const match = HOST_PORT.exec(text.trim());
  const port = match ? Number(match[4]) : NaN;
  if (!match || !(port >= 1 && port <= 65535)) return null;
  const [, v6, zone, name] = match;
  if (v6 === undefined) return { host: name!.toLowerCase(), port };
  const host = v6.toLowerCase();
  if (isIP(host) !== 6) return null;
  if (zone === undefined) return { host, port };
  if (!isLinkLocalV6(host) || !ZONE.test(zone)) return null;
  return { host: `${host}%${zone}`, port };
}

export function formatPeerAddress({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The canonical text of an address, or null when malformed. */
export function normalizePeerAddress(text: string): string | null {
  const parsed = parsePeerAddress(text);
  return parsed ? formatPeerAddress(parsed) : null;
}

/** What discovery needs of a connected peer (the connection manager's EstablishedPeer has it). */
export interface ConnectedPeer {
  deviceId: string;
  /** The remote HOST:PORT: the dialled address for outgoing connections. */
  address: string;
  direction: 'in' | 'out';
  connection: { readonly closed: boolean; send(message: PeerExchangeMessage): Promise<void> };
  handshake: { folders: ReadonlyArray<{ keys: { folderId: Buffer; folderIdHex: string } }> };
}

/** What discovery needs of the connection manager. */
export interface Dialler {
  addAddress(address: string, source: string): void;
  removeAddress(address: string): void;
  addresses(): Array<{ address: string; source: string; deviceId?: string; connected?: boolean; nextDialAtMs?: number }>;
  peers(): ConnectedPeer[];
}
