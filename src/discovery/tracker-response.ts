// Tracker replies, decoded and checked: compact peer lists (BEP 23, IPv6 per BEP 7), intervals
// clamped, failure reasons surfaced; a malformed reply is an error, never a crash.

import bencode from 'bencode';
import { FerryError } from '../errors.js';
import { formatPeerAddress } from './peer-address.js';

/** Re-announce no sooner and no later than this, whatever the tracker says. */
export const MIN_INTERVAL_S = 60;
export const MAX_INTERVAL_S = 3600;
export const DEFAULT_INTERVAL_S = 1800;
/** Peers taken from one reply. */
export const MAX_PEERS_PER_REPLY = 200;

export interface AnnounceResult {
  intervalS: number;
  /** The tracker's `min interval` (seconds, unclamped but finite and positive), when it gave one. */
  minIntervalS?: number;
  /** HOST:PORT of each peer. */
  peers: string[];
  /** Bytes at the end of a compact list that did not make a whole entry. */
  truncatedBytes: number;
  warning?: string;
}

/** The tracker said no (`failure reason`, or a UDP error action). */
export class TrackerRefusedError extends FerryError {
  constructor(readonly reason: string) {
    super('REQUEST_FAILED', `tracker refused: ${reason}`);
  }
}

export function clampInterval(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return DEFAULT_INTERVAL_S;
  return Math.min(MAX_INTERVAL_S, Math.max(MIN_INTERVAL_S, Math.floor(value)));
}

/** A `min interval` worth obeying: a positive whole number of seconds no larger than MAX_INTERVAL_S. */
function minInterval(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.min(MAX_INTERVAL_S, Math.floor(value)) || undefined : undefined;
}

/** IPv4 (6-byte) or IPv6 (18-byte) compact entries; a trailing partial entry is counted, not read. */
export function parseCompactPeers(bytes: Uint8Array, family: 4 | 6, into: string[]): number {
  const size = family === 4 ? 6 : 18;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  for (; offset + size <= buf.length && into.length < MAX_PEERS_PER_REPLY; offset += size) {
    const port = buf.readUInt16BE(offset + size - 2);
    if (port === 0) continue;
    into.push(formatPeerAddress({ host: family === 4 ? ipv4(buf, offset) : ipv6(buf, offset), port }));
  }
  return into.length >= MAX_PEERS_PER_REPLY ? 0 : buf.length - offset;
}

function ipv4(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

function ipv6(buf: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + i * 2).toString(16));
  // The URL parser writes IPv6 in its canonical, compressed form.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

const text = (value: unknown, max = 200): string | undefined =>
  value instanceof Uint8Array ? Buffer.from(value).toString('utf8').slice(0, max) : undefined;

/** A BEP 3 HTTP announce reply body. Throws TrackerRefusedError or PROTOCOL. */
export function parseHttpAnnounce(body: Buffer): AnnounceResult {
  let decoded: unknown;
  try {
    decoded = bencode.decode(body);
  } catch (err) {
    throw new FerryError('PROTOCOL', `tracker reply is not bencoded: ${(err as Error).message}`);
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded) || decoded instanceof Uint8Array) {
    throw new FerryError('PROTOCOL', 'tracker reply is not a dictionary');
  }
  const reply = decoded as Record<string, unknown>;
  const failure = reply['failure reason'];
  if (failure !== undefined) throw new TrackerRefusedError(text(failure) ?? 'unreadable failure reason');
  const peers: string[] = [];
  let truncatedBytes = 0;
  const list = reply.peers;
  if (list instanceof Uint8Array) truncatedBytes += parseCompactPeers(list, 4, peers);
  else if (Array.isArray(list)) {
    // The original, non-compact form: a list of {ip, port} dictionaries.
    for (const item of list.slice(0, MAX_PEERS_PER_REPLY)) {
      const entry = item as Record<string, unknown> | null;
      const ip = typeof entry === 'object' && entry ? text(entry.ip, 64) : undefined;
      const port = entry?.port;
      if (ip && typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536 && /^[0-9a-fA-F:.]+$/.test(ip)) {
        peers.push(formatPeerAddress({ host: ip.toLowerCase(), port }));
      }
    }
  } else if (list !== undefined) throw new FerryError('PROTOCOL', 'tracker reply: peers is neither a string nor a list');
  if (reply.peers6 instanceof Uint8Array) truncatedBytes += parseCompactPeers(reply.peers6, 6, peers);
  return {
    intervalS: clampInterval(reply.interval),
    ...(minInterval(reply['min interval']) !== undefined ? { minIntervalS: minInterval(reply['min interval']) } : {}),
    peers,
    truncatedBytes,
    ...(reply['warning message'] !== undefined ? { warning: text(reply['warning message']) ?? '' } : {}),
  };
}
