// LAN discovery: announces this device (ID and sync port only) by IPv4 broadcast and multicast and
// IPv6 link-local multicast at start, on demand and every 30 s; hears the others, rate-limited.
// Nothing is ever sent in reply to a received packet, so the socket cannot be used for amplification.

import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { decodeAnnouncement, encodeAnnouncement } from './lan-packet.js';
import { formatPeerAddress } from './peer-address.js';
import { TokenBucket } from './rate-limit.js';
import { bindUdp, closeUdp, sendUdp } from './udp.js';

export const LAN_PORT = 22101;
/** Organisation-local IPv4 group and link-local IPv6 group ("FR" = 0x46 0x52). */
export const LAN_GROUP_V4 = '239.192.70.82';
export const LAN_GROUP_V6 = 'ff12::4652';
export const LAN_ANNOUNCE_INTERVAL_MS = 30_000;
/** Received announcements looked at per second (burst the same); the rest are dropped unread. */
export const LAN_MAX_PACKETS_PER_S = 50;
/** Devices remembered for the report. */
export const LAN_MAX_DEVICES = 256;
/**
 * New devices (never heard before) one source address may introduce, as a burst and then per
 * LAN_NEW_DEVICE_WINDOW_MS; and all sources together. Each one heard is dialled, so a host
 * announcing fake device IDs gets only a few dials out of us, whatever it sends.
 */
export const LAN_NEW_DEVICES_PER_SOURCE = 8;
export const LAN_NEW_DEVICES_TOTAL = 64;
export const LAN_NEW_DEVICE_WINDOW_MS = 10 * 60_000;

export interface LanDiscoveryOptions {
  deviceId: string;
  /** The sync port to announce (read at each announcement). */
  syncPort: () => number;
  /** @default LAN_PORT */
  port?: number;
  /** @default LAN_ANNOUNCE_INTERVAL_MS */
  intervalMs?: number;
  /** @default true */
  ipv6?: boolean;
  /** Unicast HOST:PORT destinations announced to as well (tests on loopback). */
  extraTargets?: Array<{ host: string; port: number }>;
  /** @default LAN_MAX_PACKETS_PER_S */
  maxPacketsPerS?: number;
  /** A device announced itself: `address` is where its sync port is. */
  onHeard: (address: string, deviceId: string) => void;
  logger?: Logger;
}

interface Heard {
  address: string;
  lastSeenMs: number;
}

export class LanDiscovery extends Resource {
  private readonly log: Logger;
  private readonly port: number;
  private readonly bucket: TokenBucket;
  private sock4: Socket | null = null;
  private sock6: Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private sending: Promise<void> | null = null;
  private again = false;
  private readonly joined = new Set<string>();
  private readonly heard = new Map<string, Heard>();
  private lastAnnounceMs: number | null = null;
  /** Set at the end of _open(): `opened` is still false while _open() runs. */
  private running = false;
  readonly counters = { sent: 0, sendErrors: 0, received: 0, malformed: 0, rateLimited: 0, devicesRefused: 0 };
  /** Budgets of new devices: per source address (bounded map) and in all. */
  private readonly newPerSource = new Map<string, TokenBucket>();
  private readonly newTotal = new TokenBucket((LAN_NEW_DEVICES_TOTAL * 1000) / LAN_NEW_DEVICE_WINDOW_MS, LAN_NEW_DEVICES_TOTAL);

  constructor(private readonly options: LanDiscoveryOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    this.port = options.port ?? LAN_PORT;
    const rate = options.maxPacketsPerS ?? LAN_MAX_PACKETS_PER_S;
    this.bucket = new TokenBucket(rate, rate);
  }

