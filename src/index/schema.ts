// The index's named databases, its schema version and the migrations that bring an older index up to date.

import type { Database, Key, RootDatabase } from 'lmdb';
import { FerryError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { isNeeded } from './counters.js';
import { folderRange, hashKey, pathOfKey, remoteDevice } from './keys.js';
import { decodeRecord, encodeRemote, isLocalMarker, storedGlobal, storedPath } from './record-codec.js';

/** Version of the key/value layout written by this build. Bump it with a migration when the layout changes. */
export const SCHEMA_VERSION = 4;

/** Names of the named databases, in the order they are opened. */
export const DB_NAMES = [
  'meta', // 'schemaVersion' → number; ['removing', folderId] → true while a removal is unfinished;
  //        ['folderPrefix', folderId] → the folder's key prefix; 'nextFolderPrefix' → number (schema 3)
  'settings', // key → JSON-able value
  'devices', // device ID → DeviceRecord
  'folders', // folder ID → FolderConfig
  // Per-folder databases: keys start with the folder's short prefix (schema 3; the folder ID before).
  'local', // [prefix, path] → StoredRecord
  'sequence', // [prefix, sequence] → path
  'global', // [prefix, path] → StoredRecord, or [sequence, inode] when it is the local record (schema 3)
  'blocks', // [prefix, hash key, path] → block index (hash key: schema 3 keys.ts hashKey, hex of all 32 bytes before);
  //          files of two blocks or more only (schema 4: single-block files too before)
  'peers', // [prefix, deviceId] → [last sequence received, the peer's index ID | null]
  'counters', // folderId → FolderState (counts, last local sequence, index ID)
  'remote', // [prefix, path, short device ID] → the peer's version vector (schema 3; [folderId, path, deviceId] → its record before)
  'need', // [prefix, path] → 1 while the puller has to act on the path (schema 2)
] as const;

/** The databases whose keys start with a folder's prefix. */
export const FOLDER_DBS = ['local', 'sequence', 'global', 'blocks', 'peers', 'remote', 'need'] as const;

const PREFIX_KEY = 'folderPrefix';
const NEXT_PREFIX_KEY = 'nextFolderPrefix';

/** The folder's key prefix, if one was allocated. */
export function folderPrefix(dbs: IndexDbs, folderId: string): string | undefined {
  const stored: unknown = dbs.meta.get([PREFIX_KEY, folderId]);
  return typeof stored === 'string' ? stored : undefined;
}

/**
 * Inside a write transaction: a new prefix for the folder, '#' and a base-36 number. It can never
 * equal a folder ID (40 hex digits), so a schema-2 key is never mistaken for a schema-3 one.
 */
export function allocateFolderPrefix(dbs: IndexDbs, folderId: string): string {
  const existing = folderPrefix(dbs, folderId);
  if (existing !== undefined) return existing;
  const next: unknown = dbs.meta.get(NEXT_PREFIX_KEY);
  const number = typeof next === 'number' ? next : 1;
  const prefix = `#${number.toString(36)}`;
  dbs.meta.putSync(NEXT_PREFIX_KEY, number + 1);
  dbs.meta.putSync([PREFIX_KEY, folderId], prefix);
  return prefix;
}

/** Inside a write transaction: forgets the folder's prefix (its data is gone); a re-added folder gets a new one. */
export function forgetFolderPrefix(dbs: IndexDbs, folderId: string): void {
  dbs.meta.removeSync([PREFIX_KEY, folderId]);
}

export type DbName = (typeof DB_NAMES)[number];

export type IndexDbs = Record<DbName, Database<any, any>>;

export const SCHEMA_VERSION_KEY = 'schemaVersion';

/** One step of the upgrade path; runs inside a synchronous write transaction with the version bump. */
export interface Migration {
  from: number;
  to: number;
  /**
   * Optional work before the step's final transaction, in transactions of its own, so that a large
   * index is never rewritten in one transaction (its dirty pages would all be held in memory). It
   * must be resumable: interrupted, it runs again on the next open (the version is bumped only after).
   */
  prepare?(env: RootDatabase, dbs: IndexDbs): void;
  /** Rewrites the stored data; throwing aborts the step and leaves the index as it was. */
  migrate(dbs: IndexDbs): void;
}

/**
 * Schema 2 adds the `need` database, so a pull pass visits only the paths it has to act on instead
 * of every global record: filled here from the global and local records of every folder.
 */
const ADD_NEED_DB: Migration = {
  from: 1,
  to: 2,
  migrate(dbs) {
    for (const { key, value } of dbs.global.getRange({})) {
      const [folderId, path] = key as [string, string];
      const stored = dbs.local.get(key);
      const global = decodeRecord(path, value);
      const local = stored === undefined ? undefined : decodeRecord(path, stored);
      if (isNeeded(local, global)) dbs.need.putSync([folderId, path], 1);
    }
  },
};

/** Entries moved per transaction by the schema-3 migration. */
const MOVE_BATCH_ENTRIES = 10_000;

/**
 * Schema 3 makes the index smaller (issue 26: 1.2 KB per file before): keys start with a short
 * per-folder prefix instead of the 40-digit folder ID, a global record equal to the local one is
 * stored as a marker, a peer's entry holds its version vector only, and block hashes are keyed by
 * their first 12 bytes. Entries move folder by folder in bounded transactions; an interrupted run
 * moves what is left on the next open.
 */
const SMALLER_KEYS: Migration = {
  from: 2,
  to: 3,
  prepare(env, dbs) {
    const folderIds = new Set<string>(dbs.folders.getKeys({}).asArray as string[]);
    for (const key of dbs.meta.getKeys({ start: ['removing'], end: ['removing\u0001'] })) folderIds.add((key as [string, string])[1]);
    for (const folderId of folderIds) {
      const prefix = env.transactionSync(() => allocateFolderPrefix(dbs, folderId));
      for (const name of FOLDER_DBS) {
        for (;;) {
          const moved = env.transactionSync(() => moveBatch(dbs, name, folderId, prefix));
          if (moved < MOVE_BATCH_ENTRIES) break;
        }
      }
    }
  },
  migrate() {},
};

/** Moves up to MOVE_BATCH_ENTRIES of one database's schema-2 entries of a folder to their schema-3 form. */
function moveBatch(dbs: IndexDbs, name: (typeof FOLDER_DBS)[number], folderId: string, prefix: string): number {
  const db = dbs[name];
  const entries = db.getRange({ ...folderRange(folderId), limit: MOVE_BATCH_ENTRIES }).asArray;
  for (const { key, value } of entries) {
    const parts = key as unknown[];
    const rest = parts.slice(1);
    let moved: unknown = value;
    if (name === 'blocks') rest[0] = hashKey(Buffer.from(rest[0] as string, 'hex'));
    if (name === 'remote') {
      moved = encodeRemote(decodeRecord(storedPath(rest[0] as string, value), value));
      rest[1] = remoteDevice(rest[1] as string);
    }
    if (name === 'global' && !isLocalMarker(value)) {
      // Locals moved first: the folder's local record of the path is already under the prefix.
      const path = storedPath(rest[0] as string, value);
      const local: unknown = dbs.local.get([prefix, rest[0]]);
      moved = storedGlobal(decodeRecord(path, value), local === undefined ? undefined : decodeRecord(path, local));
    }
    db.putSync([prefix, ...rest], moved);
    db.removeSync(key);
  }
  return entries.length;
}

/** Block map entries looked at per transaction by the schema-4 migration. */
const BLOCK_SCAN_BATCH = 10_000;

/**
 * Schema 4 keeps single-block files out of the block map (folder-index.ts addBlocks): their entries, one per file
 * inserted at a random place of a hash-keyed B-tree, made the whole map a first scan's working set. Entries of block 0
 * whose path's local record has one block are removed, in bounded transactions; an interrupted run starts again from
 * the beginning on the next open (what it removed is gone, the rest is looked at again).
 */
const SINGLE_BLOCKS_OUT: Migration = {
  from: 3,
  to: 4,
  prepare(env, dbs) {
    let after: Key | undefined;
    for (;;) {
      // The entries after the last one looked at (exclusive: the range starts at it when it is still there).
      const entries = dbs.blocks
        .getRange({ ...(after === undefined ? {} : { start: after }), limit: BLOCK_SCAN_BATCH + 1 })
        .asArray.filter((entry) => after === undefined || !sameKey(entry.key as Key, after))
        .slice(0, BLOCK_SCAN_BATCH);
      if (entries.length === 0) return;
      const doomed: Key[] = [];
      for (const { key, value } of entries) {
        const [prefix, , part] = key as [string, string, string];
        const [index, carried] = Array.isArray(value) ? (value as [number, unknown]) : [value as number, undefined];
        if (index !== 0) continue;
        const stored: unknown = dbs.local.get([prefix, part]);
        if (stored === undefined) continue;
        try {
          if (decodeRecord(pathOfKey(part, carried), stored).blocks.length === 1) doomed.push(key as Key);
        } catch {
          // An unreadable record keeps its entry: harmless, a block found through the map is checked before use.
        }
      }
      if (doomed.length > 0) env.transactionSync(() => doomed.forEach((key) => dbs.blocks.removeSync(key)));
      after = entries[entries.length - 1]!.key as Key;
    }
  },
  migrate() {},
};

function sameKey(a: Key, b: Key): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Built-in migrations, oldest first. */
export const MIGRATIONS: readonly Migration[] = [ADD_NEED_DB, SMALLER_KEYS, SINGLE_BLOCKS_OUT];

export function openDatabases(env: RootDatabase): IndexDbs {
  const dbs = {} as IndexDbs;
  // Plain msgpack maps (no msgpackr records), so stored values are self-describing and stable.
  for (const name of DB_NAMES) dbs[name] = env.openDB({ name, useRecords: false } as { name: string });
  return dbs;
}

/**
 * Stamps a new index, or runs the migrations from its stored version up to `target`. An index from a
 * newer Ferry is refused before anything is written.
 */
export function prepareSchema(env: RootDatabase, target: number, migrations: readonly Migration[], logger: Logger): void {
  // Only `meta` is opened before the version is known: opening a missing named database would write.
  const meta = env.openDB({ name: 'meta', useRecords: false } as { name: string });
  const stored: unknown = meta.get(SCHEMA_VERSION_KEY);
  if (stored === undefined) {
    env.transactionSync(() => meta.putSync(SCHEMA_VERSION_KEY, target));
    return;
  }
  if (typeof stored !== 'number' || !Number.isInteger(stored)) {
    throw new FerryError('INDEX_SCHEMA', `index schema version is unreadable: ${JSON.stringify(stored)}`);
  }
  if (stored > target) {
    throw new FerryError(
      'INDEX_SCHEMA',
      `index was written by a newer Ferry (schema ${stored}; this build reads up to ${target}); upgrade Ferry or use another home`,
    );
  }
  let version = stored;
  const dbs = version < target ? openDatabases(env) : undefined;
  while (dbs && version < target) {
    const step = migrations.find((m) => m.from === version);
    if (!step || step.to <= version || step.to > target) {
      throw new FerryError('INDEX_SCHEMA', `no migration of the index from schema ${version} towards ${target}`);
    }
    logger.info('migrating index', { from: step.from, to: step.to });
    try {
      step.prepare?.(env, dbs);
      env.transactionSync(() => {
        step.migrate(dbs);
        dbs.meta.putSync(SCHEMA_VERSION_KEY, step.to);
      });
    } catch (err) {
      throw new FerryError('INDEX_SCHEMA', `index migration ${step.from} → ${step.to} failed: ${String(err)}`, { cause: err });
    }
    version = step.to;
  }
}
