// Key layout of the index's named databases: ordered-binary array keys, ranges per folder and per path prefix.

import { createHash } from 'node:crypto';
import type { Key } from 'lmdb';
import { FerryError } from '../errors.js';
import { SHORT_ID_LENGTH } from '../keys/index.js';

/**
 * lmdb-js refuses keys above 1978 bytes; this leaves room for the folder ID, a block hash or a
 * device ID. A path up to this size (as ordered-binary writes it) is its own key, as it always was;
 * a longer one (Linux allows 4095 bytes) is keyed by a digest key, see pathKey().
 */
export const MAX_PATH_KEY_BYTES = 1800;

/**
 * Separates a digest key's path prefix from its digest: a path never holds an empty segment (and
 * lmdb-js does not read back a NUL inside a key).
 */
const DIGEST_MARK = '//';

export type PathKey = [prefix: string, path: string];
export type SequenceKey = [prefix: string, sequence: number];
export type BlockKey = [prefix: string, hashKey: string, path: string];
export type PeerKey = [prefix: string, deviceId: string];
export type RemoteKey = [prefix: string, path: string, device: string];

export interface KeyRange<K extends Key = Key[]> {
  start: K;
  end: K;
}

/*
 * Ordered-binary joins array elements with a 0x00 byte and escapes control bytes below 0x05 inside
 * strings (0x01 → 0x04 0x01), so every key [folderId, …] lies in [[folderId], [folderId + '\x01']).
 */
const AFTER_FOLDER = '\u0001';

/** Bytes ordered-binary writes for a string inside an array key (bytes below 0x05 are escaped). */
function keyBytes(text: string): number {
  let escaped = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 5) escaped++;
  return Buffer.byteLength(text) + escaped;
}

/** The longest prefix of `text`, whole code points only, that takes at most `max` key bytes. */
function keyPrefix(text: string, max: number): string {
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    const size = code < 5 ? 2 : code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + size > max) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end);
}

/** Whether `path` is too long to be its own key (then the record's value carries the full path). */
export function isLongPath(path: string): boolean {
  return keyBytes(path) > MAX_PATH_KEY_BYTES;
}

/**
 * The key part of a path. A path up to MAX_PATH_KEY_BYTES is its own key. A longer one becomes
 * its first MAX_PATH_KEY_BYTES ‖ '//' ‖ its byte length (4 hex digits) ‖ SHA-256 of the path
 * (base64url). This keeps the orders the index relies on: every key of a path beneath `dir` sorts
 * after `dir` (a parent before its children; reversed, children before their parent), and a
 * path's key lies in its ancestors' beneathRanges(). The full path is stored in the value and
 * checked on every read (pathOfKey, the record codec).
 */
export function pathKey(path: string): string {
  if (!isLongPath(path)) return path;
  const length = Buffer.byteLength(path).toString(16).padStart(4, '0');
  const digest = createHash('sha256').update(path).digest('base64url');
  return keyPrefix(path, MAX_PATH_KEY_BYTES) + DIGEST_MARK + length + digest;
}

/** Whether a key part is a digest key (its path is in the value), not the path itself. */
export function isDigestKey(keyPart: string): boolean {
  return keyPart.includes(DIGEST_MARK);
}

/**
 * The path a key stands for: the key itself, or for a digest key the full path its value carries
 * (`carried`), checked against the key.
 */
export function pathOfKey(keyPart: string, carried: unknown): string {
  if (!isDigestKey(keyPart)) return keyPart;
  if (typeof carried !== 'string' || pathKey(carried) !== keyPart) {
    throw new FerryError('INDEX_CORRUPT', `index entry ${JSON.stringify(keyPart.slice(0, 80))}… does not carry its full path`);
  }
  return carried;
}

/** Every key of one folder, whatever follows the folder ID. */
export function folderRange(folderId: string): KeyRange {
  return { start: [folderId], end: [folderId + AFTER_FOLDER] };
}

/**
 * Paths strictly beneath directory `dir` ("a/b" → "a/b/…", never "a/bc" or "a/b.txt"): UTF-8 bytes
 * compare like the strings' code points, and '0' is the character right after '/'.
 */
export function beneathRange(folderId: string, dir: string): KeyRange<PathKey> {
  return { start: [folderId, dir + '/'], end: [folderId, dir + '0'] };
}

/**
 * The key ranges holding every path strictly beneath `dir`, exact keys and digest keys alike. When
 * `dir/` is too long for its descendants' keys to start with it, the second range holds every
 * digest key sharing their prefix, which may also hold paths elsewhere: callers keep only the
 * paths that start with `dir/`.
 */
export function beneathRanges(folderId: string, dir: string): Array<KeyRange<PathKey>> {
  const ranges: Array<KeyRange<PathKey>> = [];
  const parent = dir + '/';
  if (keyBytes(parent) <= MAX_PATH_KEY_BYTES) ranges.push(beneathRange(folderId, dir));
  else {
    const prefix = keyPrefix(parent, MAX_PATH_KEY_BYTES);
    ranges.push({ start: [folderId, prefix + DIGEST_MARK], end: [folderId, prefix + '/0'] });
  }
  return ranges;
}

/** Every device's entry for one exact path in the `remote` database ([folderId, path, …], never "path/…" or "path2"). */
export function pathEntriesRange(folderId: string, path: string): KeyRange {
  const key = pathKey(path);
  return { start: [folderId, key], end: [folderId, key + AFTER_FOLDER] };
}

/**
 * A block hash's key: base64url of its first 12 bytes (raw bytes inside an array key would not be
 * escaped). 96 bits tell blocks apart; a colliding entry is harmless, as a block found through the
 * map is read and checked against its full hash before it is used (sync/fetcher.ts).
 */
export function hashKey(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, Math.min(12, hash.byteLength)).toString('base64url');
}

/** All block-map entries of one hash in one folder. */
export function hashRange(folderId: string, hash: Uint8Array): KeyRange {
  const hex = hashKey(hash);
  return { start: [folderId, hex], end: [folderId, hex + AFTER_FOLDER] };
}

/** Strips trailing slashes from an `under` option; '' means the whole folder. */
export function normaliseDirectory(under: string | undefined): string {
  return (under ?? '').replace(/\/+$/, '');
}

/** Rejects paths the index cannot store, before any write starts (a failed put would not roll back). Any length is keyable (pathKey). */
export function checkIndexPath(path: string): void {
  if (path.length === 0 || path.includes('\u0000')) {
    throw new FerryError('PATH_UNSAFE', `path is empty or contains NUL: ${JSON.stringify(path)}`);
  }
}

/**
 * How a peer is named in `remote` keys: its short ID (the first 12 characters of its device ID, as
 * in version vectors, which already need short IDs to be unique within a folder); 40 bytes less per
 * entry than the whole device ID (schema 3).
 */
export function remoteDevice(deviceId: string): string {
  return deviceId.slice(0, SHORT_ID_LENGTH);
}
