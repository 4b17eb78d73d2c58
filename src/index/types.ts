// The index's public shapes: what the rest of Ferry may ask of the store (implemented in store.ts).

import type { Access } from '../keys/types.js';
import type { FileRecord } from './records.js';

export type { Access };

export interface FolderConfig {
  /** Folder ID, 40 hex characters (20 bytes). */
  id: string;
  /** Absolute path of the folder on this device. */
  path: string;
  access: Access;
  /** The strongest key this device holds for the folder, as printed (A…, B… or E…). */
  key: string;
  addedAtMs: number;
  paused: boolean;
}

export interface DeviceRecord {
  id: string;
  name: string;
  /** Addresses the user named for this device (HOST:PORT). */
  addresses: string[];
  lastSeenMs: number;
}

export interface FolderCounts {
  localFiles: number;
  localBytes: number;
  globalFiles: number;
  globalBytes: number;
  /** Paths where the global version is newer than the local one (files and symlinks). */
  needFiles: number;
  needBytes: number;
}

export interface BlockLocation {
  path: string;
  /** Block number within the file. */
  index: number;
}

/** A record as handed to putLocal: the index assigns the sequence. */
export type NewFileRecord = Omit<FileRecord, 'sequence'>;

/**
 * One folder's part of the index. Reads are synchronous (LMDB reads are memory-mapped and cheap);
 * writes are batched in one transaction each and resolve when durable.
 */
export interface FolderIndex {
  readonly folderId: string;

  /** This device's record for a path (including tombstones). */
  getLocal(path: string): FileRecord | undefined;
  /**
   * Stores records as this device's state, each with the next local sequence, in one transaction.
   * Also maintains the block map (old blocks of the path out, new ones in) and the global
   * version (the local record becomes global when it is newer than or equal to it, or there is none).
   */
  putLocal(records: NewFileRecord[]): Promise<FileRecord[]>;
  /** Local records in path order, optionally only those under a directory prefix ("a/b" → "a/b" and "a/b/…"). */
  localRecords(options?: { under?: string }): Iterable<FileRecord>;
  /** Local records changed after `sequence`, in sequence order. */
  localSince(sequence: number): Iterable<FileRecord>;
  /** Highest local sequence assigned so far (0 when empty). */
  localSequence(): number;

  getGlobal(path: string): FileRecord | undefined;
  /** Stores the best-known versions (from peers); the sync layer decides what is best. */
  putGlobal(records: FileRecord[]): Promise<void>;
  globalRecords(options?: { under?: string }): Iterable<FileRecord>;

  /** Somewhere this device already has a block with this SHA-256, or undefined. */
  findBlock(hash: Uint8Array): BlockLocation | undefined;

  /** Last index sequence received from a peer for this folder (0 if none). */
  peerSequence(deviceId: string): number;
  setPeerSequence(deviceId: string, sequence: number): Promise<void>;

  counts(): FolderCounts;
}
