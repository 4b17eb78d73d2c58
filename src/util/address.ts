// Peer addresses as text (HOST:PORT, IPv6 in brackets, `%zone` on link-local IPv6): parsing, canonical form, a socket's remote end; shared by connections and discovery.

import { isIP } from 'node:net';
import { FerryError } from '../errors.js';

export interface HostPort {
  host: string;
  port: number;
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)(?:%([^\]]*))?\]|([^\s:[\]%]+)):(\d{1,5})$/;
/** An interface name or index as a zone: Linux names are at most 15 characters. */
const ZONE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** True for fe80::/10, the only addresses a zone is accepted on. */
function isLinkLocalV6(host: string): boolean {
  if (isIP(host) !== 6 || host.startsWith(':')) return false;
  return (parseInt(host.split(':')[0]!, 16) & 0xffc0) === 0xfe80;
}

/** Parses `HOST:PORT` (`[v6]:PORT` for IPv6, `[fe80::…%iface]:PORT` for link-local); USAGE with a clear message when malformed. */
export function parseAddress(text: string): HostPort {
  const match = HOST_PORT.exec(text.trim());
  const port = match ? Number(match[4]) : NaN;
  if (!match || !(port >= 1 && port <= 65535)) {
    throw new FerryError('USAGE', `not a peer address: ${JSON.stringify(text)} (expected HOST:PORT, e.g. 192.168.1.20:22000 or [fe80::1%eth0]:22000)`);
  }
  const [, v6, zone, name] = match;
  if (v6 === undefined) return { host: name!.toLowerCase(), port };
  const host = v6.toLowerCase();
  if (isIP(host) !== 6) throw new FerryError('USAGE', `not an IPv6 address: ${host}`);
  if (zone === undefined) return { host, port };
  if (!isLinkLocalV6(host)) throw new FerryError('USAGE', `a zone (%interface) is only allowed on link-local IPv6 addresses: ${host}`);
  if (!ZONE.test(zone)) throw new FerryError('USAGE', `not an interface name: ${JSON.stringify(zone)}`);
  // Interface names are case-sensitive: only the address part is lowercased.
  return { host: `${host}%${zone}`, port };
}

/** `[v6%zone]:PORT` for IPv6 (the zone, if any, is part of `host`), `host:PORT` otherwise. */
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

/** The IPv4 address inside an IPv4-mapped IPv6 address, else the host itself. */
export function unmapIpv4(host: string): string {
  const lower = host.toLowerCase();
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

/**
 * 127.0.0.0/8 (also IPv4-mapped), ::1 in any spelling, and the name `localhost`: a listener or a
 * socket end on this machine only. The one loopback rule of every layer.
 */
export function isLoopback(host: string | undefined): boolean {
  if (!host) return false;
  const plain = unmapIpv4(host);
  if (isIP(plain) === 4) return plain.startsWith('127.');
  if (isIP(plain) === 6) return /^(?:0{0,4}:){7}0{0,3}1$|^::1$/.test(plain);
  return plain === 'localhost';
}

/**
 * Parses a listen address, HOST:PORT or [V6]:PORT, where port 0 means "any free port" and an
 * empty host means every interface (0.0.0.0). USAGE naming `what` when malformed.
 */
export function parseHostPort(text: string, what: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new FerryError('USAGE', `${what} must be HOST:PORT (got '${text}')`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}