  protected async _open(): Promise<void> {
    this.sock4 = createSocket({ type: 'udp4', reuseAddr: true });
    this.sock4.on('error', (err) => this.log.debug('LAN socket error', { err }));
    this.sock4.on('message', (packet, rinfo) => this.receive(packet, rinfo));
    await bindUdp(this.sock4, this.port, '0.0.0.0');
    this.sock4.setBroadcast(true);
    this.sock4.setMulticastTTL(1);
    if (this.options.ipv6 !== false) {
      const sock6 = createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true });
      sock6.on('error', (err) => this.log.debug('LAN IPv6 socket error', { err }));
      sock6.on('message', (packet, rinfo) => this.receive(packet, rinfo));
      try {
        await bindUdp(sock6, this.port, '::');
        sock6.setMulticastTTL(1);
        this.sock6 = sock6;
      } catch (err) {
        this.log.info('no IPv6 LAN discovery', { reason: (err as Error).message });
        await closeUdp(sock6);
      }
    }
    this.log.info('LAN discovery listening', { port: this.port });
    this.timer = setInterval(() => this.announce(), this.options.intervalMs ?? LAN_ANNOUNCE_INTERVAL_MS);
    this.timer.unref();
    this.running = true;
    this.announce();
  }

  protected async _close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.sending;
    await closeUdp(this.sock4);
    await closeUdp(this.sock6);
    this.sock4 = this.sock6 = null;
  }

  /** Announces now (coalesced with one in progress). */
  announce(): void {
    if (!this.running || this.closed) return;
    if (this.sending) {
      this.again = true;
      return;
    }
    this.sending = this.sendAll()
      .catch((err: unknown) => this.log.warn('LAN announcement failed', { err: err as Error }))
      .finally(() => {
        this.sending = null;
        if (this.again && !this.closed) {
          this.again = false;
          this.announce();
        }
      });
  }

  report(): unknown {
    return {
      port: this.port,
      lastAnnounceMs: this.lastAnnounceMs,
      ...this.counters,
      devices: [...this.heard].map(([deviceId, heard]) => ({ deviceId, ...heard })),
    };
  }

  private async sendAll(): Promise<void> {
    const packet = encodeAnnouncement({ deviceId: this.options.deviceId, port: this.options.syncPort() });
    const send = async (socket: Socket | null, host: string): Promise<void> => {
      if (!socket || this.closed) return;
      const err = await sendUdp(socket, packet, this.port, host);
      if (err) {
        this.counters.sendErrors++;
        this.log.debug('LAN send failed', { to: host, err });
      } else this.counters.sent++;
    };
    await send(this.sock4, '255.255.255.255');
    for (const [name, infos] of Object.entries(networkInterfaces())) {
      for (const info of infos ?? []) {
        if (info.internal) continue;
        if (info.family === 'IPv4') {
          await send(this.sock4, directedBroadcast(info.address, info.netmask));
          if (!this.join(this.sock4, `4 ${info.address}`, LAN_GROUP_V4, info.address)) continue;
          try {
            this.sock4?.setMulticastInterface(info.address);
          } catch {
            continue;
          }
          await send(this.sock4, LAN_GROUP_V4);
        } else if (info.family === 'IPv6' && info.address.toLowerCase().startsWith('fe80') && this.sock6) {
          if (!this.join(this.sock6, `6 ${name}`, LAN_GROUP_V6, `::%${name}`)) continue;
          await send(this.sock6, `${LAN_GROUP_V6}%${name}`);
        }
      }
    }
    for (const target of this.options.extraTargets ?? []) {
      const err = this.sock4 ? await sendUdp(this.sock4, packet, target.port, target.host) : null;
      if (err) this.log.debug('LAN send failed', { to: target.host, err });
      else this.counters.sent++;
    }
    this.lastAnnounceMs = Date.now();
  }

  /** Joins `group` on one interface once; false when that is impossible there. */
  private join(socket: Socket | null, key: string, group: string, iface: string): boolean {
    if (!socket) return false;
    if (this.joined.has(key)) return true;
    try {
      socket.addMembership(group, iface);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
        this.log.debug('cannot join the LAN multicast group', { group, iface, err: err as Error });
        return false;
      }
    }
    this.joined.add(key);
    return true;
  }

  private receive(packet: Buffer, rinfo: RemoteInfo): void {
    if (!this.bucket.take()) {
      this.counters.rateLimited++;
      return;
    }
    this.counters.received++;
    const announcement = decodeAnnouncement(packet);
    if ('error' in announcement) {
      this.counters.malformed++;
      this.log.debug('ignoring a LAN packet', { from: rinfo.address, reason: announcement.error });
      return;
    }
    if (announcement.deviceId === this.options.deviceId) return;
    const address = formatPeerAddress({ host: rinfo.address.replace(/^::ffff:/, ''), port: announcement.port });
    const known = this.heard.get(announcement.deviceId);
    if (!known) {
      if (!this.newDeviceAllowed(rinfo.address)) {
        this.counters.devicesRefused++;
        if (this.counters.devicesRefused === 1 || this.counters.devicesRefused % 1000 === 0) {
          this.log.info('ignoring new devices announced on the LAN beyond the budget', { from: rinfo.address, refused: this.counters.devicesRefused });
        }
        return;
      }
      if (this.heard.size >= LAN_MAX_DEVICES) this.forgetOldest();
      this.log.info('heard a device on the LAN', { device: announcement.deviceId, address });
    }
    // Report the dialable (IPv4) address rather than a link-local IPv6 one with its zone.
    const shown = known && address.includes('%') ? known.address : address;
    this.heard.set(announcement.deviceId, { address: shown, lastSeenMs: Date.now() });
    this.options.onHeard(address, announcement.deviceId);
  }

  /** Takes one new device from the source's budget and the total one; false when either is spent. */
  private newDeviceAllowed(source: string): boolean {
    let bucket = this.newPerSource.get(source);
    if (!bucket) {
      if (this.newPerSource.size >= LAN_MAX_DEVICES) this.newPerSource.delete(this.newPerSource.keys().next().value!);
      bucket = new TokenBucket((LAN_NEW_DEVICES_PER_SOURCE * 1000) / LAN_NEW_DEVICE_WINDOW_MS, LAN_NEW_DEVICES_PER_SOURCE);
      this.newPerSource.set(source, bucket);
    }
    return bucket.take() && this.newTotal.take();
  }

  private forgetOldest(): void {
    let oldest: [string, Heard] | undefined;
    for (const item of this.heard) if (!oldest || item[1].lastSeenMs < oldest[1].lastSeenMs) oldest = item;
    if (oldest) this.heard.delete(oldest[0]);
  }
}

/** The directed broadcast address of an IPv4 interface. */
export function directedBroadcast(address: string, netmask: string): string {
  const a = address.split('.').map(Number);
  const m = netmask.split('.').map(Number);
  return a.map((octet, i) => (octet | (~m[i]! & 0xff)) & 0xff).join('.');
}
