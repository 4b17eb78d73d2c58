// Repack while the index is open (the background half of repack.ts): a journal of the keys written since the copy
// began, a copy of every database from read snapshots of the live environment in key order (MDB_APPEND, full pages)
// that yields to the event loop between batches, and the catch-up that takes the journalled keys again from the live
// environment. The store (store.ts) holds writes only for the catch-up and the swap.

import * as lmdb from 'lmdb';
import { asBinary, type Database, type Key, type RootDatabase } from 'lmdb';
import { DB_NAMES, type DbName, type IndexDbs } from './schema.js';

/** Entries copied per write transaction of the live copy; the event loop runs between two. */
export const LIVE_REPACK_BATCH_ENTRIES = 2_000;
/** Keys the journal holds at most; a repack whose journal grows past it is given up (and tried again later). */
export const REPACK_JOURNAL_MAX = 100_000;

/** lmdb-js's key encoding (ordered-binary), exported at run time but missing from its types. */
const keyValueToBuffer = (lmdb as unknown as { keyValueToBuffer: (key: Key) => Buffer }).keyValueToBuffer;

const MUTATORS = new Set(['putSync', 'removeSync', 'put', 'remove']);
/** Writes a journal cannot follow key by key: the repack is given up. */
const WHOLESALE = new Set(['clearSync', 'clearAsync', 'drop', 'dropSync', 'ifNoExists', 'ifVersion', 'batch']);

/** The keys written since a repack's copy began, per database (bounded: see REPACK_JOURNAL_MAX). */
export class WriteJournal {
  private pending = new Map<DbName, Map<string, Key>>();
  private count = 0;
  private wrapped: IndexDbs | undefined;
  /** Set once the journal was over its bound or saw a write it cannot follow: the repack is given up. */
  overflowed = false;

  constructor(private readonly max: number = REPACK_JOURNAL_MAX) {}

  get size(): number {
    return this.count;
  }

  note(name: DbName, key: Key): void {
    if (this.overflowed) return;
    let keys = this.pending.get(name);
    if (!keys) this.pending.set(name, (keys = new Map()));
    const id = keyValueToBuffer(key).toString('latin1');
    if (keys.has(id)) return;
    keys.set(id, key);
    if (++this.count > this.max) this.overflowed = true;
  }

  /** The journalled keys so far, and an empty journal. */
  drain(): Array<[DbName, Key]> {
    const keys: Array<[DbName, Key]> = [];
    for (const [name, byId] of this.pending) for (const key of byId.values()) keys.push([name, key]);
    this.pending = new Map();
    this.count = 0;
    return keys;
  }

  /** `dbs` as seen by writers while the journal runs: every put and remove notes its key, then goes through. */
  wrap(dbs: IndexDbs): IndexDbs {
    if (this.wrapped) return this.wrapped;
    const wrapped = {} as IndexDbs;
    for (const name of DB_NAMES) {
      const db = dbs[name];
      wrapped[name] = new Proxy(db, {
        get: (target, prop, receiver) => {
          const value: unknown = Reflect.get(target, prop, receiver);
          if (typeof value !== 'function') return value;
          const method = value as (...args: unknown[]) => unknown;
          if (typeof prop === 'string' && MUTATORS.has(prop)) {
            return (key: Key, ...rest: unknown[]) => {
              this.note(name, key);
              return method.call(target, key, ...rest);
            };
          }
          if (typeof prop === 'string' && WHOLESALE.has(prop)) this.overflowed = true;
          return method.bind(target);
        },
      });
    }
    return (this.wrapped = wrapped);
  }
}

export type RawDbs = Record<DbName, Database<Buffer, Buffer>>;

/**
 * Every database of `env` with raw keys and values. Opened with the environment, before any reader: lmdb-js resets
 * the environment's read transaction when a database is opened, which a reader iterating at that moment does not
 * survive.
 */
export function openRawDatabases(env: RootDatabase): RawDbs {
  const raw = {} as RawDbs;
  for (const name of DB_NAMES) raw[name] = env.openDB({ name, encoding: 'binary', keyEncoding: 'binary' } as { name: string }) as Database<Buffer, Buffer>;
  return raw;
}

/**
 * Copies every database of the live environment (`source`, raw views) into a new, empty one (`target` and its raw
 * views), byte for byte in key order, each from a read snapshot taken when its copy begins, in write transactions of
 * LIVE_REPACK_BATCH_ENTRIES with the event loop running between them. Returns the entries copied, or undefined when
 * `stop()` said so between two batches.
 */
export async function copyLive(source: RawDbs, target: RootDatabase, to: RawDbs, stop: () => boolean, batchEntries = LIVE_REPACK_BATCH_ENTRIES): Promise<number | undefined> {
  let entries = 0;
  for (const name of DB_NAMES) {
    let batch: Array<{ key: Buffer; value: Buffer }> = [];
    const flush = (): void => {
      const rows = batch;
      batch = [];
      target.transactionSync(() => {
        for (const { key, value } of rows) to[name].putSync(key, value, { append: true });
      });
    };
    for (const { key, value } of source[name].getRange({ snapshot: true })) {
      batch.push({ key: Buffer.from(key), value: Buffer.from(value) });
      entries++;
      if (batch.length >= batchEntries) {
        flush();
        await new Promise((resolve) => setImmediate(resolve));
        if (stop()) return undefined;
      }
    }
    if (batch.length > 0) flush();
  }
  return entries;
}

/**
 * Inside a write transaction of the copy: each journalled key as the live environment holds it now (its raw value, or
 * gone). Returns the keys taken.
 */
export function applyJournal(keys: Array<[DbName, Key]>, live: IndexDbs, copy: IndexDbs): number {
  for (const [name, key] of keys) {
    const raw = live[name].getBinary(key);
    if (raw === undefined) copy[name].removeSync(key);
    else copy[name].putSync(key, asBinary(Buffer.from(raw)));
  }
  return keys.length;
}
