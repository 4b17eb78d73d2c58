// The index's named databases, its schema version and the migrations that bring an older index up to date.

import type { Database, RootDatabase } from 'lmdb';
import { FerryError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { isNeeded } from './counters.js';
import { decodeRecord } from './record-codec.js';

/** Version of the key/value layout written by this build. Bump it with a migration when the layout changes. */
export const SCHEMA_VERSION = 2;

/** Names of the named databases, in the order they are opened. */
export const DB_NAMES = [
  'meta', // 'schemaVersion' → number; ['removing', folderId] → true while a removal is unfinished
  'settings', // key → JSON-able value
  'devices', // device ID → DeviceRecord
  'folders', // folder ID → FolderConfig
  'local', // [folderId, path] → StoredRecord
  'sequence', // [folderId, sequence] → path
  'global', // [folderId, path] → StoredRecord
  'blocks', // [folderId, hash hex, path] → block index
  'peers', // [folderId, deviceId] → [last sequence received, the peer's index ID | null]
  'counters', // folderId → FolderState (counts, last local sequence, index ID)
  'remote', // [folderId, path, deviceId] → StoredRecord: each peer's record of each path
  'need', // [folderId, path] → 1 while the puller has to act on the path (schema 2)
] as const;

export type DbName = (typeof DB_NAMES)[number];

export type IndexDbs = Record<DbName, Database<any, any>>;

export const SCHEMA_VERSION_KEY = 'schemaVersion';

/** One step of the upgrade path; runs inside a synchronous write transaction with the version bump. */
export interface Migration {
  from: number;
  to: number;
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

/** Built-in migrations, oldest first. */
export const MIGRATIONS: readonly Migration[] = [ADD_NEED_DB];

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
