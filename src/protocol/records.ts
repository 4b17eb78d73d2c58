// File records on the wire: wire form, validated conversion back, and the canonical bytes a RW holder signs.

import type { FileRecord, FileType, VersionVector } from '../index/records.js';
import { encodeBody } from './frames.js';
import {
  checkArray,
  checkBoolean,
  checkByteRange,
  checkBytes,
  checkDeviceId,
  checkFiniteNumber,
  checkObject,
  checkOneOf,
  checkRelativePath,
  checkString,
  checkUint,
  protocolError,
} from './checks.js';
import { LIMITS } from './limits.js';

const FILE_TYPES: readonly FileType[] = ['file', 'dir', 'symlink'];

/** A version vector on the wire: `[deviceShortId, counter]` pairs, sorted by device. */
export type WireVersion = [string, number][];

/** A FileRecord on the wire: no inode (local only); the path is a value, never a map key. */
export type WireRecord = Omit<FileRecord, 'inode' | 'version'> & { version: WireVersion };

export function versionToWire(version: VersionVector): WireVersion {
  return Object.entries(version).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function versionFromWire(value: unknown, where: string): VersionVector {
  const pairs = checkArray(value, where, LIMITS.maxVersionEntries);
  const version: VersionVector = {};
  for (const [i, pair] of pairs.entries()) {
    const entry = checkArray(pair, `${where}[${i}]`, 2);
    if (entry.length !== 2) throw protocolError(`${where}[${i}]`, 'not a [device, counter] pair');
    const device = checkDeviceId(entry[0], `${where}[${i}].device`);
    if (Object.hasOwn(version, device)) throw protocolError(`${where}[${i}]`, `device ${device} twice`);
    const counter = checkUint(entry[1], `${where}[${i}].counter`, LIMITS.maxVersionCounter);
    if (counter === 0) throw protocolError(`${where}[${i}].counter`, 'zero');
    version[device] = counter;
  }
  return version;
}

export function toWireRecord(record: FileRecord): WireRecord {
  const wire: WireRecord = {
    path: record.path,
    type: record.type,
    size: record.size,
    mode: record.mode,
    mtimeMs: record.mtimeMs,
    version: versionToWire(record.version),
    modifiedBy: record.modifiedBy,
    blockSize: record.blockSize,
    blocks: record.blocks,
    deleted: record.deleted,
    sequence: record.sequence,
  };
  if (record.linkTarget !== undefined) wire.linkTarget = record.linkTarget;
  if (record.signature !== undefined) wire.signature = record.signature;
  if (record.sealed !== undefined) wire.sealed = record.sealed;
  return wire;
}

/** A finite mtime within years 0001–9999: a later one cannot be set on a file, and would jam it. */
function checkMtime(value: unknown, where: string): number {
  const mtimeMs = checkFiniteNumber(value, where);
  if (mtimeMs < LIMITS.minMtimeMs || mtimeMs > LIMITS.maxMtimeMs) throw protocolError(where, 'outside the years 0001 to 9999');
  return mtimeMs;
}

/**
 * Validates a wire record and returns it as a FileRecord (inode 0: it came from a peer). Throws
 * PROTOCOL or PATH_UNSAFE for this one record: a batch skips it and reports it (validate.ts).
 */
export function recordFromWire(value: unknown, where: string): FileRecord {
  const wire = checkObject(value, where);
  checkRelativePath(wire.path);
  const path = wire.path;
  const type = checkOneOf(wire.type, `${where}.type`, FILE_TYPES);
  const deleted = checkBoolean(wire.deleted, `${where}.deleted`);
  const size = checkUint(wire.size, `${where}.size`);
  const blockSize = checkUint(wire.blockSize, `${where}.blockSize`, LIMITS.maxBlockSize);
  const blocks = checkArray(wire.blocks, `${where}.blocks`, LIMITS.maxBlocksPerRecord).map((block, i) =>
    checkBytes(block, `${where}.blocks[${i}]`, LIMITS.hashBytes),
  );
  if (type === 'file' && !deleted) {
    if (size > 0 && blockSize === 0) throw protocolError(`${where}.blockSize`, 'zero for a non-empty file');
    const expected = size === 0 ? 0 : Math.ceil(size / blockSize);
    if (blocks.length !== expected) {
      throw protocolError(`${where}.blocks`, `${blocks.length} hashes for ${size} bytes in blocks of ${blockSize}`);
    }
  } else {
    if (blocks.length !== 0) throw protocolError(`${where}.blocks`, `not empty for a ${deleted ? 'deleted entry' : type}`);
    if (type !== 'file' && size !== 0) throw protocolError(`${where}.size`, `not 0 for a ${type}`);
  }
  const record: FileRecord = {
    path,
    type,
    size,
    mode: checkUint(wire.mode, `${where}.mode`, 0o7777),
    mtimeMs: checkMtime(wire.mtimeMs, `${where}.mtimeMs`),
    inode: 0,
    version: versionFromWire(wire.version, `${where}.version`),
    modifiedBy: checkDeviceId(wire.modifiedBy, `${where}.modifiedBy`),
    blockSize,
    blocks,
    deleted,
    sequence: checkUint(wire.sequence, `${where}.sequence`),
  };
  if (wire.linkTarget !== undefined) {
    if (type !== 'symlink') throw protocolError(`${where}.linkTarget`, `present on a ${type}`);
    const target = checkString(wire.linkTarget, `${where}.linkTarget`, LIMITS.maxLinkTargetBytes);
    if (target === '' || target.includes('\0')) throw protocolError(`${where}.linkTarget`, 'empty or contains NUL');
    record.linkTarget = target;
  } else if (type === 'symlink' && !deleted) {
    throw protocolError(`${where}.linkTarget`, 'missing on a symlink');
  }
  if (wire.signature !== undefined) {
    // The folder key's signature, or one made under an RW grant (grant ID ‖ signature).
    const long = wire.signature instanceof Uint8Array && wire.signature.length === LIMITS.grantSignatureBytes;
    record.signature = checkBytes(wire.signature, `${where}.signature`, long ? LIMITS.grantSignatureBytes : LIMITS.signatureBytes);
  }
  if (wire.sealed !== undefined) {
    record.sealed = Buffer.from(checkByteRange(wire.sealed, `${where}.sealed`, LIMITS.maxSealedBytes));
  }
  return record;
}

const RECORD_SIGNING_LABEL = 'ferry/record/v1';

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The canonical bytes a record's signature covers: msgpack of a fixed-order array of every field
 * but `sequence` and `inode` (local bookkeeping) and `signature` itself, prefixed by a label so a
 * record signature can never be mistaken for a handshake proof, and bound to the folder ID.
 */
export function recordSigningBytes(folderId: Uint8Array, record: FileRecord): Buffer {
  return encodeBody([
    RECORD_SIGNING_LABEL,
    asBuffer(folderId),
    record.path,
    record.type,
    record.size,
    record.mode,
    record.mtimeMs,
    versionToWire(record.version),
    record.modifiedBy,
    record.blockSize,
    record.blocks.map(asBuffer),
    record.linkTarget ?? null,
    record.deleted,
    // Only ENC-facing records carry a sealed record; older records sign exactly what they did before.
    ...(record.sealed !== undefined ? [asBuffer(record.sealed)] : []),
  ]);
}
