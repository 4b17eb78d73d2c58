// EncBridge: how an RW or RO folder talks to encrypted (ENC) peers: records out and in, blocks served and fetched as ciphertext.

import { createHash } from 'node:crypto';
import { FerryError, isFerryError } from '../errors.js';
import type { FolderKeys } from '../keys/index.js';
import type { FileRecord } from '../index/records.js';
import type { FolderIndex } from '../index/types.js';
import type { RequestParams } from '../protocol/connection.js';
import { LIMITS, type IndexMessage, type RequestMessage } from '../protocol/messages.js';
import type { Logger } from '../util/log.js';
import { BLOCK_TAG_BYTES, EncCrypto } from './enc-crypto.js';
import { fromEncRecord, toEncRecord, type CipherView } from './enc-records.js';
import type { RecordCache } from './record-cache.js';
import type { BlockAnswer } from './serve.js';

/** Plaintext-hash → ciphertext-hash pairs remembered (a full cache is dropped and rebuilt). */
const CIPHER_CACHE_ENTRIES = 65536;

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export interface EncBridgeOptions {
  keys: FolderKeys;
  index: FolderIndex;
  logger: Logger;
  /** One verified plaintext block of our local file (the block server), or undefined if the disk no longer has it. */
  readBlock(path: string, offset: number, size: number, hash: Uint8Array): Promise<Buffer | undefined>;
  /** Sealed records kept for every ENC link (the folder's cache). */
  cache?: RecordCache;
}

export class EncBridge {
  readonly crypto: EncCrypto;
  /** Blocks from ENC peers that failed their ciphertext hash or their tag (tests, status). */
  altered = 0;
  /** ENC device → plaintext path → how to fetch that path's blocks from it. */
  private readonly views = new Map<string, Map<string, CipherView>>();
  private readonly cipherHashes = new Map<string, Buffer>();

  constructor(private readonly options: EncBridgeOptions) {
    this.crypto = new EncCrypto(options.keys.contentKey());
  }

  /**
   * The ENC-facing form of a record we publish, or undefined if it cannot go to ENC peers: only
   * devices that sign can vouch for an ENC record, and a live file is read (and encrypted) to hash
   * its ciphertext blocks.
   */
  async outgoing(record: FileRecord): Promise<FileRecord | undefined> {
    if (!this.options.keys.canSign) return undefined;
    const { cache } = this.options;
    return cache ? cache.enc(record, () => this.seal(record)) : this.seal(record);
  }

  private async seal(record: FileRecord): Promise<FileRecord | undefined> {
    const { keys, logger } = this.options;
    const hashes: Uint8Array[] = [];
    for (const [i, hash] of record.blocks.entries()) {
      const key = Buffer.from(hash).toString('hex');
      let cipherHash = this.cipherHashes.get(key);
      if (!cipherHash) {
        const offset = i * record.blockSize;
        const block = await this.options.readBlock(record.path, offset, Math.min(record.blockSize, record.size - offset), hash);
        if (!block) return undefined; // changed on disk: the rescan publishes the new version
        cipherHash = sha256(this.crypto.encryptBlock(hash, block));
        if (this.cipherHashes.size >= CIPHER_CACHE_ENTRIES) this.cipherHashes.clear();
        this.cipherHashes.set(key, cipherHash);
      }
      hashes.push(cipherHash);
    }
    const enc = toEncRecord(this.crypto, keys, record, hashes);
    if (!enc) logger.warn('record cannot be stored on encrypted peers (name or blocks too long)', { path: record.path });
    return enc;
  }

