// The sender's side of streaming large files: the block hashes of files being hashed now, turned into Hashing messages and served before their records exist.

import type { HashingMessage } from '../protocol/messages.js';
import { LIMITS } from '../protocol/limits.js';
import type { HashingEvent } from '../scan/scanner.js';

/** Files whose announced hashes are kept at once (the oldest is forgotten beyond). */
export const MAX_HASHING_FILES = 8;
/** An announced file not heard of for this long is forgotten (its record is indexed by then, or it was abandoned). */
export const HASHING_KEEP_MS = 60_000;

/** What the block server needs of a file being hashed: the blocks known so far (holes where not yet). */
export interface HashingFile {
  blockSize: number;
  size: number;
  blocks: Array<Uint8Array | undefined>;
  /** The file as the hash began: while fstat still shows these, its blocks need no re-hashing. */
  mtimeMs: number;
  inode: number;
}

interface Entry extends HashingFile {
  tag: Buffer;
  lastMs: number;
}

/** Files of one folder being hashed now, by path (the latest attempt of each). */
export class HashingFiles {
  private readonly files = new Map<string, Entry>();

  /**
   * Takes a scanner event; returns the Hashing messages to send to peers (none for an abandoned
   * attempt), each within the message's limit of hashes.
   */
  note(folderId: Buffer, event: HashingEvent, nowMs = Date.now()): HashingMessage[] {
    this.expire(nowMs);
    let entry = this.files.get(event.path);
    if (event.abandoned) {
      if (entry?.tag.equals(event.tag)) this.files.delete(event.path);
      return [];
    }
    if (!entry || !entry.tag.equals(event.tag)) {
      entry = { tag: event.tag, blockSize: event.blockSize, size: event.size, mtimeMs: event.mtimeMs, inode: event.inode, blocks: [], lastMs: nowMs };
      this.files.delete(event.path);
      this.files.set(event.path, entry);
      while (this.files.size > MAX_HASHING_FILES) this.files.delete(this.files.keys().next().value!);
    }
    entry.lastMs = nowMs;
    const count = Math.ceil(entry.size / entry.blockSize);
    const blocks = event.blocks.slice(0, Math.max(0, count - event.firstBlock));
    blocks.forEach((hash, i) => (entry.blocks[event.firstBlock + i] = hash));
    const messages: HashingMessage[] = [];
    for (let at = 0; at < blocks.length; at += LIMITS.maxHashingHashes) {
      messages.push({
        type: 'Hashing',
        folderId,
        path: event.path,
        tag: event.tag,
        size: entry.size,
        blockSize: entry.blockSize,
        firstBlock: event.firstBlock + at,
        hashes: Buffer.concat(blocks.slice(at, at + LIMITS.maxHashingHashes)),
      });
    }
    return messages;
  }

  /** Hashing messages for every block known now (for a peer that attaches while files are hashed). */
  snapshot(folderId: Buffer, nowMs = Date.now()): HashingMessage[] {
    this.expire(nowMs);
    const messages: HashingMessage[] = [];
    for (const [path, entry] of this.files) {
      // Runs of known blocks, each cut at the message's limit of hashes.
      for (let i = 0; i < entry.blocks.length; ) {
        if (!entry.blocks[i]) {
          i++;
          continue;
        }
        const first = i;
        while (i < entry.blocks.length && entry.blocks[i] && i - first < LIMITS.maxHashingHashes) i++;
        const hashes = Buffer.concat(entry.blocks.slice(first, i) as Uint8Array[]);
        messages.push({ type: 'Hashing', folderId, path, tag: entry.tag, size: entry.size, blockSize: entry.blockSize, firstBlock: first, hashes });
      }
    }
    return messages;
  }

  /** The announced blocks of a file being hashed, if any. */
  get(path: string, nowMs = Date.now()): HashingFile | undefined {
    this.expire(nowMs);
    return this.files.get(path);
  }

  /** Files kept now (tests, status). */
  get size(): number {
    return this.files.size;
  }

  private expire(nowMs: number): void {
    for (const [path, entry] of this.files) if (nowMs - entry.lastMs > HASHING_KEEP_MS) this.files.delete(path);
  }
}
