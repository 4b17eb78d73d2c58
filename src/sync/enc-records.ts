// ENC-facing records: what RW devices publish to encrypted peers for a plaintext record, and the way back.

import { FerryError } from '../errors.js';
import type { FolderKeys } from '../keys/index.js';
import { compareVersions, type FileRecord } from '../index/records.js';
import { decodeBody, encodeBody } from '../protocol/frames.js';
import { LIMITS } from '../protocol/limits.js';
import { recordFromWire, recordSigningBytes, toWireRecord } from '../protocol/records.js';
import { BLOCK_TAG_BYTES, type EncCrypto } from './enc-crypto.js';

/** Modes ENC records (and so ENC disks) carry: the real ones are sealed. */
const ENC_MODES = { file: 0o600, dir: 0o700, symlink: 0o777 } as const;

/** The encrypted path, or undefined when some encrypted name would be too long for a file system. */
export function encryptedPathFor(crypto: EncCrypto, path: string): string | undefined {
  const encPath = crypto.encryptPath(path);
  if (Buffer.byteLength(encPath) > LIMITS.maxPathBytes) return undefined;
  return encPath.split('/').every((name) => name.length <= LIMITS.maxNameBytes) ? encPath : undefined;
}

/**
 * The ENC-facing record of a signed plaintext record: encrypted path, ciphertext sizes and block
 * hashes (`cipherHashes`, one per plaintext block), fixed modes, the plaintext record sealed, signed
 * with `keys` (which must be able to sign). Undefined when the record cannot be represented
 * (an encrypted name too long, blocks too large).
 */
export function toEncRecord(crypto: EncCrypto, keys: FolderKeys, plain: FileRecord, cipherHashes: Uint8Array[]): FileRecord | undefined {
  const encPath = encryptedPathFor(crypto, plain.path);
  if (encPath === undefined) return undefined;
  if (cipherHashes.length !== plain.blocks.length) throw new FerryError('INTERNAL', 'one ciphertext hash per block');
  const blockSize = plain.blockSize === 0 ? 0 : plain.blockSize + BLOCK_TAG_BYTES;
  if (blockSize > LIMITS.maxBlockSize) return undefined;
  const { sealed: _none, ...rest } = plain;
  const body = encodeBody(toWireRecord({ ...rest, sequence: 0, inode: 0 }));
  const enc: FileRecord = {
    path: encPath,
    type: plain.type,
    size: plain.type === 'file' && !plain.deleted ? plain.size + BLOCK_TAG_BYTES * plain.blocks.length : 0,
    mode: ENC_MODES[plain.type],
    mtimeMs: plain.mtimeMs,
    inode: 0,
    version: plain.version,
    modifiedBy: plain.modifiedBy,
    blockSize,
    blocks: cipherHashes,
    deleted: plain.deleted,
    sequence: plain.sequence,
    sealed: crypto.sealRecord(encPath, body),
  };
  if (plain.linkTarget !== undefined) enc.linkTarget = crypto.linkStandIn(plain.linkTarget);
  if (Buffer.byteLength(enc.sealed!) > LIMITS.maxSealedBytes) return undefined;
  enc.signature = keys.sign(recordSigningBytes(keys.folderId, enc));
  return enc;
}

/** What a plaintext device keeps of an ENC record to request its blocks. */
export interface CipherView {
  encPath: string;
  cipherBlockSize: number;
  cipherBlocks: Uint8Array[];
  plainBlockSize: number;
  plainBlocks: Uint8Array[];
}

/**
 * The plaintext record inside an ENC record (its signature is the original author's: check it like
 * any received record), with what it takes to fetch its blocks. PROTOCOL when the ENC record does
 * not open with our key or does not agree with what it seals.
 */
export function fromEncRecord(crypto: EncCrypto, enc: FileRecord): { plain: FileRecord; view: CipherView } {
  const fail = (why: string): FerryError => new FerryError('PROTOCOL', `encrypted record ${JSON.stringify(enc.path.slice(0, 40))}: ${why}`);
  if (!enc.sealed) throw fail('no sealed record');
  const path = crypto.decryptPath(enc.path);
  if (path === undefined) throw fail('the path does not decrypt');
  const body = crypto.openRecord(enc.path, enc.sealed);
  if (!body) throw fail('the sealed record does not decrypt');
  const plain = recordFromWire(decodeBody(body), 'sealed record');
  if (plain.path !== path) throw fail('sealed for another path');
  if (plain.type !== enc.type || plain.deleted !== enc.deleted || plain.modifiedBy !== enc.modifiedBy) throw fail('type or state differs');
  if (compareVersions(plain.version, enc.version) !== 'equal') throw fail('version differs');
  if (plain.blocks.length !== enc.blocks.length) throw fail('block counts differ');
  if (plain.sealed !== undefined) throw fail('nested sealed record');
  plain.sequence = enc.sequence;
  return {
    plain,
    view: {
      encPath: enc.path,
      cipherBlockSize: enc.blockSize,
      cipherBlocks: enc.blocks,
      plainBlockSize: plain.blockSize,
      plainBlocks: plain.blocks,
    },
  };
}
