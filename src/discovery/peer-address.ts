// HOST:PORT text for discovered addresses (IPv6 in brackets), in the same canonical form the
// connection manager uses, and the slice of the connection manager discovery talks to.

import type { PeerExchangeMessage } from '../protocol/index.js';
import { formatAddress, parseAddress, type HostPort } from '../util/address.js';

export type { HostPort };

/**
 * The address, or null when it is not HOST:PORT with a port in 1..65535; a zone (`[fe80::1%eth0]:PORT`)
 * is kept on link-local IPv6 only, its case untouched. Same rules as the connection manager's.
 */
export function parsePeerAddress(text: string): HostPort | null {
  try {
    return parseAddress(text);
  } catch {
    return null;
  }
}

export const formatPeerAddress = formatAddress;

/** The canonical text of an address, or null when malformed. */
export function normalizePeerAddress(text: string): string | null {
  const parsed = parsePeerAddress(text);
  return parsed ? formatAddress(parsed) : null;
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
