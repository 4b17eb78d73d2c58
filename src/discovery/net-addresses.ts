// Address classes discovery cares about (private, loopback, link-local) and this host's own addresses.

import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { isLoopback, unmapIpv4 } from '../util/address.js';

function ipv4Octets(host: string): number[] | null {
  if (isIP(host) !== 4) return null;
  return host.split('.').map(Number);
}

// The loopback rule lives in util/address.ts (the transport, below discovery, sizes its packets by it).
export { isLoopback, unmapIpv4 } from '../util/address.js';

/** `0.0.0.0/8` or `::`: "any address", which no peer can be reached at (a dial goes to the dialler's own host). */
export function isUnspecified(host: string): boolean {
  const plain = unmapIpv4(host.replace(/%.*$/, ''));
  const v4 = ipv4Octets(plain);
  if (v4) return v4[0] === 0;
  return isIP(plain) === 6 && /^[0:]+$/.test(plain);
}

/**
 * True for addresses that only mean something near the device: RFC 1918, CGNAT (100.64/10),
 * loopback, link-local (169.254/16, fe80::/10), unique-local IPv6 (fc00::/7) and unspecified.
 */
export function isPrivateAddress(host: string): boolean {
  const plain = unmapIpv4(host.replace(/%.*$/, ''));
  const v4 = ipv4Octets(plain);
  if (v4) {
    const [a, b] = v4 as [number, number];
    return (
      a === 0 || a === 10 || a === 127 || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)
    );
  }
  if (isIP(plain) !== 6) return false;
  return plain === '::' || plain === '::1' || /^f[cd]/.test(plain) || /^fe[89ab]/.test(plain);
}

/** A private address another device on the same LAN can dial: private, but not loopback, link-local or unspecified. */
export function isLanAddress(host: string): boolean {
  const plain = unmapIpv4(host);
  return isIP(plain) !== 0 && isPrivateAddress(plain) && !isLoopback(plain) && !/^(0\.|169\.254\.|::$|fe[89ab])/.test(plain);
}

/** Every address of this host's interfaces (lower case, without zone), loopback included. */
export function localAddresses(): Set<string> {
  const out = new Set<string>(['127.0.0.1', '::1']);
  for (const infos of Object.values(networkInterfaces())) {
    for (const info of infos ?? []) out.add(info.address.toLowerCase().replace(/%.*$/, ''));
  }
  return out;
}

/**
 * A global IPv6 address peers can reach this device at, given its listen host: the listen host itself
 * when it is one, else (the wildcards 0.0.0.0 and ::, which accept IPv6 too) the first global IPv6
 * address of an interface; undefined when there is none (no IPv6, or only link-local and ULA).
 */
export function globalIpv6(listenHost: string, candidates: Iterable<string> = localAddresses()): string | undefined {
  const global = (host: string): boolean => isIP(host) === 6 && !isPrivateAddress(host) && !host.startsWith('::ffff:') && !/^ff/.test(host);
  if (listenHost !== '0.0.0.0' && listenHost !== '::' && listenHost !== '') return global(listenHost.toLowerCase()) ? listenHost.toLowerCase() : undefined;
  for (const host of candidates) if (global(host)) return host;
  return undefined;
}
