// The sync port's one UDP socket, shared by the µTP transport, STUN and the DHT (and, as they move
// onto it, UDP trackers), so one NAT mapping serves them all, as libtorrent does. Each user
// registers a classifier; a datagram goes to the first user whose classifier takes it, and is
// dropped when none does. The classifiers are disjoint, so the order does not matter:
//   STUN     bytes 0–1 top bits 00, magic cookie 0x2112A442 at bytes 4–7, length field = size − 20
//   µTP      byte 0 = type << 4 | 1 with type 0–4, byte 1 (first extension) 0 or 1, ≥ 20 bytes
//   DHT      byte 0 'd' (a bencoded dictionary)
//   tracker  byte 0 = 0x00 (action 0–3 in a 32-bit big-endian field), a transaction ID we sent
// (A STUN success response, 0x0101…, starts like a µTP DATA header: µTP's classifier refuses the
// cookie-and-length pair of STUN.)

import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { ioError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';

export interface UdpEndpoint {
  address: string;
  port: number;
}

/** Whether a datagram is this user's; `from` lets two users split one kind by sender (the IPv4 and IPv6 DHTs). */
type Classifier = (buf: Buffer, from: UdpEndpoint) => boolean;
type Handler = (buf: Buffer, from: UdpEndpoint) => void;

/** @default of UdpSocketOptions.bufferBytes: the kernel's socket buffers, for bursts of a fast transfer. */
export const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

export interface UdpSocketOptions {
  host: string;
  port: number;
  bufferBytes?: number;
  logger?: Logger;
}

/**
 * dgram's address lookup: an IP literal (every µTP, STUN and DHT peer) is answered at once; a name
 * goes to dns.lookup. Node's default sends even an IP literal through dns.lookup, which answers it
 * on the next tick: each datagram cost a process.nextTick and a deferred send (14 % of a µTP
 * sender's CPU on loopback).
 */
function lookupNow(address: string, family: number | LookupOneOptions, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const literal = isIP(address);
  if (literal !== 0) callback(null, address, literal);
  else dnsLookup(address, typeof family === 'number' ? { family } : family, callback);
}

export class UdpSocket extends Resource {
  private socket: Socket | null = null;
  /**
   * With an IPv4 wildcard host (0.0.0.0, the default listen address), a second, IPv6-only socket
   * on the same port number (`::`), so peers with global IPv6 addresses are reached from the sync
   * port too (issue 19: punching through IPv6 stateful firewalls). Null where IPv6 is unavailable.
   */
  private socket6: Socket | null = null;
  private readonly users: Array<{ classify: Classifier; handler: Handler }> = [];
  private readonly log: Logger;
  private bound: UdpEndpoint | null = null;
  /** Datagrams no user took (reported in status). */
  dropped = 0;

  constructor(private readonly options: UdpSocketOptions) {
    super();
    this.log = options.logger ?? silentLogger;
  }

  get family(): 'udp4' | 'udp6' {
    return this.options.host.includes(':') ? 'udp6' : 'udp4';
  }

  address(): UdpEndpoint {
    if (!this.bound) throw new Error('UdpSocket is not open');
    return this.bound;
  }

  protected async _open(): Promise<void> {
    const { host, port } = this.options;
    const socket = createSocket({ type: this.family, ipv6Only: false, lookup: lookupNow });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    }).catch((err: unknown) => {
      socket.close();
      throw ioError(`cannot bind UDP ${host}:${port}`, err);
    });
    const bytes = this.options.bufferBytes ?? UDP_SOCKET_BUFFER_BYTES;
    try {
      socket.setRecvBufferSize(bytes);
      socket.setSendBufferSize(bytes);
    } catch (err) {
      this.log.debug('cannot enlarge the UDP socket buffers', { reason: (err as Error).message });
    }
    socket.on('error', (err) => this.log.debug('UDP socket error', { reason: err.message }));
    socket.on('message', (buf, rinfo) => this.dispatch(buf, rinfo));
    const bound = socket.address();
    this.bound = { address: bound.address, port: bound.port };
    this.socket = socket;
    if (host === '0.0.0.0') this.socket6 = await this.openSecond(bound.port, bytes);
  }

  /** The IPv6 sibling of an IPv4 wildcard socket; null (logged) when it cannot be bound. */
  private async openSecond(port: number, bytes: number): Promise<Socket | null> {
    const socket = createSocket({ type: 'udp6', ipv6Only: true, lookup: lookupNow });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, '::', () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      this.log.debug('no IPv6 UDP socket on the sync port', { port, reason: (err as Error).message });
      return null;
    }
    try {
      socket.setRecvBufferSize(bytes);
      socket.setSendBufferSize(bytes);
    } catch {
      // as for the IPv4 socket: the kernel's defaults then
    }
    socket.on('error', (err) => this.log.debug('UDP socket error (IPv6)', { reason: err.message }));
    socket.on('message', (buf, rinfo) => this.dispatch(buf, rinfo));
    return socket;
  }

  /** Whether IPv6 peers can be reached (an IPv6 socket, or the IPv6 sibling of an IPv4 one). */
  get ipv6(): boolean {
    return this.family === 'udp6' || this.socket6 !== null;
  }

  protected async _close(): Promise<void> {
    const sockets = [this.socket, this.socket6];
    this.socket = null;
    this.socket6 = null;
    await Promise.all(sockets.map((socket) => (socket ? new Promise<void>((resolve) => socket.close(() => resolve())) : undefined)));
  }

  /**
   * Sends one datagram; errors (no route, a closed socket) come as the socket's 'error' events,
   * logged and otherwise dropped as UDP drops packets. No callback: with one, each datagram sent
   * at once cost a process.nextTick (6 % of a bulk transfer's CPU).
   */
  send(buf: Buffer, port: number, host: string): void {
    if (this.socket6 && host.includes(':')) this.socket6.send(buf, port, host);
    else this.socket?.send(buf, port, host);
  }

  /** One datagram gathered from `bufs` (one sendmsg, no copy); errors as for send(). */
  sendv(bufs: readonly Buffer[], port: number, host: string): void {
    if (this.socket6 && host.includes(':')) this.socket6.send(bufs as Buffer[], port, host);
    else this.socket?.send(bufs as Buffer[], port, host);
  }

  /** Registers a user: returns its removal. */
  handle(classify: Classifier, handler: Handler): () => void {
    const user = { classify, handler };
    this.users.push(user);
    return () => {
      const at = this.users.indexOf(user);
      if (at >= 0) this.users.splice(at, 1);
    };
  }

  private dispatch(buf: Buffer, from: UdpEndpoint): void {
    for (const user of this.users) {
      if (!user.classify(buf, from)) continue;
      try {
        user.handler(buf, from);
      } catch (err) {
        this.log.error('UDP handler failed', { err });
      }
      return;
    }
    this.dropped++;
  }
}
