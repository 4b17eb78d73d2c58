// Daemon settings: defaults, validation, and the merge of stored settings with `run` flags.

import { FerryError } from '../errors.js';
import { isLogLevel, type LogLevel } from '../util/log.js';

export interface Settings {
  deviceName: string;
  /** Sync listener, HOST:PORT. */
  listen: string;
  /** Web admin, HOST:PORT. */
  web: string;
  lan: boolean;
  nat: boolean;
  dht: boolean;
  trackers: boolean;
  trackerUrls: string[];
  dhtBootstrap: string[];
  archiveDays: number;
  /** Full rescan period, the safety net behind the watcher. */
  rescanIntervalS: number;
  /** Full rescan period when the inotify limit leaves directories unwatched. */
  unwatchedRescanIntervalS: number;
  logLevel: LogLevel;
}

export const DEFAULT_SYNC_PORT = 22100;
export const DEFAULT_WEB_PORT = 8888;

export function defaultSettings(hostname: string): Settings {
  return {
    deviceName: hostname,
    listen: `0.0.0.0:${DEFAULT_SYNC_PORT}`,
    // Loopback until the web admin has its login (issue 6); then 0.0.0.0 as NAS apps do.
    web: `127.0.0.1:${DEFAULT_WEB_PORT}`,
    lan: true,
    nat: true,
    dht: true,
    trackers: true,
    trackerUrls: [],
    dhtBootstrap: [],
    archiveDays: 14,
    rescanIntervalS: 3600,
    unwatchedRescanIntervalS: 300,
    logLevel: 'info',
  };
}

export interface HostPort {
  host: string;
  port: number;
}

/** Parses HOST:PORT or [V6]:PORT; port 0 means "any free port". */
export function parseHostPort(text: string, what: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new FerryError('USAGE', `${what} must be HOST:PORT (got '${text}')`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Checks stored or given values; returns the settings with the overrides applied. */
export function mergeSettings(base: Settings, overrides: Partial<Settings>): Settings {
  const merged: Settings = { ...base };
  for (const [key, value] of Object.entries(overrides) as [keyof Settings, unknown][]) {
    if (value !== undefined) (merged as unknown as Record<string, unknown>)[key] = value;
  }
  parseHostPort(merged.listen, 'listen address');
  parseHostPort(merged.web, 'web address');
  if (!isLogLevel(merged.logLevel)) throw new FerryError('USAGE', `unknown log level '${merged.logLevel}'`);
  if (!(merged.archiveDays >= 0)) throw new FerryError('USAGE', 'archiveDays must be ≥ 0');
  if (!(merged.rescanIntervalS >= 1)) throw new FerryError('USAGE', 'rescanIntervalS must be ≥ 1');
  return merged;
}
