// What the web admin asks of the daemon beyond folders: editable settings (validated), peers with their rates.

import type { EstablishedPeer } from '../connections/index.js';
import { FerryError } from '../errors.js';
import type { EditableSettings, FolderReport, PeerInfo, SettingsReport } from '../web/daemon-api.js';
import { TURN_PASSWORD_MASK, maskTurnUrl, parseTurnUrl } from '../nat/turn.js';
import { parseHostPort } from '../util/address.js';
import { MAX_STUN_SERVERS, MAX_TURN_SERVERS, MAX_WEB_HOSTS, checkWebHost, type Settings } from './settings.js';

export const EDITABLE_SETTINGS = [
  'deviceName', 'listen', 'web', 'lan', 'nat', 'dht', 'trackers', 'trackerUrls', 'archiveDays', 'uploadKBps', 'downloadKBps',
  'stun', 'stunServers', 'turnServers', 'webHosts', 'massDeleteFiles', 'relay', 'relayRateBps',
] as const satisfies readonly (keyof EditableSettings & keyof Settings)[];

const MAX_TRACKERS = 32;
const MAX_RATE_KBPS = 10_000_000;
const MAX_ARCHIVE_DAYS = 3650;

function bad(name: string, message: string): never {
  // The message starts with the setting's name, so the page can show it beside that field.
  throw new FerryError('USAGE', `${name} ${message}`);
}

function wholeNumber(name: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    bad(name, `must be a whole number from 0 to ${max}`);
  }
  return value;
}

function address(name: string, value: unknown): string {
  if (typeof value !== 'string') bad(name, 'must be HOST:PORT');
  let port: number;
  try {
    port = parseHostPort(value, name).port;
  } catch {
    bad(name, `must be HOST:PORT, e.g. 0.0.0.0:8888 (got '${value.slice(0, 100)}')`);
  }
  if (port < 1) bad(name, 'needs a port from 1 to 65535');
  return value.trim();
}

function trackerUrl(value: unknown): string {
  if (typeof value !== 'string') bad('trackerUrls', 'must be a list of URLs');
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    bad('trackerUrls', `has an entry that is not a URL: '${value.slice(0, 200)}'`);
  }
  if (!['http:', 'https:', 'udp:'].includes(url.protocol) || !url.hostname) {
    bad('trackerUrls', `entries must be http://, https:// or udp:// tracker URLs (got '${value.slice(0, 200)}')`);
  }
  return value.trim();
}

/** Checks a partial update from the API; unknown names and bad values are USAGE errors naming the setting. */
export function validateSettingsPatch(patch: Record<string, unknown>): Partial<EditableSettings> {
  const out: Partial<Record<keyof EditableSettings, unknown>> = {};
  for (const [name, value] of Object.entries(patch)) {
    switch (name) {
      case 'deviceName': {
        const text = typeof value === 'string' ? value.trim() : '';
        if (text.length < 1 || text.length > 64 || /[\u0000-\u001f\u007f]/.test(text)) {
          bad(name, 'must be 1 to 64 characters without control characters');
        }
        out.deviceName = text;
        break;
      }
      case 'listen':
      case 'web':
        out[name] = address(name, value);
        break;
      case 'lan':
      case 'nat':
      case 'dht':
      case 'trackers':
      case 'stun':
      case 'relay':
        if (typeof value !== 'boolean') bad(name, 'must be true or false');
        out[name] = value;
        break;
      case 'trackerUrls':
        if (!Array.isArray(value) || value.length > MAX_TRACKERS) bad(name, `must be a list of at most ${MAX_TRACKERS} URLs`);
        out.trackerUrls = value.map(trackerUrl);
        break;
      case 'stunServers':
        if (!Array.isArray(value) || value.length > MAX_STUN_SERVERS) bad(name, `must be a list of at most ${MAX_STUN_SERVERS} HOST:PORT`);
        out.stunServers = value.map((server) => address(name, server));
        break;
      case 'turnServers':
        if (!Array.isArray(value) || value.length > MAX_TURN_SERVERS) bad(name, `must be a list of at most ${MAX_TURN_SERVERS} turn://USER:PASSWORD@HOST:PORT URLs`);
        out.turnServers = value.map((url) => {
          try {
            if (typeof url !== 'string') throw new Error();
            parseTurnUrl(url.trim());
            return url.trim();
          } catch {
            bad(name, 'entries must be turn://USER:PASSWORD@HOST[:PORT] URLs');
          }
        });
        break;
      case 'webHosts':
        if (!Array.isArray(value) || value.length > MAX_WEB_HOSTS) bad(name, `must be a list of at most ${MAX_WEB_HOSTS} host names`);
        try {
          out.webHosts = value.map((host) => checkWebHost(host as string));
        } catch (err) {
          bad(name, (err as Error).message.replace(/^webHosts /, ''));
        }
        break;
      case 'massDeleteFiles':
        out.massDeleteFiles = wholeNumber(name, value, 1_000_000_000);
        break;
      case 'archiveDays':
        out.archiveDays = wholeNumber(name, value, MAX_ARCHIVE_DAYS);
        break;
      case 'relayRateBps':
        out.relayRateBps = wholeNumber(name, value, MAX_RATE_KBPS * 1024);
        break;
      case 'uploadKBps':
      case 'downloadKBps':
        out[name] = wholeNumber(name, value, MAX_RATE_KBPS);
        break;
      default:
        throw new FerryError('USAGE', `unknown setting '${name.slice(0, 64)}'`);
    }
  }
  return out as Partial<EditableSettings>;
}

