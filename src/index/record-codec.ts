// Stored form of a FileRecord: a fixed msgpack tuple without the path (the key holds it), checked on read.

import { FerryError } from '../errors.js';
import { isLongPath, pathOfKey } from './keys.js';
import { compareVersions, type FileRecord, type FileType, type VersionVector } from './records.js';
import type { LocalStat } from './types.js';

const TYPE_CODES: Record<FileType, number> = { file: 0, dir: 1, symlink: 2 };
const TYPES_BY_CODE: FileType[] = ['file', 'dir', 'symlink'];

/**
 * Schema 1 tuple. Changing it means a new schema version and a migration.
 * [type, size, mode, mtimeMs, inode, version, modifiedBy, blockSize, blocks, deleted, sequence,
 *  linkTarget | null, signature | null] and, for ENC-facing records only, a 14th element: sealed.
 * A path too long to be its own key (isLongPath) is keyed by a digest and its tuple has 15
 * elements: [..., sealed | null, full path], checked against the path asked for on every read.
 */
export type StoredRecord = [
  type: number,
  size: number,
  mode: number,
  mtimeMs: number,
  inode: number,
  version: VersionVector,
  modifiedBy: string,
  blockSize: number,
  blocks: Uint8Array[],
  deleted: boolean,
  sequence: number,
  linkTarget: string | null,
  signature: Uint8Array | null,
  sealed?: Uint8Array | null,
  path?: string,
];

const STORED_LENGTH = 13;

export function encodeRecord(record: FileRecord): StoredRecord {
  const stored: StoredRecord = [
    TYPE_CODES[record.type],
    record.size,
    record.mode,
    record.mtimeMs,
    record.inode,
    { ...record.version },
    record.modifiedBy,
    record.blockSize,
    record.blocks,
    record.deleted,
    record.sequence,
    record.linkTarget ?? null,
    record.signature ?? null,
  ];
  if (record.sealed !== undefined) stored.push(record.sealed);
  if (isLongPath(record.path)) {
    if (record.sealed === undefined) stored.push(null);
    stored.push(record.path);
  }
  return stored;
}

