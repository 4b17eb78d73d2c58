// Read-only folders: which local records are the device's own edits, and reverting them (archive, then pull the global versions back).

import { lstat, rmdir } from 'node:fs/promises';
import { chmodNoFollow } from '../scan/disk-path.js';
import { compareVersions, type FileRecord } from '../index/records.js';
import type { FolderIndex, NewFileRecord } from '../index/types.js';
import type { Logger } from '../util/log.js';
import type { Archive } from './archive.js';
import { DiskPaths } from './paths.js';

/** Local records handled per batch while reverting. */
const REVERT_BATCH = 500;

/** A local record that is this device's own edit: not (yet) part of the folder's global state. */
export function isLocalChange(local: FileRecord, global: FileRecord | undefined): boolean {
  if (!global) return !local.deleted;
  const order = compareVersions(local.version, global.version);
  return order === 'newer' || order === 'concurrent';
}

export interface RevertContext {
  root: string;
  index: FolderIndex;
  archive: Archive;
  exclusive: <T>(work: () => Promise<T>) => Promise<T>;
  logger: Logger;
}

/**
 * Archives every local edit and marks it so the puller fetches the global version again: the
 * local record becomes a tombstone with an empty version vector (older than any global one), or
 * keeps its own version when there is no global one (then nothing comes back). Directories that
 * exist globally stay and get the global mode; new local directories are removed when empty.
 */
export async function revertLocalChanges(ctx: RevertContext): Promise<number> {
  const paths = new DiskPaths(ctx.root);
  let reverted = 0;
  const newDirs: string[] = [];
  let batch: FileRecord[] = [];
  const flush = async (): Promise<void> => {
    const records = batch;
    batch = [];
    await ctx.exclusive(async () => {
      const updates: NewFileRecord[] = [];
      for (const local of records) {
        const global = ctx.index.getGlobal(local.path);
        const target = await paths.resolve(local.path).catch(() => undefined);
        const { sequence: _sequence, signature: _signature, ...rest } = local;
        if (target?.stats?.isDirectory() && global?.type === 'dir' && !global.deleted) {
          await chmodNoFollow(target.abs, global.mode & 0o777);
          const stats = await lstat(target.abs);
          const { sequence: _s, ...adopted } = global;
          updates.push({ ...adopted, inode: stats.ino, mtimeMs: stats.mtimeMs, mode: stats.mode & 0o7777 });
          continue;
        }
        if (target?.stats?.isDirectory()) newDirs.push(target.abs);
        else if (target?.stats) await ctx.archive.keep(target.diskRel);
        updates.push({ ...rest, deleted: true, size: 0, blocks: [], inode: 0, version: global ? {} : local.version });
        ctx.logger.info('reverted a local change', { path: local.path });
      }
      if (updates.length > 0) await ctx.index.putLocal(updates, { updateGlobal: false });
      reverted += updates.length;
    });
  };
  for (const local of ctx.index.localRecords()) {
    if (!isLocalChange(local, ctx.index.getGlobal(local.path))) continue;
    batch.push(local);
    if (batch.length >= REVERT_BATCH) await flush();
  }
  if (batch.length > 0) await flush();
  // Deepest first, so a new directory tree goes bottom-up; anything still holding files stays.
  for (const dir of newDirs.reverse()) await rmdir(dir).catch(() => undefined);
  return reverted;
}
