// Names the puller makes up (conflict copies, temp files); the paths themselves are resolved by scan/disk-path.ts.

import { createHash } from 'node:crypto';
import { versionToWire } from '../protocol/records.js';
import type { VersionVector } from '../index/records.js';
import { TEMP_FILE_PREFIX } from '../scan/ignore.js';

export { childPath, DiskPaths, foldName, type ResolvedTarget } from '../scan/disk-path.js';

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/**
 * `dir/name.conflict-YYYYMMDD-HHMMSS-<device>.ext` (UTC). Built from the losing record's mtime and
 * author, so the same conflict gets the same name on every attempt and every device.
 */
export function conflictPath(path: string, mtimeMs: number, device: string): string {
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '' : path.slice(0, slash + 1);
  const name = path.slice(slash + 1);
  const dot = name.lastIndexOf('.');
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
  const d = new Date(Math.max(0, Math.floor(mtimeMs)));
  const stamp = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}-${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  return `${dir}${stem}.conflict-${stamp}-${device}${ext}`;
}

/** The temp file's name beside the target: stable per (path, version) so a restart finds it again. */
export function tempName(path: string, version: VersionVector): string {
  const digest = createHash('sha256').update(path).update('\0').update(JSON.stringify(versionToWire(version))).digest('hex');
  return `${TEMP_FILE_PREFIX}${digest.slice(0, 24)}`;
}