  /** The plaintext form of an Index batch from an ENC peer (signatures still to be checked). PROTOCOL if a record is not ours. */
  incoming(deviceId: string, message: IndexMessage, refused?: (path: string, reason: string) => void): IndexMessage {
    let views = this.views.get(deviceId);
    if (!views) this.views.set(deviceId, (views = new Map()));
    if (message.type === 'Index') views.clear();
    const records: FileRecord[] = [];
    for (const enc of message.records) {
      let opened: ReturnType<typeof fromEncRecord>;
      try {
        opened = fromEncRecord(this.crypto, enc);
      } catch (err) {
        // One record that does not open or does not agree with what it seals is skipped, not the batch.
        if (!isFerryError(err, 'PROTOCOL') && !isFerryError(err, 'PATH_UNSAFE')) throw err;
        refused?.(this.crypto.decryptPath(enc.path) ?? enc.path, err.message);
        continue;
      }
      const { plain, view } = opened;
      if (plain.type === 'file' && !plain.deleted && plain.blocks.length > 0) views.set(plain.path, view);
      else views.delete(plain.path);
      records.push(plain);
    }
    return { ...message, records };
  }

  /** Whether we know how to fetch from this ENC peer (its index came on this link). */
  knows(deviceId: string): boolean {
    return this.views.has(deviceId);
  }

  forget(deviceId: string): void {
    this.views.delete(deviceId);
  }

  /** An ENC peer's Request for a ciphertext block: read the plaintext block, encrypt it, check the ciphertext hash. */
  async answer(request: RequestMessage): Promise<BlockAnswer> {
    // Ciphertext blocks are asked for one at a time (each has its own tag).
    if (request.hash.length !== LIMITS.hashBytes) return { error: 'INVALID_REQUEST' };
    const path = this.crypto.decryptPath(request.path);
    const local = path === undefined ? undefined : this.options.index.getLocal(path);
    if (!local || local.deleted || local.type !== 'file' || local.blockSize === 0) return { error: 'NO_SUCH_FILE' };
    const i = request.offset / (local.blockSize + BLOCK_TAG_BYTES);
    const hash = Number.isInteger(i) ? local.blocks[i] : undefined;
    if (!hash) return { error: 'NO_SUCH_FILE' };
    const offset = i * local.blockSize;
    const size = Math.min(local.blockSize, local.size - offset);
    if (request.size !== size + BLOCK_TAG_BYTES) return { error: 'INVALID_REQUEST' };
    const block = await this.options.readBlock(local.path, offset, size, hash);
    if (!block) return { error: 'HASH_MISMATCH' };
    const data = this.crypto.encryptBlock(hash, block);
    if (!sha256(data).equals(request.hash)) return { error: 'NO_SUCH_FILE' }; // another version's block
    return { data };
  }

  /**
   * Fetches a plaintext block from an ENC peer: asks for the ciphertext block, checks its hash and
   * tag, decrypts. Altered ciphertext yields an empty buffer, which the fetcher counts as a bad
   * block from that peer (and tries elsewhere); the fetcher checks the plaintext hash as usual.
   */
  async request(deviceId: string, params: RequestParams, send: (params: RequestParams) => Promise<Buffer>): Promise<Buffer> {
    const view = this.views.get(deviceId)?.get(params.path);
    const i = view ? params.offset / view.plainBlockSize : -1;
    const cipherHash = view && Number.isInteger(i) ? view.cipherBlocks[i] : undefined;
    if (!view || !cipherHash || !Buffer.from(view.plainBlocks[i]!).equals(params.hash)) {
      throw new FerryError('REQUEST_FAILED', `the encrypted peer has no block of ${params.path} at ${params.offset}`);
    }
    const data = await send({
      folderId: params.folderId,
      path: view.encPath,
      offset: i * view.cipherBlockSize,
      size: params.size + BLOCK_TAG_BYTES,
      hash: Buffer.from(cipherHash),
    });
    const plain = sha256(data).equals(cipherHash) ? this.crypto.decryptBlock(params.hash, data) : undefined;
    if (!plain) {
      this.altered++;
      this.options.logger.warn('encrypted peer sent an altered block', { device: deviceId, path: params.path, offset: params.offset });
      return Buffer.alloc(0);
    }
    return plain;
  }
}
