// µTP packets (BEP 29): the 20-byte header, the selective-ack extension, and the classifier a
// shared UDP socket demultiplexes by. Decoding never throws: a malformed datagram is null.

export const UTP_VERSION = 1;
export const HEADER_BYTES = 20;

export const ST_DATA = 0;
export const ST_FIN = 1;
export const ST_STATE = 2;
export const ST_RESET = 3;
export const ST_SYN = 4;
export type PacketType = 0 | 1 | 2 | 3 | 4;

const EXT_NONE = 0;
const EXT_SELECTIVE_ACK = 1;
/** A selective-ack bitmask covers at most this many bytes (BEP 29: a multiple of 4; we send 4–32). */
export const MAX_SACK_BYTES = 32;
/** Extensions in one packet we read before giving up on it. */
const MAX_EXTENSIONS = 4;

export interface UtpHeader {
  type: PacketType;
  connectionId: number;
  timestampUs: number;
  timestampDiffUs: number;
  windowSize: number;
  seq: number;
  ack: number;
}

export interface UtpPacket extends UtpHeader {
  /** Bitmask of packets received past ack + 1: bit i (LSB first in each byte) is ack + 2 + i. */
  sack: Buffer | null;
  payload: Buffer;
}

/**
 * Whether a datagram can be µTP: version 1, a known type, a known first extension, the header
 * whole, and not STUN (whose success response starts 0x01 0x01 too). (STUN is told apart first by its magic cookie, DHT by its bencoded 'd', UDP tracker
 * replies by their transaction ID; see udp-socket.ts.)
 */
export function isUtpPacket(buf: Buffer): boolean {
  if (buf.length < HEADER_BYTES) return false;
  const b0 = buf[0]!;
  if ((b0 & 0x0f) !== UTP_VERSION || b0 >> 4 > ST_SYN || buf[1]! > EXT_SELECTIVE_ACK) return false;
  // A STUN success response (0x0101…) has a µTP-like first word: its magic cookie and length tell it apart.
  return !(buf.readUInt32BE(4) === STUN_MAGIC_COOKIE && buf.readUInt16BE(2) === buf.length - HEADER_BYTES);
}

/** RFC 8489's magic cookie, at bytes 4–7 of every STUN message. */
const STUN_MAGIC_COOKIE = 0x2112a442;

/** Reads a packet; null when malformed (truncated extension, bad SACK length, trailing garbage in a SYN/STATE/RESET…). */
export function decodePacket(buf: Buffer): UtpPacket | null {
  if (!isUtpPacket(buf)) return null;
  let next = buf[1]!;
  let offset = HEADER_BYTES;
  let sack: Buffer | null = null;
  for (let count = 0; next !== EXT_NONE; count++) {
    if (count >= MAX_EXTENSIONS || offset + 2 > buf.length) return null;
    const type = next;
    next = buf[offset]!;
    const length = buf[offset + 1]!;
    const start = offset + 2;
    offset = start + length;
    if (offset > buf.length) return null;
    if (type === EXT_SELECTIVE_ACK) {
      if (length < 4 || length % 4 !== 0 || length > MAX_SACK_BYTES || sack) return null;
      sack = buf.subarray(start, offset);
    }
  }
  const type = (buf[0]! >> 4) as PacketType;
  const payload = buf.subarray(offset);
  if (payload.length > 0 && type !== ST_DATA) return null;
  return {
    type,
    connectionId: buf.readUInt16BE(2),
    timestampUs: buf.readUInt32BE(4),
    timestampDiffUs: buf.readUInt32BE(8),
    windowSize: buf.readUInt32BE(12),
    seq: buf.readUInt16BE(16),
    ack: buf.readUInt16BE(18),
    sack,
    payload,
  };
}

/** Writes the header into `buf` at 0 (the caller reserved HEADER_BYTES, plus the SACK extension when `sack`). */
export function writeHeader(buf: Buffer, header: UtpHeader, sack: Buffer | null = null): number {
  buf[0] = (header.type << 4) | UTP_VERSION;
  buf[1] = sack ? EXT_SELECTIVE_ACK : EXT_NONE;
  buf.writeUInt16BE(header.connectionId & 0xffff, 2);
  buf.writeUInt32BE(header.timestampUs >>> 0, 4);
  buf.writeUInt32BE(header.timestampDiffUs >>> 0, 8);
  buf.writeUInt32BE(Math.max(0, Math.min(0xffffffff, header.windowSize)) >>> 0, 12);
  buf.writeUInt16BE(header.seq & 0xffff, 16);
  buf.writeUInt16BE(header.ack & 0xffff, 18);
  if (!sack) return HEADER_BYTES;
  buf[HEADER_BYTES] = EXT_NONE;
  buf[HEADER_BYTES + 1] = sack.length;
  sack.copy(buf, HEADER_BYTES + 2);
  return HEADER_BYTES + 2 + sack.length;
}

/** A whole packet in a fresh buffer. */
export function encodePacket(header: UtpHeader, payload?: Buffer, sack: Buffer | null = null): Buffer {
  const size = HEADER_BYTES + (sack ? 2 + sack.length : 0) + (payload?.length ?? 0);
  const buf = Buffer.allocUnsafe(size);
  const offset = writeHeader(buf, header, sack);
  payload?.copy(buf, offset);
  return buf;
}

/** `a - b` on the 16-bit sequence circle, in -32768..32767. */
export function seqDiff(a: number, b: number): number {
  return (((a - b) & 0xffff) << 16) >> 16;
}

/** Microseconds on a 32-bit wrapping clock (the header's timestamps). */
export function nowMicros(): number {
  return (performance.now() * 1000) >>> 0;
}
