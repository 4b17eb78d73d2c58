// The file record and version vectors: the unit of state that is indexed, signed and exchanged.

export type FileType = 'file' | 'dir' | 'symlink';

/**
 * Version vector: device short ID → counter. Keys are device short IDs (base32), never file
 * names, so msgpackr's `__proto__` renaming cannot touch them.
 */
export type VersionVector = Record<string, number>;

export interface FileRecord {
  /** Relative, NFC, `/`-separated, no leading or trailing slash. */
  path: string;
  type: FileType;
  /** Bytes; 0 for directories and symlinks. */
  size: number;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  mtimeMs: number;
  /** Local inode for change detection; 0 in records that came from a peer. */
  inode: number;
  version: VersionVector;
  /** Device short ID of the last change. */
  modifiedBy: string;
  blockSize: number;
  /** SHA-256 of each block, 32 bytes each. Empty for directories, symlinks, empty files and tombstones. */
  blocks: Uint8Array[];
  /** Target of a symlink, as stored in the link (never followed). */
  linkTarget?: string;
  deleted: boolean;
  /** Position in the local index's change log; assigned by the index. */
  sequence: number;
  /** Signature by the folder key (or a granted device) over the record's canonical form. */
  signature?: Uint8Array;
  /** ENC-facing records only: the plaintext record, encrypted with the content key (src/sync/enc-records.ts). */
  sealed?: Uint8Array;
}

export type VersionOrder = 'equal' | 'newer' | 'older' | 'concurrent';

/** How `a` relates to `b`: newer means a dominates b. */
export function compareVersions(a: VersionVector, b: VersionVector): VersionOrder {
  let aAhead = false;
  let bAhead = false;
  for (const id of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[id] ?? 0;
    const y = b[id] ?? 0;
    if (x > y) aAhead = true;
    else if (y > x) bAhead = true;
  }
  if (aAhead && bAhead) return 'concurrent';
  if (aAhead) return 'newer';
  if (bAhead) return 'older';
  return 'equal';
}

/**
 * Largest version counter there is (2^48): far below 2^53, so a counter is always an exact integer
 * in JavaScript and msgpack, and a peer that sends more is refused (the record, not the link).
 */
export const MAX_VERSION_COUNTER = 2 ** 48;

/** mtimes a record may carry (ms since the epoch): the years 0001 to 9999. A later one cannot be set on a file. */
export const MIN_RECORD_MTIME_MS = -62_135_596_800_000;
export const MAX_RECORD_MTIME_MS = 253_402_300_799_999;

/** Whether an mtime can travel in a record (finite, years 0001 to 9999). */
export function isRecordMtime(mtimeMs: number): boolean {
  return Number.isFinite(mtimeMs) && mtimeMs >= MIN_RECORD_MTIME_MS && mtimeMs <= MAX_RECORD_MTIME_MS;
}

/**
 * The vector after `device` made a change on top of `base`. A counter is never bumped past
 * MAX_VERSION_COUNTER: once the device's own entry is there (a peer may have pushed it up), the
 * change counts under the device's overflow entry `<device>-2` (then `-3`, …), which no other
 * device can hold (short IDs have no dash). Raising any one entry makes the new vector dominate
 * `base`, so the change supersedes it everywhere as usual.
 */
export function bumpVersion(base: VersionVector, device: string): VersionVector {
  let id = device;
  for (let n = 2; (base[id] ?? 0) >= MAX_VERSION_COUNTER; n++) id = `${device}-${n}`;
  const next: VersionVector = { ...base, [id]: (base[id] ?? 0) + 1 };
  // A counter above the cap (adopted before there was one) is brought down to it, so the edit can be
  // sent again; against the old version the new one is then concurrent, and the conflict rule settles it.
  for (const [key, counter] of Object.entries(next)) if (counter > MAX_VERSION_COUNTER) next[key] = MAX_VERSION_COUNTER;
  return next;
}

/** Least upper bound of two vectors (used when a conflict is resolved). */
export function mergeVersions(a: VersionVector, b: VersionVector): VersionVector {
  const out: VersionVector = { ...a };
  for (const [id, n] of Object.entries(b)) out[id] = Math.max(out[id] ?? 0, n);
  return out;
}

/** Deterministic order of the version vector's entries, for the last tie-break between concurrent records. */
function versionKey(version: VersionVector): string {
  return JSON.stringify(Object.entries(version).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Which of two concurrent records keeps the name, the same on every device: a live record beats a
 * tombstone (nothing is lost by keeping it), then the newer mtime, then the larger `modifiedBy`,
 * then the larger version vector encoding. Returns the winner (`a` when they are indistinguishable).
 */
export function conflictWinner<T extends Pick<FileRecord, 'deleted' | 'mtimeMs' | 'modifiedBy' | 'version'>>(a: T, b: T): T {
  if (a.deleted !== b.deleted) return a.deleted ? b : a;
  if (a.mtimeMs !== b.mtimeMs) return a.mtimeMs > b.mtimeMs ? a : b;
  if (a.modifiedBy !== b.modifiedBy) return a.modifiedBy > b.modifiedBy ? a : b;
  return versionKey(b.version) > versionKey(a.version) ? b : a;
}

/** Whether `candidate` should replace `current` as the global (best known) record of a path. */
export function supersedes(candidate: FileRecord, current: FileRecord | undefined): boolean {
  if (!current) return true;
  const order = compareVersions(candidate.version, current.version);
  if (order === 'newer') return true;
  if (order === 'concurrent') return conflictWinner(candidate, current) === candidate;
  return false;
}
