// Repack: the index rewritten into a fresh environment, each database in key order with MDB_APPEND so every page is
// full, then swapped in for the old one while neither is open. LMDB never shrinks its file, and a receiver's pages
// fill to about half: records arrive in install order, and a global record shrinks to a marker once the file is
// installed (LMDB merges pages only under a quarter full). A compacting copy (mdb_env_copy2 with MDB_CP_COMPACT)
// drops free pages but copies each page as it is, so it would keep the half-empty ones.
//
// On disk, next to the index directory `path`:
//   path-repacking  a copy being written (an interrupted one is deleted at the next open)
//   path-repacked   a finished copy, not yet swapped in
//   path-replaced   the index it replaced, deleted once the new one has opened
// (No dots: lmdb-js takes a path with an extension for a file, not a directory.)
// Each step is a rename of a whole directory, so a crash at any point leaves either index whole.

import { open as openFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { open as openLmdb, type RootDatabase } from 'lmdb';
import { FerryError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { DB_NAMES } from './schema.js';

/** Entries copied per write transaction (bounds the dirty pages held in memory). */
export const REPACK_BATCH_ENTRIES = 20_000;
/** Writes since the last repack (records stored, as counted by the folder indexes) before the next open repacks. */
export const REPACK_MIN_CHURN = 10_000;
/** meta key: records written since the last repack. */
export const CHURN_KEY = 'churnSinceRepack';

export interface RepackPaths {
  tmp: string;
  done: string;
  old: string;
}

export function repackPaths(path: string): RepackPaths {
  return { tmp: `${path}-repacking`, done: `${path}-repacked`, old: `${path}-replaced` };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Makes the renames in `dir` durable. */
async function syncDir(dir: string): Promise<void> {
  const handle = await openFile(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Before the index at `path` is opened: finishes or undoes a repack that a stop interrupted. An unfinished copy is
 * deleted; a finished one replaces the index (the index moving to path-replaced first). Returns whether that is there
 * (to delete once the index has opened: see dropOldIndex).
 */
export async function settleRepack(path: string, logger: Logger): Promise<boolean> {
  const paths = repackPaths(path);
  if (await exists(paths.tmp)) {
    logger.info('deleting an unfinished repack of the index', { path: paths.tmp });
    await rm(paths.tmp, { recursive: true, force: true });
  }
  if (await exists(paths.done)) {
    if (await exists(path)) {
      if (await exists(paths.old)) await rm(paths.old, { recursive: true, force: true }); // an older leftover
      await rename(path, paths.old);
    }
    await rename(paths.done, path);
    await syncDir(dirname(path));
  }
  return exists(paths.old);
}

/** After the (new) index opened: the one it replaced goes. */
export async function dropOldIndex(path: string): Promise<void> {
  await rm(repackPaths(path).old, { recursive: true, force: true });
}

/**
 * The new index failed to open: it is set aside as path-repack-failed-<time> (kept for a report, never deleted here)
 * and the old one comes back. Returns false when there was no old one to come back to.
 */
export async function restoreOldIndex(path: string): Promise<boolean> {
  const paths = repackPaths(path);
  if (!(await exists(paths.old))) return false;
  if (await exists(path)) await rename(path, `${path}-repack-failed-${Date.now()}`);
  await rename(paths.old, path);
  await syncDir(dirname(path));
  return true;
}

export interface RepackResult {
  entries: number;
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Copies the (closed) index at `path` into path-repacking, database by database in key order, byte for byte, then
 * renames it path-repacked. The swap itself is settleRepack's, at the next open. `envOptions`: the map layout the
 * store opens with.
 */
export async function writeRepack(path: string, envOptions: Record<string, unknown>, logger: Logger): Promise<RepackResult> {
  const paths = repackPaths(path);
  await rm(paths.tmp, { recursive: true, force: true });
  const bytesBefore = (await stat(`${path}/data.mdb`)).size;
  let source: RootDatabase | undefined;
  let target: RootDatabase | undefined;
  let entries = 0;
  try {
    source = openLmdb({ path, maxDbs: 32, readOnly: true, ...envOptions });
    target = openLmdb({ path: paths.tmp, maxDbs: 32, ...envOptions });
    for (const name of DB_NAMES) {
      // Raw bytes both ways: nothing is decoded, so every value is copied exactly as it was stored.
      let from: ReturnType<RootDatabase['openDB']> | undefined;
      try {
        from = source.openDB({ name, encoding: 'binary', keyEncoding: 'binary', create: false } as { name: string });
      } catch {
        from = undefined; // not in this index (it holds only what was ever written)
      }
      if (!from) continue;
      const to = target.openDB({ name, encoding: 'binary', keyEncoding: 'binary' } as { name: string });
      let batch: Array<{ key: Buffer; value: Buffer }> = [];
      const flush = (): void => {
        const rows = batch;
        batch = [];
        target!.transactionSync(() => {
          for (const { key, value } of rows) to.putSync(key, value, { append: true });
        });
      };
      for (const { key, value } of from.getRange({ snapshot: true })) {
        batch.push({ key: Buffer.from(key as Buffer), value: Buffer.from(value as Buffer) });
        entries++;
        if (batch.length >= REPACK_BATCH_ENTRIES) flush();
      }
      if (batch.length > 0) flush();
    }
    await target.close();
    target = undefined;
    await source.close();
    source = undefined;
    await rename(paths.tmp, paths.done);
    await syncDir(dirname(path));
  } catch (err) {
    await target?.close().catch(() => undefined);
    await source?.close().catch(() => undefined);
    await rm(paths.tmp, { recursive: true, force: true });
    throw new FerryError('IO', `cannot repack the index at ${path}: ${String(err)}`, { cause: err });
  }
  const bytesAfter = (await stat(`${paths.done}/data.mdb`)).size;
  logger.info('index repacked', { path: basename(path), entries, bytesBefore, bytesAfter });
  return { entries, bytesBefore, bytesAfter };
}
