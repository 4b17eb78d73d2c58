// How a record compares with the disk and with another record, and the local record a pulled path is stored as.

import type { Stats } from 'node:fs';
import type { FileRecord } from '../index/records.js';
import type { NewFileRecord } from '../index/types.js';

/** Whether the disk entry is what the local record says (absent when there is no live record). */
export function diskMatches(stats: Stats | undefined, local: FileRecord | undefined): boolean {
  if (!local || local.deleted) return stats === undefined;
  if (!stats) return false;
  switch (local.type) {
    case 'dir':
      return stats.isDirectory();
    case 'symlink':
      return stats.isSymbolicLink();
    case 'file':
      return stats.isFile() && stats.size === local.size && stats.mtimeMs === local.mtimeMs && stats.ino === local.inode;
  }
}

export function sameContent(a: FileRecord, b: FileRecord): boolean {
  if (a.deleted || b.deleted || a.type !== b.type) return false;
  if (a.type === 'symlink') return a.linkTarget === b.linkTarget;
  if (a.type === 'dir') return true;
  return a.size === b.size && a.blocks.length === b.blocks.length && a.blocks.every((h, i) => Buffer.compare(h, b.blocks[i]!) === 0);
}

/** The global record as this device's local one, with what the disk really holds (inode, mtime and mode as read back). */
export function asLocal(global: FileRecord, stats: Stats | undefined): NewFileRecord {
  const { sequence: _sequence, ...record } = global;
  if (!stats) return { ...record, inode: 0 };
  const mode = stats.mode & 0o7777;
  const local: NewFileRecord = { ...record, inode: stats.ino, mtimeMs: stats.mtimeMs, mode };
  // The signature covers mtime and mode: keep it only while they are exactly as signed.
  if (local.mtimeMs !== global.mtimeMs || mode !== global.mode) delete local.signature;
  return local;
}
