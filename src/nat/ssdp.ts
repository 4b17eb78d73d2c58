// SSDP M-SEARCH for Internet Gateway Devices (v1 and v2), over IPv4 or IPv6 (ff02::c on one interface):
// bounded replies, LOCATION checked against the sender.

import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';
import { silentLogger, type Logger } from '../util/log.js';

export const SSDP_MULTICAST = { address: '239.255.255.250', port: 1900 };
/** UPnP's link-local IPv6 multicast group (UDA 2.0 §1.1.2); a search on it names its interface. */
export const SSDP_MULTICAST6 = { address: 'ff02::c', port: 1900 };

export const IGD_SEARCH_TARGETS = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
] as const;

/** An SSDP reply longer than this is not from a gateway we want to talk to. */
export const MAX_SSDP_REPLY_BYTES = 2048;
/** Different gateways remembered per search; more are ignored. */
export const MAX_SSDP_GATEWAYS = 8;
/** Log lines about ignored replies per search; the rest are only counted. */
const MAX_IGNORED_LOG_LINES = 5;

export interface SsdpSearchOptions {
  /** Where M-SEARCH goes; tests point it at a responder on loopback. @default SSDP_MULTICAST */
  target?: { address: string; port: number };
  /** Local address to send from (the sync listener's, when it is bound to one). An IPv6 address makes it an
   *  IPv6 search (to SSDP_MULTICAST6 unless `target` says otherwise): the router answers that address, from
   *  the address its LOCATION names when both are global. */
  bindAddress?: string;
  /** The interface an IPv6 link-local multicast search goes out on (its zone, e.g. `eth0`). */
  interfaceName?: string;
  /** The search ends this long after it starts. */
  timeoutMs: number;
  /** After the first usable reply, wait this much longer for others, then end early. @default 300 */
  settleMs?: number;
  signal?: AbortSignal;
  logger?: Logger;
}

export interface SsdpGateway {
  /** The device description's URL (on the host that answered). */
  location: URL;
  /** The search target the device answered for. */
  st: string;
  from: string;
  server?: string;
}

export function searchMessage(st: string, target: { address: string; port: number }): Buffer {
  return Buffer.from(
    'M-SEARCH * HTTP/1.1\r\n' +
      `HOST: ${target.address.includes(':') ? `[${target.address.toUpperCase()}]` : target.address}:${target.port}\r\n` +
      'MAN: "ssdp:discover"\r\n' +
      'MX: 2\r\n' +
      `ST: ${st}\r\n\r\n`,
  );
}

/** Parses one reply; returns the gateway or the reason it is ignored. */
export function parseSsdpReply(message: Buffer, from: string): SsdpGateway | string {
  if (message.length > MAX_SSDP_REPLY_BYTES) return `reply of ${message.length} bytes is over ${MAX_SSDP_REPLY_BYTES}`;
  const text = message.toString('latin1');
  const lines = text.split(/\r?\n/);
  if (!/^HTTP\/1\.[01] 200\b/i.test(lines[0] ?? '')) return 'not an HTTP 200 reply';
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const st = headers.get('st') ?? '';
  if (!/^urn:schemas-upnp-org:device:InternetGatewayDevice:[12]$/.test(st)) return `not a gateway (ST '${st.slice(0, 80)}')`;
  const locationText = headers.get('location');
  if (!locationText) return 'no LOCATION';
  let location: URL;
  try {
    location = new URL(locationText);
  } catch {
    return 'LOCATION is not a URL';
  }
  if (location.protocol !== 'http:') return `LOCATION is not http:// (${location.protocol})`;
  // Only the device that answered may describe itself: a LOCATION elsewhere could aim us at any host.
  const host = location.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host !== from.replace(/%.*$/, '').toLowerCase()) return `LOCATION host ${location.hostname} is not the sender ${from}`;
  return { location, st, from, ...(headers.has('server') ? { server: headers.get('server')!.slice(0, 200) } : {}) };
}

/**
 * Sends M-SEARCH for IGD v2 and v1 (three times, as UDP may drop one) and returns the gateways that
 * answered usefully, first answer first. Never throws for network trouble: it logs and returns [].
 */
export function searchGateways(options: SsdpSearchOptions): Promise<SsdpGateway[]> {
  const log = options.logger ?? silentLogger;
  const v6 = options.bindAddress !== undefined && isIPv6(options.bindAddress);
  const target = options.target ?? (v6 ? SSDP_MULTICAST6 : SSDP_MULTICAST);
  // A link-local multicast group means nothing without its interface.
  const sendTo = v6 && options.interfaceName && /^ff[0-9a-f]2:/i.test(target.address) ? `${target.address}%${options.interfaceName}` : target.address;
  const settleMs = options.settleMs ?? 300;
  return new Promise((resolve) => {
    const found: SsdpGateway[] = [];
    const timers: NodeJS.Timeout[] = [];
    let ignored = 0;
    let done = false;
    const socket = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4' });

    const finish = (): void => {
      if (done) return;
      done = true;
      for (const timer of timers) clearTimeout(timer);
      options.signal?.removeEventListener('abort', finish);
      if (ignored > MAX_IGNORED_LOG_LINES) log.warn('SSDP replies ignored', { count: ignored });
      try {
        socket.close();
      } catch {
        // already closed
      }
      resolve(found);
    };
    if (options.signal?.aborted) {
      setImmediate(finish);
      return;
    }
    options.signal?.addEventListener('abort', finish, { once: true });
    timers.push(setTimeout(finish, options.timeoutMs));

    socket.on('error', (err) => {
      log.debug('SSDP socket error', { err });
      finish();
    });
    socket.on('message', (message, rinfo) => {
      if (done) return;
      const result = parseSsdpReply(message, rinfo.address);
      if (typeof result === 'string') {
        if (++ignored <= MAX_IGNORED_LOG_LINES) log.warn('ignoring SSDP reply', { from: `${rinfo.address}:${rinfo.port}`, reason: result });
        return;
      }
      if (found.some((g) => g.location.href === result.location.href)) return;
      if (found.length >= MAX_SSDP_GATEWAYS) return;
      log.debug('gateway answered', { from: result.from, st: result.st, location: result.location.href, server: result.server });
      found.push(result);
      if (found.length === 1) timers.push(setTimeout(finish, settleMs));
    });

    const send = (): void => {
      if (done) return;
      for (const st of IGD_SEARCH_TARGETS) {
        socket.send(searchMessage(st, target), target.port, sendTo, (err) => {
          if (err && !done) log.debug('M-SEARCH not sent', { target: `${sendTo}:${target.port}`, err });
        });
      }
    };
    const bindAddress = v6 || (options.bindAddress && isIPv4(options.bindAddress)) ? options.bindAddress : undefined;
    socket.bind({ port: 0, address: bindAddress }, () => {
      if (done) return;
      try {
        socket.setMulticastTTL(2);
      } catch {
        // not fatal: the default TTL of 1 reaches the router too
      }
      send();
      timers.push(setTimeout(send, Math.min(500, options.timeoutMs / 4)));
      timers.push(setTimeout(send, Math.min(1500, options.timeoutMs / 2)));
    });
  });
}
