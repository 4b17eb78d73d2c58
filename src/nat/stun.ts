// STUN Binding client (RFC 8489): asks a server which address and port our UDP datagrams arrive
// from. It sends through a small port interface, so it can share the sync port's UDP socket.

import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import { isIP } from 'node:net';
import { FerryError } from '../errors.js';

export const STUN_MAGIC_COOKIE = 0x2112a442;
const HEADER_BYTES = 20;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const BINDING_ERROR = 0x0111;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_ERROR_CODE = 0x0009;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
/** Pre-RFC 5389 servers put XOR-MAPPED-ADDRESS here. */
const ATTR_XOR_MAPPED_ADDRESS_OLD = 0x8020;
/** A Binding response has no business being larger (RFC 8489 keeps messages under the path MTU). */
export const MAX_STUN_MESSAGE_BYTES = 1280;

/** @default of StunClientOptions: RFC 8489's RTO of 500 ms, doubled each try, 4 tries (7.5 s in all). */
export const STUN_RTO_MS = 500;
export const STUN_TRIES = 4;
/** Requests in flight at once; more are refused rather than queued. */
export const MAX_PENDING_REQUESTS = 16;

export interface UdpEndpoint {
  address: string;
  port: number;
}

/**
 * What the client needs of a UDP socket: send a datagram, and receive those a classifier accepts
 * (a shared socket hands STUN messages, magic cookie at bytes 4–7, to this handler).
 */
export interface DatagramPort {
  send(buf: Buffer, port: number, host: string): void | Promise<void>;
  handle(classify: (buf: Buffer) => boolean, handler: (buf: Buffer, from: UdpEndpoint) => void): () => void;
}

/** A plain dgram socket as a DatagramPort (until the shared socket of the sync port carries STUN). */
export function dgramPort(socket: Socket): DatagramPort {
  return {
    send: (buf, port, host) =>
      new Promise<void>((resolve, reject) => socket.send(buf, port, host, (err) => (err ? reject(err) : resolve()))),
    handle: (classify, handler) => {
      const listener = (buf: Buffer, from: UdpEndpoint): void => {
        if (classify(buf)) handler(buf, { address: from.address, port: from.port });
      };
      socket.on('message', listener);
      return () => socket.off('message', listener);
    },
  };
}

/** Whether a datagram looks like a STUN message: the classifier a shared socket demultiplexes by. */
export function isStunMessage(buf: Buffer): boolean {
  return (
    buf.length >= HEADER_BYTES &&
    (buf[0]! & 0xc0) === 0 &&
    buf.readUInt32BE(4) === STUN_MAGIC_COOKIE &&
    buf.readUInt16BE(2) % 4 === 0 &&
    HEADER_BYTES + buf.readUInt16BE(2) === buf.length
  );
}

/** A Binding request with no attributes; `transactionId` is 12 random bytes. */
export function encodeBindingRequest(transactionId: Buffer): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES);
  buf.writeUInt16BE(BINDING_REQUEST, 0);
  buf.writeUInt16BE(0, 2);
  buf.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  transactionId.copy(buf, 8, 0, 12);
  return buf;
}

export type BindingResult = { ok: true; mapped: UdpEndpoint } | { ok: false; reason: string };

/**
 * Reads a Binding response to `transactionId`: null when it is not one (wrong type, other
 * transaction, malformed), else the mapped address (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS as
 * RFC 3489 servers send it) or the server's error.
 */
export function decodeBindingResponse(buf: Buffer, transactionId: Buffer): BindingResult | null {
  if (!isStunMessage(buf) || buf.length > MAX_STUN_MESSAGE_BYTES) return null;
  if (!buf.subarray(8, 20).equals(transactionId)) return null;
  const type = buf.readUInt16BE(0);
  if (type !== BINDING_SUCCESS && type !== BINDING_ERROR) return null;
  let xor: UdpEndpoint | null = null;
  let plain: UdpEndpoint | null = null;
  let error: string | null = null;
  for (let offset = HEADER_BYTES; offset + 4 <= buf.length; ) {
    const attr = buf.readUInt16BE(offset);
    const length = buf.readUInt16BE(offset + 2);
    const value = buf.subarray(offset + 4, offset + 4 + length);
    if (value.length !== length) return null;
    if (attr === ATTR_XOR_MAPPED_ADDRESS || attr === ATTR_XOR_MAPPED_ADDRESS_OLD) xor ??= readAddress(value, buf.subarray(4, 20));
    else if (attr === ATTR_MAPPED_ADDRESS) plain ??= readAddress(value, null);
    else if (attr === ATTR_ERROR_CODE && length >= 4) {
      const code = (value[2]! & 0x07) * 100 + value[3]!;
      error = `${code} ${value.subarray(4).toString('utf8').replace(/[^\x20-\x7e]/g, '?').slice(0, 100)}`.trim();
    }
    offset += 4 + Math.ceil(length / 4) * 4;
  }
  if (type === BINDING_ERROR) return { ok: false, reason: `STUN server answered error ${error ?? '(no code)'}` };
  const mapped = xor ?? plain;
  return mapped ? { ok: true, mapped } : { ok: false, reason: 'STUN response carries no mapped address' };
}

