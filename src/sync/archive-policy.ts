// How long a folder's archive keeps versions: N days (the default), or staggered like Syncthing's
// (all for the first hour, one per hour for a day, one per day for 30 days, one per week up to a
// maximum age), each with an optional cap on the archive's total size (oldest removed first).

import { FerryError } from '../errors.js';
import type { ArchivedFile } from './archive.js';

import type { ArchivePolicy } from '../index/types.js';

export type { ArchivePolicy };

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Staggered intervals: versions younger than `endMs` are kept at most one per `stepMs` (0: all). */
export const STAGGER_INTERVALS: ReadonlyArray<{ endMs: number; stepMs: number }> = [
  { endMs: HOUR_MS, stepMs: 0 },
  { endMs: DAY_MS, stepMs: HOUR_MS },
  { endMs: 30 * DAY_MS, stepMs: DAY_MS },
  { endMs: Number.POSITIVE_INFINITY, stepMs: 7 * DAY_MS },
];

export const MAX_ARCHIVE_POLICY_DAYS = 36_500;

/** Checks a policy from the API or the store; throws USAGE naming what is wrong. */
export function checkArchivePolicy(value: unknown): ArchivePolicy {
  const p = value as Partial<ArchivePolicy & { days: number; maxAgeDays: number }> | null;
  if (typeof p !== 'object' || p === null) throw new FerryError('USAGE', 'archive policy must be an object');
  const cap = p.maxArchiveBytes;
  if (cap !== undefined && !(Number.isSafeInteger(cap) && cap >= 0)) throw new FerryError('USAGE', 'maxArchiveBytes must be a whole number ≥ 0 (0 = no cap)');
  const extra = cap ? { maxArchiveBytes: cap } : {};
  const days = (n: unknown, name: string): number => {
    if (typeof n !== 'number' || !(n >= 0) || n > MAX_ARCHIVE_POLICY_DAYS) throw new FerryError('USAGE', `${name} must be a number of days from 0 to ${MAX_ARCHIVE_POLICY_DAYS}`);
    return n;
  };
  if (p.kind === 'days') return { kind: 'days', days: days(p.days, 'days'), ...extra };
  if (p.kind === 'staggered') return { kind: 'staggered', maxAgeDays: days(p.maxAgeDays, 'maxAgeDays'), ...extra };
  throw new FerryError('USAGE', "archive policy kind is 'days' or 'staggered'");
}

/** What a purge under the policy would remove at `nowMs`, and the bytes kept and freed. */
export interface PurgePlan {
  remove: ArchivedFile[];
  keptFiles: number;
  keptBytes: number;
  freedBytes: number;
}

function byAgeThenName(a: ArchivedFile, b: ArchivedFile): number {
  return a.archivedAtMs - b.archivedAtMs || (a.archivePath < b.archivePath ? -1 : a.archivePath > b.archivePath ? 1 : 0);
}

/**
 * The staggered rule for one file's versions (any order): beyond maxAge each goes; of the rest,
 * walking from the oldest, a version is kept when it is at least its interval's step younger than
 * the last one kept (the oldest is always kept), as Syncthing's staggered versioning does.
 */
export function staggeredKeep(versions: readonly ArchivedFile[], maxAgeMs: number, nowMs: number): Set<ArchivedFile> {
  const kept = new Set<ArchivedFile>();
  let lastKeptMs: number | undefined;
  for (const version of [...versions].sort(byAgeThenName)) {
    const age = nowMs - version.archivedAtMs;
    if (age > maxAgeMs) continue;
    const step = STAGGER_INTERVALS.find((interval) => age < interval.endMs)!.stepMs;
    if (lastKeptMs !== undefined && version.archivedAtMs - lastKeptMs < step) continue;
    kept.add(version);
    lastKeptMs = version.archivedAtMs;
  }
  return kept;
}

/** Applies the policy (age first, then the size cap, oldest first) to every archived file. */
export function purgePlan(files: readonly ArchivedFile[], policy: ArchivePolicy, nowMs: number): PurgePlan {
  const keep: ArchivedFile[] = [];
  const remove: ArchivedFile[] = [];
  if (policy.kind === 'days') {
    const cutoff = nowMs - policy.days * DAY_MS;
    for (const file of files) (file.archivedAtMs >= cutoff ? keep : remove).push(file);
  } else {
    const byPath = new Map<string, ArchivedFile[]>();
    for (const file of files) {
      const list = byPath.get(file.path);
      if (list) list.push(file);
      else byPath.set(file.path, [file]);
    }
    for (const versions of byPath.values()) {
      const kept = staggeredKeep(versions, policy.maxAgeDays * DAY_MS, nowMs);
      for (const version of versions) (kept.has(version) ? keep : remove).push(version);
    }
  }
  let keptBytes = keep.reduce((sum, file) => sum + file.size, 0);
  if (policy.maxArchiveBytes && keptBytes > policy.maxArchiveBytes) {
    keep.sort(byAgeThenName);
    let i = 0;
    while (keptBytes > policy.maxArchiveBytes && i < keep.length) {
      keptBytes -= keep[i]!.size;
      remove.push(keep[i]!);
      i++;
    }
  }
  return { remove, keptFiles: files.length - remove.length, keptBytes, freedBytes: remove.reduce((sum, file) => sum + file.size, 0) };
}
