// Peer addresses as text (HOST:PORT, IPv6 in brackets): parsing, canonical form, and a socket's remote end.

import { isIP } from 'node:net';
import { FerryError } from '../errors.js';

export interface HostPort {
  host: string;
  port: number;
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/;

/** Parses `HOST:PORT` (`[v6]:PORT` for IPv6); USAGE with a clear message when malformed. */
export function parseAddress(text: string): HostPort {
  const match = HOST_PORT.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 1 && port <= 65535)) {
    throw new FerryError('USAGE', `not a peer address: ${JSON.stringify(text)} (expected HOST:PORT, e.g. 192.168.1.20:22000 or [fe80::1]:22000)`);
  }
  const host = match[1] ?? match[2]!;
  if (match[1] !== undefined && isIP(host) !== 6) throw new FerryError('USAGE', `not an IPv6 address: ${host}`);
  return { host: host.toLowerCase(), port };
}

export function formatAddress({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The canonical text of an address, so the same peer given twice is one entry. */
export function normalizeAddress(text: string): string {
  return formatAddress(parseAddress(text));
}

/** `HOST:PORT` of a socket end; IPv4-mapped IPv6 addresses are shown as IPv4. */
export function socketAddress(host: string | undefined, port: number | undefined): string {
  const plain = host?.startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
  return formatAddress({ host: plain ?? '?', port: port ?? 0 });
}
