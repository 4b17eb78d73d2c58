// Signed and ENC-sealed outgoing records, cached per record content (path, version and all): a new link, or a key holder reconnecting under fresh device IDs, costs no new signature or seal.

import { createHash } from 'node:crypto';
import type { FolderKeys } from '../keys/index.js';
import type { FileRecord } from '../index/records.js';
import { encodeBody } from '../protocol/frames.js';
import { recordSigningBytes, toWireRecord } from '../protocol/records.js';

/** @default of RecordCache's maxBytes: bytes of cached signatures and ENC records (estimated). */
export const RECORD_CACHE_BYTES = 32 * 1024 * 1024;
/** Bookkeeping per entry beyond its own bytes (map entry, key string). */
const ENTRY_OVERHEAD = 160;

function digest(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('base64');
}

/** Rough bytes an ENC record holds. */
function recordBytes(record: FileRecord): number {
  return 200 + record.path.length + (record.sealed?.length ?? 0) + record.blocks.length * 48 + (record.linkTarget?.length ?? 0);
}

interface Entry {
  value: Uint8Array | FileRecord;
  bytes: number;
}

/** One per folder, shared by every link's IndexSender and the EncBridge; least recently used entries go first. */
export class RecordCache {
  /** Signatures made and ENC records sealed (misses), and answers from the cache (hits): for status and tests. */
  readonly counts = { signed: 0, sealed: 0, hits: 0 };
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(private readonly maxBytes = RECORD_CACHE_BYTES) {}

  get size(): number {
    return this.entries.size;
  }

  /** `record` signed with the folder key (`keys` must be able to sign); the signature of the same content is made once. */
  signed(keys: FolderKeys, record: FileRecord): FileRecord {
    const data = recordSigningBytes(keys.folderId, record);
    const key = `s:${digest(data)}`;
    let signature = this.get(key) as Uint8Array | undefined;
    if (signature) this.counts.hits++;
    else {
      signature = keys.sign(data);
      this.counts.signed++;
      this.set(key, signature, signature.length);
    }
    return { ...record, signature };
  }

  /**
   * The ENC-facing record of `plain` (its sequence set to plain's): from the cache when the same
   * plaintext record (content, version, signature) was sealed before, else `make()`'s, kept.
   */
  async enc(plain: FileRecord, make: () => Promise<FileRecord | undefined>): Promise<FileRecord | undefined> {
    const { sequence: _sequence, inode: _inode, ...content } = plain;
    const key = `e:${digest(encodeBody(toWireRecord({ ...content, sequence: 0, inode: 0 })))}`;
    const cached = this.get(key) as FileRecord | undefined;
    if (cached) {
      this.counts.hits++;
      return { ...cached, sequence: plain.sequence };
    }
    const made = await make();
    if (!made) return undefined;
    this.counts.sealed++;
    this.set(key, made, recordBytes(made));
    return made;
  }

  private get(key: string): Uint8Array | FileRecord | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  private set(key: string, value: Uint8Array | FileRecord, bytes: number): void {
    const cost = bytes + ENTRY_OVERHEAD;
    if (cost > this.maxBytes / 16) return; // one huge record is not worth evicting many for
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.bytes;
      this.entries.delete(key);
    }
    this.entries.set(key, { value, bytes: cost });
    this.bytes += cost;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }
}
