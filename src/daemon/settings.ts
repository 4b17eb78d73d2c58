// Daemon settings: defaults, validation, and the merge of stored settings with `run` flags.

import { FerryError } from '../errors.js';
import { parseHostPort } from '../util/address.js';
import { parseTurnUrl } from '../nat/turn.js';
import { isLogLevel, type LogLevel } from '../util/log.js';
import { DEFAULT_RELAY_RATE_BPS } from '../relay/index.js';

export interface Settings {
  deviceName: string;
  /** Sync listener, HOST:PORT. */
  listen: string;
  /** Web admin, HOST:PORT. */
  web: string;
  /** Names the web admin also answers to (a reverse proxy's or DNS name); loopback and this machine's addresses always work. */
  webHosts: string[];
  lan: boolean;
  nat: boolean;
  /** Peers over TCP on the sync port. */
  tcp: boolean;
  /** Peers over UDP (µTP) on the same port number; STUN shares that UDP socket. */
  udp: boolean;
  dht: boolean;
  trackers: boolean;
  trackerUrls: string[];
  dhtBootstrap: string[];
  /** Ask STUN servers (RFC 8489) for this device's external address. */
  stun: boolean;
  /** STUN servers, HOST:PORT, asked in order until one answers. */
  stunServers: string[];
  /** TURN servers, turn://USER:PASSWORD@HOST:PORT: an allocation on each relays for this device (never shown or logged). */
  turnServers: string[];
  /** Relay streams between two peers that each proved a folder in common with this device (src/relay/). */
  relay: boolean;
  /** Bytes per second relayed for others, in all; 0 = no cap. */
  relayRateBps: number;
  archiveDays: number;
  /** Peers' deletions of more than this many files (or more than half a folder) wait for the owner; 0 = only the half rule. */
  massDeleteFiles: number;
  /** Upload and download rate limits in KiB/s; 0 = unlimited. */
  uploadKBps: number;
  downloadKBps: number;
  /** Full rescan period, the safety net behind the watcher. */
  rescanIntervalS: number;
  /** Full rescan period when the inotify limit leaves directories unwatched. */
  unwatchedRescanIntervalS: number;
  logLevel: LogLevel;
}

export const DEFAULT_SYNC_PORT = 22100;
export const DEFAULT_WEB_PORT = 8888;
export const DEFAULT_STUN_SERVERS = ['stun.l.google.com:19302', 'stun.cloudflare.com:3478', 'stun.nextcloud.com:443'] as const;
export const MAX_STUN_SERVERS = 16;
export const MAX_TURN_SERVERS = 8;

export function defaultSettings(hostname: string): Settings {
  return {
    deviceName: hostname,
    listen: `0.0.0.0:${DEFAULT_SYNC_PORT}`,
    // Every interface, as NAS apps do: the web admin needs a login.
    web: `0.0.0.0:${DEFAULT_WEB_PORT}`,
    webHosts: [],
    lan: true,
    nat: true,
    tcp: true,
    udp: true,
    dht: true,
    trackers: true,
    trackerUrls: [],
    // The mainline DHT's well-known entry points (tests always name their own).
    dhtBootstrap: ['router.bittorrent.com:6881', 'router.utorrent.com:6881', 'dht.transmissionbt.com:6881'],
    // Public STUN servers (tests and CI always pass --no-stun or their own lab server).
    stun: true,
    stunServers: [...DEFAULT_STUN_SERVERS],
    turnServers: [],
    relay: true,
    relayRateBps: DEFAULT_RELAY_RATE_BPS,
    archiveDays: 14,
    massDeleteFiles: 1000,
    uploadKBps: 0,
    downloadKBps: 0,
    rescanIntervalS: 3600,
    unwatchedRescanIntervalS: 300,
    logLevel: 'info',
  };
}

export const MAX_WEB_HOSTS = 32;

/** A name or address (no port) the web admin answers to, e.g. `nas.example.lan` or `[fd00::5]`. */
export function checkWebHost(name: string): string {
  if (typeof name !== 'string' || !/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$/.test(name)) {
    throw new FerryError('USAGE', `webHosts entries must be host names or addresses without a port (got '${String(name).slice(0, 100)}')`);
  }
  return name.toLowerCase();
}

/** Checks stored or given values; returns the settings with the overrides applied. */
export function mergeSettings(base: Settings, overrides: Partial<Settings>): Settings {
  const merged: Settings = { ...base };
  for (const [key, value] of Object.entries(overrides) as [keyof Settings, unknown][]) {
    if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
  }
  parseHostPort(merged.listen, 'listen address');
  parseHostPort(merged.web, 'web address');
  if (!merged.tcp && !merged.udp) throw new FerryError('USAGE', 'TCP and UDP cannot both be off');
  if (!isLogLevel(merged.logLevel)) throw new FerryError('USAGE', `unknown log level '${merged.logLevel}'`);
  if (!(merged.archiveDays >= 0)) throw new FerryError('USAGE', 'archiveDays must be ≥ 0');
  if (!Number.isSafeInteger(merged.relayRateBps) || merged.relayRateBps < 0) throw new FerryError('USAGE', 'relayRateBps must be a whole number ≥ 0 (0 = no cap)');
  if (!(merged.rescanIntervalS >= 1)) throw new FerryError('USAGE', 'rescanIntervalS must be ≥ 1');
  for (const node of merged.dhtBootstrap) {
    if (parseHostPort(node, 'DHT bootstrap node').port === 0) throw new FerryError('USAGE', `DHT bootstrap node needs a port (got '${node}')`);
  }
  if (merged.stunServers.length > MAX_STUN_SERVERS) throw new FerryError('USAGE', `at most ${MAX_STUN_SERVERS} STUN servers`);
  for (const server of merged.stunServers) {
    if (parseHostPort(server, 'STUN server').port === 0) throw new FerryError('USAGE', `STUN server needs a port (got '${server}')`);
  }
  if (merged.turnServers.length > MAX_TURN_SERVERS) throw new FerryError('USAGE', `at most ${MAX_TURN_SERVERS} TURN servers`);
  for (const server of merged.turnServers) parseTurnUrl(server);
  if (merged.webHosts.length > MAX_WEB_HOSTS) throw new FerryError('USAGE', `at most ${MAX_WEB_HOSTS} web host names`);
  for (const name of merged.webHosts) checkWebHost(name);
  for (const url of merged.trackerUrls) {
    if (!/^(https?:\/\/[^\s/]+\/\S*|udp:\/\/[^\s/]+:\d{1,5}(\/\S*)?)$/.test(url)) {
      throw new FerryError('USAGE', `tracker must be an http(s)://HOST/PATH or udp://HOST:PORT URL (got '${url}')`);
    }
  }
  return merged;
}