/** A plain Uint8Array view (msgpackr hands back copied Buffers; callers compare and store Uint8Arrays). */
function asBytes(value: unknown, what: string, path: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw corrupt(`${what} is not bytes`, path);
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function corrupt(detail: string, path: string): FerryError {
  return new FerryError('INDEX_CORRUPT', `stored record for ${JSON.stringify(path)}: ${detail}`);
}

/** The tuple's numeric fields: size, mode, mtimeMs, inode (blockSize and sequence are checked by decodeRecord). */
const STAT_NUMBERS = [1, 2, 3, 4];

/** The file type a stored code names. Only a number is looked up: any other value (an object with a hostile toString) is corrupt as it is. */
function typeOfCode(code: unknown, path: string): FileType {
  const type = typeof code === 'number' ? TYPES_BY_CODE[code] : undefined;
  if (type === undefined) throw corrupt(`unknown type ${typeof code === 'number' ? code : typeof code}`, path);
  return type;
}

/** Checks the tuple's shape, and that a long path's tuple carries exactly `path`. */
function checkTuple(path: string, stored: unknown): asserts stored is unknown[] {
  if (!Array.isArray(stored)) throw corrupt('not a schema-1 tuple', path);
  const long = isLongPath(path);
  if (long ? stored.length !== STORED_LENGTH + 2 : stored.length !== STORED_LENGTH && stored.length !== STORED_LENGTH + 1) {
    throw corrupt('not a schema-1 tuple', path);
  }
  if (long && stored[STORED_LENGTH + 1] !== path) throw corrupt('holds another path (digest key collision)', path);
  for (const i of STAT_NUMBERS) if (typeof stored[i] !== 'number') throw corrupt(`field ${i} is not a number`, path);
}

/** The path of a record stored under key part `keyPart` (for a digest key, the full path the tuple carries). */
export function storedPath(keyPart: string, stored: unknown): string {
  return pathOfKey(keyPart, Array.isArray(stored) ? stored[STORED_LENGTH + 1] : undefined);
}

export function decodeRecord(path: string, stored: unknown): FileRecord {
  checkTuple(path, stored);
  const [type, size, mode, mtimeMs, inode, version, modifiedBy, blockSize, blocks, deleted, sequence, linkTarget, signature, sealed] =
    stored as unknown[];
  const fileType = typeOfCode(type, path);
  if (typeof version !== 'object' || version === null || Array.isArray(version) || !Array.isArray(blocks)) throw corrupt('bad version or blocks', path);
  if (typeof blockSize !== 'number' || typeof sequence !== 'number' || typeof modifiedBy !== 'string') throw corrupt('bad blockSize, sequence or modifiedBy', path);
  const record: FileRecord = {
    path,
    type: fileType,
    size: size as number,
    mode: mode as number,
    mtimeMs: mtimeMs as number,
    inode: inode as number,
    version: version as VersionVector,
    modifiedBy: modifiedBy as string,
    blockSize: blockSize as number,
    blocks: blocks.map((block) => asBytes(block, 'block hash', path)),
    deleted: deleted === true,
    sequence: sequence as number,
  };
  if (typeof linkTarget === 'string') record.linkTarget = linkTarget;
  if (signature !== null && signature !== undefined) record.signature = asBytes(signature, 'signature', path);
  if (sealed !== undefined && sealed !== null) record.sealed = asBytes(sealed, 'sealed record', path);
  return record;
}

/** The scan's fields of a stored record, without copying its blocks or version (see LocalStat). */
export function decodeStat(path: string, stored: unknown): LocalStat {
  checkTuple(path, stored);
  const type = typeOfCode(stored[0], path);
  const stat: LocalStat = {
    path,
    type,
    size: stored[1] as number,
    mode: stored[2] as number,
    mtimeMs: stored[3] as number,
    inode: stored[4] as number,
    deleted: stored[9] === true,
  };
  if (typeof stored[11] === 'string') stat.linkTarget = stored[11];
  return stat;
}

/**
 * How a global record is stored (schema 3): a file's global record is nearly always the local one
 * (this device made it, or fetched and installed it), so it is then stored as a marker,
 * [sequence, inode] and the global mtime when the local one differs (a file system keeps mtimes in
 * microseconds or coarser), read back through the local record: about 150 bytes less per file.
 * A record with a signature or a sealed form, a long path (its value carries the path), or any
 * other difference from the local record is stored in full.
 */
export type LocalMarker = [sequence: number, inode: number, mtimeMs?: number];

export function isLocalMarker(stored: unknown): stored is LocalMarker {
  return Array.isArray(stored) && (stored.length === 2 || stored.length === 3);
}

export function storedGlobal(global: FileRecord, local: FileRecord | undefined): LocalMarker | StoredRecord {
  if (local && global.signature === undefined && global.sealed === undefined && !isLongPath(global.path) && sameAsStored(global, local)) {
    return global.mtimeMs === local.mtimeMs ? [global.sequence, global.inode] : [global.sequence, global.inode, global.mtimeMs];
  }
  return encodeRecord(global);
}

/** Whether `global` reads back exactly from `local` once its sequence, inode and mtime are put in. */
function sameAsStored(global: FileRecord, local: FileRecord): boolean {
  if (local.signature !== undefined || local.sealed !== undefined) return false;
  if (
    global.type !== local.type ||
    global.size !== local.size ||
    global.mode !== local.mode ||
    global.modifiedBy !== local.modifiedBy ||
    global.blockSize !== local.blockSize ||
    global.deleted !== local.deleted ||
    global.linkTarget !== local.linkTarget ||
    global.blocks.length !== local.blocks.length ||
    compareVersions(global.version, local.version) !== 'equal'
  ) {
    return false;
  }
  for (let i = 0; i < global.blocks.length; i++) if (!Buffer.from(global.blocks[i]!).equals(local.blocks[i]!)) return false;
  return true;
}

/** A peer's record in the `remote` database: its version vector only (schema 3). */
export function encodeRemote(record: FileRecord): VersionVector {
  return { ...record.version };
}

export function decodeRemote(path: string, stored: unknown): VersionVector {
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) {
    throw new FerryError('INDEX_CORRUPT', `remote entry of ${JSON.stringify(path)} is not a version vector`);
  }
  return stored as VersionVector;
}