export function editable(settings: Settings): EditableSettings {
  const out = Object.fromEntries(EDITABLE_SETTINGS.map((name) => [name, settings[name]])) as unknown as EditableSettings;
  // TURN passwords never leave the daemon.
  out.turnServers = (settings.turnServers ?? []).map(maskTurnUrl);
  return out;
}

/**
 * TURN URLs from a settings change whose password is the mask get the password of the entry for
 * the same USER@HOST:PORT among `known` (stored, then running); USAGE when there is none.
 */
export function restoreTurnPasswords(urls: readonly string[], known: readonly string[]): string[] {
  return urls.map((url) => {
    const wanted = parseTurnUrl(url);
    if (wanted.password !== TURN_PASSWORD_MASK) return url;
    const same = known.find((candidate) => {
      const have = parseTurnUrl(candidate);
      return have.username === wanted.username && have.host === wanted.host && have.port === wanted.port;
    });
    if (!same) bad('turnServers', `has a masked password for ${wanted.username}@${wanted.host}:${wanted.port}, which has none stored: give the password`);
    return same;
  });
}

/** Settings that bind a socket: a change is stored at once and used from the next start. */
export const RESTART_SETTINGS = ['listen', 'web'] as const satisfies readonly (keyof EditableSettings)[];

/** The `ferry run` flag that sets each overridable setting for a run. */
const RUN_FLAGS: Partial<Record<keyof EditableSettings, string>> = {
  listen: '--listen', web: '--web', webHosts: '--web-host', lan: '--no-lan', nat: '--no-nat', dht: '--no-dht',
  trackers: '--no-trackers', trackerUrls: '--tracker', stun: '--no-stun', stunServers: '--stun', turnServers: '--turn',
};

export function settingsReport(stored: Settings, effectiveAfterRestart: Settings, running: Settings, overrides: Partial<Settings>): SettingsReport {
  const now = editable(running);
  const next = editable(effectiveAfterRestart);
  const overridden = EDITABLE_SETTINGS.filter((name) => overrides[name] !== undefined);
  const restartFor = RESTART_SETTINGS.filter((name) => JSON.stringify(now[name]) !== JSON.stringify(next[name]));
  return {
    settings: editable(stored),
    running: now,
    overridden,
    overriddenBy: Object.fromEntries(overridden.map((name) => [name, RUN_FLAGS[name] ?? `--${name}`])),
    restartRequired: restartFor.length > 0,
    restartFor,
  };
}

/** Connected devices with their source, and rates taken from the folders' transfer samples. */
/** 6 for a socket end `[v6]:PORT` (IPv4-mapped ends are shown as IPv4 by socketAddress), else 4. */
const ipVersionOf = (address: string): 4 | 6 => (address.startsWith('[') ? 6 : 4);

export function peerInfos(connected: EstablishedPeer[], folders: FolderReport[]): PeerInfo[] {
  return connected.map((peer) => {
    let inRateBps = 0;
    let outRateBps = 0;
    const shared: string[] = [];
    for (const folder of folders) {
      const link = folder.peers.find((p) => p.device === peer.deviceId && p.connected);
      if (!link) continue;
      shared.push(folder.id);
      // One connection carries every folder, so each folder's sample is the connection's rate.
      inRateBps = Math.max(inRateBps, link.inRateBps ?? 0);
      outRateBps = Math.max(outRateBps, link.outRateBps ?? 0);
    }
    return {
      device: peer.deviceId,
      name: peer.deviceName,
      address: peer.address,
      source: peer.source,
      direction: peer.direction,
      connectedAtMs: peer.connectedAtMs,
      path: peer.path(),
      ip: ipVersionOf(peer.localAddress),
      ...(peer.rttMs() !== undefined ? { rttMs: peer.rttMs() } : {}),
      bytesIn: peer.connection.bytesIn,
      bytesOut: peer.connection.bytesOut,
      inRateBps,
      outRateBps,
      folders: shared,
    };
  });
}
