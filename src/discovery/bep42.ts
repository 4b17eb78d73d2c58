// BEP 42 (DHT security extension): node IDs tied to the node's external IP, and learning that IP
// from the `ip` key of DHT replies.
//   ID:   crc32c((ip & mask) | r << 5 in the first byte) gives the first 21 bits; byte 19 holds r
//         (0–7); the rest is random. IPv4 mask 03 0f 3f ff, IPv6 (first 8 bytes) 01 03 07 0f 1f 3f 7f ff.
//   Vote: a reply's `ip` (compact 6 or 18 bytes) is what that responder saw us at; an address is
//         believed only once EXTERNAL_IP_QUORUM distinct responders (by IP) say the same.
// CRC-32C here is the 12-line table form (Castagnoli, reflected 0x82f63b78): a library for it would
// bring a native addon (sse4_crc32) to every target for 8 bytes hashed per learned address.

import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { formatAddress, type HostPort } from '../util/address.js';
import { isPrivateAddress } from './net-addresses.js';

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC32C_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const V4_MASK = [0x03, 0x0f, 0x3f, 0xff];
const V6_MASK = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];

/** The 4 bytes of an IPv4 address, the 16 of an IPv6 one; null for anything else. */
export function ipBytes(ip: string): Buffer | null {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6) return null;
  const [head, tail] = ip.includes('::') ? (ip.split('::') as [string, string]) : [ip, undefined];
  const parts = (s: string | undefined): number[] => {
    if (!s) return [];
    const out: number[] = [];
    for (const group of s.split(':')) {
      if (group.includes('.')) {
        const v4 = group.split('.').map(Number);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else out.push(parseInt(group, 16));
    }
    return out;
  };
  const h = parts(head);
  const t = parts(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const buf = Buffer.alloc(16);
  groups.forEach((g, i) => buf.writeUInt16BE(g, i * 2));
  return buf;
}

/** The 21-bit prefix BEP 42 ties to `ip` and `r` (0–7), as the first 3 bytes (the last 3 bits zero). */
function prefix(ip: Buffer, r: number): Buffer {
  const mask = ip.length === 4 ? V4_MASK : V6_MASK;
  const masked = Buffer.from(mask.map((m, i) => ip[i]! & m));
  masked[0] = masked[0]! | ((r & 0x7) << 5);
  const crc = crc32c(masked);
  return Buffer.from([(crc >>> 24) & 0xff, (crc >>> 16) & 0xff, (crc >>> 8) & 0xf8]);
}

/** A node ID valid for `ip` per BEP 42; `random` (20 bytes) supplies r (byte 19) and the free bits (tests pass the BEP's). */
export function nodeIdFor(ip: string, random: Buffer = randomBytes(20)): Buffer {
  const bytes = ipBytes(ip);
  if (!bytes) throw new TypeError(`not an IP address: ${ip}`);
  const id = Buffer.from(random.subarray(0, 20));
  const r = id[19]! & 0x7;
  const head = prefix(bytes, r);
  id[0] = head[0]!;
  id[1] = head[1]!;
  id[2] = head[2]! | (id[2]! & 0x07);
  return id;
}

/**
 * Whether `id` is valid for a node at `ip` (BEP 42): its first 21 bits match. Local addresses
 * (private, loopback, link-local, unique-local) are exempt, as the BEP says: always valid.
 */
export function validNodeId(id: Uint8Array, ip: string): boolean {
  const bytes = ipBytes(ip);
  if (!bytes || id.length !== 20) return false;
  if (isPrivateAddress(ip)) return true;
  const head = prefix(bytes, id[19]! & 0x7);
  return id[0] === head[0] && id[1] === head[1] && (id[2]! & 0xf8) === head[2];
}

/** A compact endpoint (BEP 5/32: 4 or 16 address bytes, then the port) as host and port; null when malformed. */
export function parseCompactEndpoint(bytes: Uint8Array): HostPort | null {
  if (bytes.length !== 6 && bytes.length !== 18) return null;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const port = buf.readUInt16BE(buf.length - 2);
  if (port === 0) return null;
  if (buf.length === 6) return { host: `${buf[0]}.${buf[1]}.${buf[2]}.${buf[3]}`, port };
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(i * 2).toString(16));
  return { host: new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1), port };
}

/** Distinct responders that must agree before an address from DHT replies is believed. */
export const EXTERNAL_IP_QUORUM = 3;
/** Responders remembered (the most recent win); bounds the state a flood of replies can make. */
export const EXTERNAL_IP_VOTERS = 64;

/**
 * Votes on this device's external address from what DHT responders say they saw (their `ip` key).
 * Each responder IP has one vote (its latest); an address is agreed when EXTERNAL_IP_QUORUM distinct
 * responders name it and more responders name it than any other, per address family.
 */
export class ExternalIpVote {
  /** Responder IP → the address it saw us at (insertion order = age). */
  private readonly votes = new Map<string, string>();

  constructor(private readonly quorum = EXTERNAL_IP_QUORUM, private readonly maxVoters = EXTERNAL_IP_VOTERS) {}

  /** Counts one reply; returns the agreed address of `seen`'s family after it, if any. */
  add(responderIp: string, seen: HostPort): HostPort | undefined {
    const value = formatAddress(seen);
    this.votes.delete(responderIp);
    this.votes.set(responderIp, value);
    if (this.votes.size > this.maxVoters) this.votes.delete(this.votes.keys().next().value!);
    return this.agreed(isIP(seen.host) === 6 ? 6 : 4);
  }

  agreed(family: 4 | 6): HostPort | undefined {
    const counts = new Map<string, number>();
    for (const value of this.votes.values()) {
      if ((value.startsWith('[') ? 6 : 4) === family) counts.set(value, (counts.get(value) ?? 0) + 1);
    }
    const ranked = [...counts].sort((a, b) => b[1] - a[1]);
    const [best, second] = ranked;
    if (!best || best[1] < this.quorum || (second && second[1] === best[1])) return undefined;
    const match = /^\[?(.*?)\]?:(\d+)$/.exec(best[0])!;
    return { host: match[1]!, port: Number(match[2]) };
  }
}
