// Key layout of the index's named databases: ordered-binary array keys, ranges per folder and per path prefix.

import type { Key } from 'lmdb';
import { FerryError } from '../errors.js';

/** lmdb-js refuses keys above 1978 bytes; this leaves room for the folder ID and a block hash. */
export const MAX_PATH_KEY_BYTES = 1800;

export type PathKey = [folderId: string, path: string];
export type SequenceKey = [folderId: string, sequence: number];
export type BlockKey = [folderId: string, hashHex: string, path: string];
export type PeerKey = [folderId: string, deviceId: string];
export type RemoteKey = [folderId: string, path: string, deviceId: string];

export interface KeyRange<K extends Key = Key[]> {
  start: K;
  end: K;
}

/*
 * Ordered-binary joins array elements with a 0x00 byte and escapes control bytes below 0x05 inside
 * strings (0x01 → 0x04 0x01), so every key [folderId, …] lies in [[folderId], [folderId + '\x01']).
 */
const AFTER_FOLDER = '\u0001';

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

/** Every device's entry for one exact path in the `remote` database ([folderId, path, …], never "path/…" or "path2"). */
export function pathEntriesRange(folderId: string, path: string): KeyRange {
  return { start: [folderId, path], end: [folderId, path + AFTER_FOLDER] };
}

/** Block hashes are keyed as lowercase hex: raw bytes inside an array key would not be escaped. */
export function hashKey(hash: Uint8Array): string {
  return Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex');
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

/** Rejects paths the index cannot store as keys, before any write starts (a failed put would not roll back). */
export function checkIndexPath(path: string): void {
  if (path.length === 0 || path.includes('\u0000')) {
    throw new FerryError('PATH_UNSAFE', `path is empty or contains NUL: ${JSON.stringify(path)}`);
  }
  let escaped = 0;
  for (let i = 0; i < path.length; i++) if (path.charCodeAt(i) < 5) escaped++;
  if (Buffer.byteLength(path) + escaped > MAX_PATH_KEY_BYTES) {
    throw new FerryError('PATH_UNSAFE', `path is longer than ${MAX_PATH_KEY_BYTES} bytes: ${path.slice(0, 80)}…`);
  }
}
