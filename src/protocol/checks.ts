// Field checkers for decoded peer input (types, lengths, bounds) and the relative-path safety rule.

import { FerryError } from '../errors.js';
import { refusedCharacter } from '../util/names.js';
import { LIMITS } from './limits.js';

export function protocolError(where: string, detail: string): FerryError {
  return new FerryError('PROTOCOL', `${where}: ${detail}`);
}

/** A plain msgpack map (not an array, bytes, Date or other extension object). */
export function checkObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) throw protocolError(where, 'not a map');
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw protocolError(where, 'not a map');
  return value as Record<string, unknown>;
}

export function checkString(value: unknown, where: string, maxBytes: number): string {
  if (typeof value !== 'string') throw protocolError(where, 'not a string');
  // UTF-16 length bounds the UTF-8 length from below, so huge strings are rejected without encoding them.
  if (value.length > maxBytes || Buffer.byteLength(value) > maxBytes) {
    throw protocolError(where, `longer than ${maxBytes} bytes`);
  }
  return value;
}

/** A non-negative safe integer up to `max`. */
export function checkUint(value: unknown, where: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw protocolError(where, `not an integer in 0..${max}`);
  }
  return value;
}

export function checkFiniteNumber(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw protocolError(where, 'not a finite number');
  return value;
}

export function checkBoolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw protocolError(where, 'not a boolean');
  return value;
}

/** Bytes of exactly `length`, copied so a kept hash does not pin the whole frame in memory. */
export function checkBytes(value: unknown, where: string, length: number): Buffer {
  if (!(value instanceof Uint8Array)) throw protocolError(where, 'not bytes');
  if (value.length !== length) throw protocolError(where, `${value.length} bytes, expected ${length}`);
  return Buffer.from(value);
}

/** Bytes of up to `maxLength`, as a zero-copy view. */
export function checkByteRange(value: unknown, where: string, maxLength: number): Buffer {
  if (!(value instanceof Uint8Array)) throw protocolError(where, 'not bytes');
  if (value.length > maxLength) throw protocolError(where, `more than ${maxLength} bytes`);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function checkArray(value: unknown, where: string, maxLength: number): unknown[] {
  if (!Array.isArray(value)) throw protocolError(where, 'not an array');
  if (value.length > maxLength) throw protocolError(where, `more than ${maxLength} entries`);
  return value;
}

export function checkOneOf<T extends string>(value: unknown, where: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw protocolError(where, `not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/**
 * Device IDs and short IDs: letters, digits and dashes only. Besides being the base32 alphabet,
 * this keeps them safe as object keys (no `__proto__`).
 */
const DEVICE_ID_PATTERN = /^[A-Za-z0-9-]+$/;

export function checkDeviceId(value: unknown, where: string): string {
  const id = checkString(value, where, LIMITS.maxDeviceIdChars);
  if (!DEVICE_ID_PATTERN.test(id)) throw protocolError(where, 'not a device ID');
  return id;
}

/**
 * Throws PATH_UNSAFE unless `path` is a legal relative path inside a folder: non-empty, at most
 * LIMITS.maxPathBytes, valid Unicode in NFC, a sequence of segments separated by `/` (not absolute),
 * no empty, `.` or `..` segment, each segment at most LIMITS.maxNameBytes, and no control or
 * bidirectional character (src/util/names.ts). A backslash, colon, `?*<>|"`, a leading dash, a
 * trailing dot or space, `CON` or `aux.txt` are legal: they are names on Linux. (Symlinks on disk,
 * case-insensitive volumes and the "portable names" option are the sync layer's checks.)
 */
export function checkRelativePath(path: unknown): asserts path is string {
  const unsafe = (detail: string): FerryError =>
    new FerryError('PATH_UNSAFE', `unsafe path ${JSON.stringify(String(path).slice(0, 200))}: ${detail}`);
  if (typeof path !== 'string') throw new FerryError('PATH_UNSAFE', 'path is not a string');
  if (path.length === 0) throw unsafe('empty');
  if (path.length > LIMITS.maxPathBytes || Buffer.byteLength(path) > LIMITS.maxPathBytes) {
    throw unsafe(`longer than ${LIMITS.maxPathBytes} bytes`);
  }
  const refused = refusedCharacter(path);
  if (refused) throw unsafe(refused);
  if (path.startsWith('/')) throw unsafe('absolute');
  if (/\p{Cs}/u.test(path)) throw unsafe('not valid Unicode (lone surrogate)');
  if (path.normalize('NFC') !== path) throw unsafe('not NFC');
  for (const segment of path.split('/')) {
    if (segment === '') throw unsafe('empty segment');
    if (segment === '.' || segment === '..') throw unsafe(`"${segment}" segment`);
    if (Buffer.byteLength(segment) > LIMITS.maxNameBytes) throw unsafe(`a name longer than ${LIMITS.maxNameBytes} bytes`);
  }
}
