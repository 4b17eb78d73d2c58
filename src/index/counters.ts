// Per-folder counters kept in step with every write, so status never scans a folder.

import { compareVersions, type FileRecord, type VersionVector } from './records.js';
import type { FolderCounts } from './types.js';

/** What the `counters` database holds per folder: the counts plus the last local sequence. */
export interface FolderState extends FolderCounts {
  sequence: number;
  /** The folder's index ID, once made (INDEX_ID_BYTES). */
  indexId?: Uint8Array;
}

export function emptyFolderState(): FolderState {
  return { sequence: 0, localFiles: 0, localBytes: 0, globalFiles: 0, globalBytes: 0, needFiles: 0, needBytes: 0 };
}

interface Contribution {
  files: number;
  bytes: number;
}

const NOTHING: Contribution = { files: 0, bytes: 0 };

/** Files and symlinks count; directories and tombstones do not. */
export function presence(record: FileRecord | undefined): Contribution {
  if (!record || record.deleted || record.type === 'dir') return NOTHING;
  return { files: 1, bytes: record.size };
}

/** Whether the puller has to act on a path: the global version differs from the local one and the local one is not newer. */
export function isNeeded(local: FileRecord | undefined, global: FileRecord | undefined): boolean {
  return isVersionNeeded(local?.version, global);
}

/** isNeeded for a holder known by the version it has (a peer's, from the `remote` database). */
export function isVersionNeeded(have: VersionVector | undefined, global: FileRecord | undefined): boolean {
  if (!global) return false;
  if (!have) return !global.deleted;
  const order = compareVersions(global.version, have);
  return order === 'newer' || order === 'concurrent';
}

/** A path's need contribution: its global record is a live file or symlink and the path is needed. */
export function need(local: FileRecord | undefined, global: FileRecord | undefined): Contribution {
  const wanted = presence(global);
  if (wanted.files === 0 || !isNeeded(local, global)) return NOTHING;
  return wanted;
}

export interface PathState {
  local: FileRecord | undefined;
  global: FileRecord | undefined;
}

/** Moves one path's contribution in `state` from `before` to `after`. */
export function applyPathChange(state: FolderState, before: PathState, after: PathState): void {
  const localDelta = diff(presence(before.local), presence(after.local));
  const globalDelta = diff(presence(before.global), presence(after.global));
  const needDelta = diff(need(before.local, before.global), need(after.local, after.global));
  state.localFiles += localDelta.files;
  state.localBytes += localDelta.bytes;
  state.globalFiles += globalDelta.files;
  state.globalBytes += globalDelta.bytes;
  state.needFiles += needDelta.files;
  state.needBytes += needDelta.bytes;
}

function diff(before: Contribution, after: Contribution): Contribution {
  return { files: after.files - before.files, bytes: after.bytes - before.bytes };
}

export function countsOf(state: FolderState): FolderCounts {
  const { localFiles, localBytes, globalFiles, globalBytes, needFiles, needBytes } = state;
  return { localFiles, localBytes, globalFiles, globalBytes, needFiles, needBytes };
}