/** A (XOR-)MAPPED-ADDRESS value; `mask` is the cookie + transaction ID for the XOR form. */
export function readAddress(value: Buffer, mask: Buffer | null): UdpEndpoint | null {
  if (value.length < 4) return null;
  const family = value[1];
  const port = value.readUInt16BE(2) ^ (mask ? mask.readUInt16BE(0) : 0);
  const size = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (!size || value.length !== 4 + size || port === 0) return null;
  const bytes = Buffer.from(value.subarray(4, 4 + size));
  if (mask) for (let i = 0; i < size; i++) bytes[i]! ^= mask[i]!;
  const address = size === 4 ? [...bytes].join('.') : formatIpv6(bytes);
  return isIP(address) ? { address, port } : null;
}

function formatIpv6(bytes: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // The shortest form, as Node prints addresses: the longest run of zero groups becomes '::'.
  let best = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLength && j - i > 1) [best, bestLength] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLength).join(':')}`;
}

export interface StunClientOptions {
  /** @default STUN_RTO_MS */
  rtoMs?: number;
  /** @default STUN_TRIES */
  tries?: number;
}

interface Pending {
  transactionId: Buffer;
  server: UdpEndpoint;
  resolve: (mapped: UdpEndpoint) => void;
  reject: (err: Error) => void;
}

/** Binding transactions over one DatagramPort; responses are matched by transaction ID and source. */
export class StunClient {
  private readonly pending = new Map<string, Pending>();
  private readonly unhandle: () => void;

  constructor(private readonly port: DatagramPort, private readonly options: StunClientOptions = {}) {
    this.unhandle = port.handle(isStunMessage, (buf, from) => this.onMessage(buf, from));
  }

  /**
   * Our address as `server` (an IP literal and port) sees it. Retransmits on RFC 8489's schedule;
   * TIMEOUT when no response comes, REQUEST_FAILED on an error response.
   */
  async binding(server: UdpEndpoint, signal?: AbortSignal): Promise<UdpEndpoint> {
    if (isIP(server.address) === 0) throw new FerryError('USAGE', `STUN server must be an IP address here (got '${server.address}')`);
    if (this.pending.size >= MAX_PENDING_REQUESTS) throw new FerryError('REQUEST_FAILED', 'too many STUN requests in flight');
    const transactionId = randomBytes(12);
    const key = transactionId.toString('hex');
    const request = encodeBindingRequest(transactionId);
    const rto = this.options.rtoMs ?? STUN_RTO_MS;
    const tries = this.options.tries ?? STUN_TRIES;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await new Promise<UdpEndpoint>((resolve, reject) => {
        this.pending.set(key, { transactionId, server, resolve, reject });
        onAbort = () => reject(new FerryError('ABORTED', 'STUN request aborted'));
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        let sent = 0;
        const transmit = (): void => {
          if (sent === tries) {
            reject(new FerryError('TIMEOUT', `no STUN response from ${server.address}:${server.port} after ${tries} tries`));
            return;
          }
          const waitMs = rto * 2 ** sent++;
          Promise.resolve(this.port.send(request, server.port, server.address)).catch((err: unknown) =>
            reject(new FerryError('REQUEST_FAILED', `cannot send to the STUN server: ${(err as Error).message}`)),
          );
          timer = setTimeout(transmit, waitMs);
        };
        transmit();
      });
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      this.pending.delete(key);
    }
  }

  close(): void {
    this.unhandle();
    for (const request of this.pending.values()) request.reject(new FerryError('CLOSED', 'STUN client closed'));
    this.pending.clear();
  }

  private onMessage(buf: Buffer, from: UdpEndpoint): void {
    if (buf.length < HEADER_BYTES) return;
    const request = this.pending.get(buf.subarray(8, 20).toString('hex'));
    // Only the server asked may answer (an attacker guessing nothing could still not pick the ID).
    if (!request || from.port !== request.server.port || from.address.replace(/^::ffff:/, '') !== request.server.address) return;
    const result = decodeBindingResponse(buf, request.transactionId);
    if (!result) return;
    if (result.ok) request.resolve(result.mapped);
    else request.reject(new FerryError('REQUEST_FAILED', result.reason));
  }
}
