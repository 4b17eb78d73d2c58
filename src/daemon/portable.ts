// The home's portable file: the device identity, folder keys and settings, kept beside the index in
// plain JSON (owner-only, replaced atomically on every change), so a home survives an index that
// cannot be read (another word size, another schema, damage) and can be backed up and restored.

import { X509Certificate } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, ioError } from '../errors.js';
import type { IndexStore } from '../index/store.js';
import type { DeviceRecord, FolderConfig } from '../index/types.js';
import { CERT_FILE, KEY_FILE, deviceIdFromCertificate } from '../keys/index.js';
import { writeFileAtomically } from '../keys/device.js';
import { silentLogger, type Logger } from '../util/log.js';

export const PORTABLE_FORMAT = 'ferry-home';
export const PORTABLE_VERSION = 1;
/** Settings the daemon rebuilds by itself (and that change often): left out of the portable file. */
export const VOLATILE_SETTINGS: ReadonlySet<string> = new Set(['dhtState']);
/** Larger than any real home's file: a bigger one is refused unread. */
export const MAX_PORTABLE_BYTES = 16 * 1024 * 1024;

export interface PortableHome {
  format: typeof PORTABLE_FORMAT;
  version: number;
  savedAt: string;
  /** The device's TLS key and certificate (PEM), as in `<home>/device/`. */
  device?: { id: string; keyPem: string; certPem: string };
  /** The index's settings database (stored settings, known peers, admin password hash, grant books, …). */
  settings: Record<string, unknown>;
  folders: FolderConfig[];
  devices: DeviceRecord[];
  /** Set when read: records left out because they were malformed (never written). */
  skipped?: string[];
}

/** Reads the device identity files of `deviceDir`, if both are there. */
export async function readDeviceFiles(deviceDir: string): Promise<PortableHome['device']> {
  const read = (name: string): Promise<string | undefined> =>
    readFile(join(deviceDir, name), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw ioError(`cannot read ${name}`, err);
    });
  const [keyPem, certPem] = await Promise.all([read(KEY_FILE), read(CERT_FILE)]);
  if (keyPem === undefined || certPem === undefined) return undefined;
  return { id: deviceIdFromCertificate(new X509Certificate(certPem)), keyPem, certPem };
}

/** What the store holds that is not rebuilt from the folders and the peers, with the device identity. */
export function snapshotHome(store: IndexStore, device: PortableHome['device']): PortableHome {
  const settings = store.allSettings();
  for (const key of VOLATILE_SETTINGS) delete settings[key];
  return {
    format: PORTABLE_FORMAT,
    version: PORTABLE_VERSION,
    savedAt: new Date().toISOString(),
    ...(device ? { device } : {}),
    settings,
    folders: store.listFolders(),
    devices: store.listDevices(),
  };
}

/** Checks the shape of a parsed portable file (from the home or a backup); `what` names it in errors. */
export function parsePortable(text: string, what: string): PortableHome {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new FerryError('INDEX_CORRUPT', `${what} is not valid JSON: ${(err as Error).message}`);
  }
  const bad = (detail: string): FerryError => new FerryError('INDEX_CORRUPT', `${what} is not a Ferry home file: ${detail}`);
  if (typeof data !== 'object' || data === null) throw bad('not an object');
  const home = data as Partial<PortableHome>;
  if (home.format !== PORTABLE_FORMAT) throw bad(`format ${JSON.stringify(home.format)}`);
  if (typeof home.version !== 'number' || home.version > PORTABLE_VERSION) throw bad(`version ${JSON.stringify(home.version)} (this build reads up to ${PORTABLE_VERSION})`);
  if (typeof home.settings !== 'object' || home.settings === null || Array.isArray(home.settings)) throw bad('settings');
  if (!Array.isArray(home.folders) || !Array.isArray(home.devices)) throw bad('folders or devices');
  if (home.device !== undefined) {
    const d = home.device;
    if (typeof d !== 'object' || d === null || typeof d.keyPem !== 'string' || typeof d.certPem !== 'string' || typeof d.id !== 'string') throw bad('device');
  }
  // One bad record is left out (and reported), never a reason to lose the others.
  const skipped: string[] = [];
  const folders = home.folders.filter((folder: unknown, i) => {
    const f = folder as Partial<FolderConfig> | null;
    const good = typeof f === 'object' && f !== null && typeof f.id === 'string' && /^[0-9a-f]{40}$/.test(f.id) && typeof f.path === 'string' && typeof f.key === 'string';
    if (!good) skipped.push(`folders[${i}]: no folder ID, path or key`);
    return good;
  });
  const devices = home.devices.filter((device: unknown, i) => {
    const good = typeof device === 'object' && device !== null && typeof (device as DeviceRecord).id === 'string';
    if (!good) skipped.push(`devices[${i}]: no device ID`);
    return good;
  });
  return { ...(home as PortableHome), folders, devices, ...(skipped.length ? { skipped } : {}) };
}

/** The portable file at `path`; undefined when there is none. A damaged one is an INDEX_CORRUPT error. */
export async function readPortable(path: string): Promise<PortableHome | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`cannot read ${path}`, err);
  }
  if (text.length > MAX_PORTABLE_BYTES) throw new FerryError('INDEX_CORRUPT', `${path} is larger than ${MAX_PORTABLE_BYTES} bytes`);
  return parsePortable(text, path);
}

/** Writes owner-only (0600), via a temporary file, fsync and rename. */
export async function writePortable(path: string, home: PortableHome): Promise<void> {
  try {
    await writeFileAtomically(path, `${JSON.stringify(home, null, 1)}\n`, 0o600);
  } catch (err) {
    throw ioError(`cannot write ${path}`, err);
  }
}

/** Puts a portable file's settings, folders and devices into a (new) index. */
export async function importPortable(store: IndexStore, home: PortableHome): Promise<void> {
  for (const [key, value] of Object.entries(home.settings)) {
    if (!VOLATILE_SETTINGS.has(key)) await store.putSetting(key, value);
  }
  for (const folder of home.folders) await store.putFolder(folder);
  for (const device of home.devices) await store.putDevice(device);
}

/** Moves a damaged portable file aside (never deleted) so a fresh one can be written. */
export async function setPortableAside(path: string, when: Date = new Date()): Promise<string> {
  const aside = `${path.replace(/\.json$/, '')}-broken-${stamp(when)}.json`;
  await rename(path, aside);
  return aside;
}

/** A time for file names: 2026-12-07T02-30-05Z. */
export function stamp(when: Date): string {
  return when.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/**
 * Keeps the portable file in step with the store: save() after each change writes a fresh snapshot;
 * saves run one at a time, and calls while one waits share it.
 */
export class PortableMirror {
  private last: Promise<void> = Promise.resolve();
  private queued: Promise<void> | null = null;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => Promise<PortableHome>,
    private readonly logger: Logger = silentLogger,
  ) {}

  /** Resolves once the file holds what the store held when the call was made; failures are logged, not thrown. */
  save(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.last.then(async () => {
      this.queued = null;
      try {
        await writePortable(this.path, await this.snapshot());
      } catch (err) {
        this.logger.error('cannot update the portable home file', { path: this.path, err: err as Error });
      }
    });
    this.queued = next;
    this.last = next;
    return next;
  }
}
