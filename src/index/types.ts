// The index's public shapes: what the rest of Ferry may ask of the store (implemented in store.ts).

import type { Access } from '../keys/types.js';
import type { FileRecord, VersionVector } from './records.js';

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
  /** Keep out (and report) names Windows and SMB clients cannot hold; absent: off. */
  portableNames?: boolean;
  /** Selective sync: subtrees this device does not take (this device's setting, never synced); absent: all. */
  excluded?: string[];
  /** The archive's policy for this folder (sync/archive-policy.ts); absent: keep the archiveDays setting's days. */
  archive?: ArchivePolicy;
}

/** How a folder's archive keeps versions (sync/archive-policy.ts applies it). */
export type ArchivePolicy =
  | { kind: 'days'; days: number; maxArchiveBytes?: number }
  | { kind: 'staggered'; maxAgeDays: number; maxArchiveBytes?: number };

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
  /** Paths whose global version differs from the local one and the local one is not newer (files and symlinks). */
  needFiles: number;
  needBytes: number;
}

export interface BlockLocation {
  path: string;
  /** Block number within the file. */
  index: number;
}

/** What a scan compares with the disk: a local record without blocks, version or signature (cheaper to read). */
export type LocalStat = Pick<FileRecord, 'path' | 'type' | 'size' | 'mode' | 'mtimeMs' | 'inode' | 'deleted' | 'linkTarget'>;

/** A record as handed to putLocal: the index assigns the sequence. */
export type NewFileRecord = Omit<FileRecord, 'sequence'>;

/** Bytes of a folder's index ID (the protocol's LIMITS.indexIdBytes; a test keeps them equal). */
export const INDEX_ID_BYTES = 8;

export interface PutLocalOptions {
  /**
   * Whether the records may become global (the best known version). False for a read-only folder's
   * own edits: they stay local changes that are never offered as the folder's state. @default true
   */
  updateGlobal?: boolean;
}

/** A path the puller has to act on: its global record, and the local one if any. */
export interface NeededPath {
  global: FileRecord;
  local?: FileRecord;
}

/**
 * One folder's part of the index. Reads are synchronous (LMDB reads are memory-mapped and cheap);
 * writes are batched in one transaction each and resolve when durable.
 */
export interface FolderIndex {
  readonly folderId: string;

  /** This device's record for a path (including tombstones). */
  getLocal(path: string): FileRecord | undefined;
  /** The fields of the local record a scan compares with the disk. */
  getLocalStat(path: string): LocalStat | undefined;
  /**
   * Stores records as this device's state, each with the next local sequence, in one transaction.
   * Also maintains the block map (old blocks of the path out, new ones in) and, unless
   * `updateGlobal` is false, the global version: the local record becomes global when there is none,
   * when it is newer, or when it is concurrent and wins (`conflictWinner`); an equal version
   * leaves the global record as it is (it keeps the fields and the signature it was published with).
   */
  putLocal(records: NewFileRecord[], options?: PutLocalOptions): Promise<FileRecord[]>;
  /** Local records in path order, optionally only those under a directory prefix ("a/b" → "a/b" and "a/b/…"). */
  localRecords(options?: { under?: string }): Iterable<FileRecord>;
  /** The paths of the local records (tombstones too) in path order, without reading the records. */
  localPaths(options?: { under?: string }): Iterable<string>;
  /** Local records changed after `sequence`, in sequence order. */
  localSince(sequence: number): Iterable<FileRecord>;
  /** Highest local sequence assigned so far (0 when empty). */
  localSequence(): number;

  getGlobal(path: string): FileRecord | undefined;
  /** Stores the best-known versions (from peers); the sync layer decides what is best. */
  putGlobal(records: FileRecord[]): Promise<void>;
  /**
   * Offers peers' records as global versions, deciding inside the write transaction (so a concurrent
   * putLocal cannot be overwritten): a record is taken when it `supersedes` the current global one
   * (newer, or concurrent and the `conflictWinner`). Returns the records taken.
   */
  offerGlobal(records: FileRecord[]): Promise<FileRecord[]>;
  globalRecords(options?: { under?: string }): Iterable<FileRecord>;

  /**
   * Somewhere this device already has a block with this SHA-256, or undefined: a block of a file of two blocks or more
   * (the block map), or the single block of the local file at `path` (single-block files are not in the map).
   */
  findBlock(hash: Uint8Array, path?: string): BlockLocation | undefined;

  /**
   * Paths the puller has to act on, lazily in path order (reverse: children before parents): the
   * global version differs from the local one and the local one is not newer. Tombstones of paths
   * never seen here are left out.
   */
  needed(options?: { reverse?: boolean }): Iterable<NeededPath>;

  /** Stores which version of each path a peer has (from its records), one entry per (path, device). */
  putRemote(deviceId: string, records: FileRecord[]): Promise<void>;
  /** The version of `path` a peer last announced, if any. */
  remoteVersion(deviceId: string, path: string): VersionVector | undefined;
  /** Short IDs (remoteDevice: a device ID's first 12 characters) of the devices whose record for `path` has exactly this version. */
  devicesWith(path: string, version: VersionVector): string[];
  /** Forgets every record of one peer (its index ID changed: a full index follows). */
  clearRemote(deviceId: string): Promise<void>;

  /** This folder's index ID: INDEX_ID_BYTES random bytes made once and kept (a new one means "start over"). */
  indexId(): Buffer;
  /** The index ID of the peer's index we last received from, if any. */
  peerIndexId(deviceId: string): Buffer | undefined;
  /** Last index sequence received from a peer for this folder (0 if none). */
  peerSequence(deviceId: string): number;
  /** Remembers how far a peer's index was received; `indexId` (when given) names that index. */
  setPeerSequence(deviceId: string, sequence: number, indexId?: Uint8Array): Promise<void>;

  counts(): FolderCounts;
  /** Whether any path is needed (files, symlinks, directories or deletions). */
  hasNeeded(): boolean;
  /**
   * A scan of the folder begins: no background repack of the index starts before the function returned is called (a
   * first scan of a large folder writes slowly enough to look quiet, and a repack beside it reads the whole index).
   */
  scanning?(): () => void;
}
