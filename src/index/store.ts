// IndexStore: the one LMDB environment in the daemon's home; settings, devices, folders and per-folder indexes.

import { closeSync, existsSync, fsyncSync, openSync, renameSync } from 'node:fs';
import { rm, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { open as openLmdb, type RootDatabase } from 'lmdb';
import { FerryError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { LmdbFolderIndex } from './folder-index.js';
import { processWordBits } from './lmdb-header.js';
import { folderRange } from './keys.js';
import { WriteJournal, applyJournal, copyLive, openRawDatabases, type RawDbs } from './live-repack.js';
import { CHURN_KEY, REPACK_MIN_CHURN, dropOldIndex, repackPaths, restoreOldIndex, settleRepack, writeRepack, type RepackResult } from './repack.js';
import { FOLDER_DBS, MIGRATIONS, SCHEMA_VERSION, allocateFolderPrefix, folderPrefix, forgetFolderPrefix, openDatabases, prepareSchema, type IndexDbs, type Migration } from './schema.js';
import type { DeviceRecord, FolderConfig, FolderIndex } from './types.js';

export type { Migration } from './schema.js';

export interface IndexStoreOptions {
  /** Directory of the LMDB environment (created if missing). */
  path: string;
  logger?: Logger;
  /** LMDB map size in bytes. @default mapLayout(): one large map on 64-bit, mapped chunks on 32-bit */
  mapSizeBytes?: number;
  /** Schema version to open at; for tests. @default IndexStore.SCHEMA_VERSION */
  schemaVersion?: number;
  /** Upgrade steps; for tests. @default the built-in migrations */
  migrations?: readonly Migration[];
  /** The home's disk became full (a commit failed for want of space), or has room again. */
  onDiskFull?: (full: boolean) => void;
  /** While the disk is full, how often free space is checked. @default DISK_FULL_CHECK_MS */
  diskFullCheckMs?: number;
  /**
   * After each committed change of a setting (`setting`: its key), a folder or a device: the home's
   * portable file follows (src/daemon/portable.ts). Awaited, so a change is in both when its call returns.
   */
  onConfigWrite?: (change: { setting?: string }) => Promise<void> | void;
  /**
   * Repack the index at open when it was rewritten about as much as its size since the last repack (a first scan, a
   * large initial sync): see repack.ts. @default true
   */
  repack?: boolean;
  /**
   * Repack a loose index (the same measure as at open) while it is open, in the background: live-repack.ts. @default
   * true
   */
  backgroundRepack?: boolean;
  /** Least time from the open, or from the last background repack, to the next one. @default REPACK_INTERVAL_MS */
  repackIntervalMs?: number;
  /**
   * A background repack waits while more records than this were written in the last repackBusyWindowMs (and up to
   * as long again before it). @default REPACK_BUSY_RECORDS
   */
  repackBusyRecords?: number;
  /** @default REPACK_BUSY_WINDOW_MS */
  repackBusyWindowMs?: number;
}

/** Least time between two background repacks (and from the open to the first). */
export const REPACK_INTERVAL_MS = 10 * 60_000;
/** How long a background repack waits for the writes in flight to finish before it holds new ones for its swap. */
export const REPACK_QUIET_WAIT_MS = 2_000;
/**
 * A background repack is put off while the index is written faster than this many records per REPACK_BUSY_WINDOW_MS
 * (a first scan, an initial sync): its copy would be stale before it ends, its journal of the keys written meanwhile
 * (about 200 bytes each) would fill to REPACK_JOURNAL_MAX and the repack be given up, and the copy reads the whole
 * index while the writes need the page cache (a 1,000,000-file first scan in a 256 MiB cgroup: every ten minutes).
 * It runs once the index is quiet (the bench's 1M sync: right after it), or is written slowly: a 1M first scan in a
 * 256 MiB cgroup whose loose pages (inserted in walk order, not key order) no longer fit the page cache crawled at
 * 11-40 files/s, and the repack that began then (at 550k files) took it back to ~330 files/s, at the price of up to
 * ~27 MiB of native memory for its catch-up transaction.
 */
export const REPACK_BUSY_RECORDS = 2_000;
export const REPACK_BUSY_WINDOW_MS = 60_000;

/** What a background repack did (see IndexStore.repackWhileOpen). */
export interface LiveRepackResult extends RepackResult {
  /** Keys written during the copy and taken again before the swap. */
  caughtUp: number;
  /** How long writes were held for the catch-up and the swap. */
  heldMs: number;
}

/** While the home's disk is full: how often free space is checked for a retry. */
export const DISK_FULL_CHECK_MS = 5_000;
/** Free bytes under which a failed commit counts as a full disk, and over which it is over. */
export const DISK_FULL_BYTES = 1024 * 1024;
/** LMDB's MDB_MAP_FULL. */
const MDB_MAP_FULL = -30792;

/** Entries deleted per transaction when a folder is removed, so one removal never needs a huge transaction. */
export const REMOVE_BATCH_ENTRIES = 10_000;

/**
 * Map size on 64-bit systems: address space only (the file grows as pages are written, and only the
 * pages read count in RSS). One map this large is set up once; lmdb-js's default starts at 128 KiB
 * and maps the file again at each doubling, keeping every older mapping for its readers, so RSS
 * counted the same pages several times (10 mappings at 300k files). Should an index ever outgrow
 * it, lmdb-js grows the map (one more mapping) rather than failing with MDB_MAP_FULL.
 */
export const MAP_SIZE_64BIT = 16 * 1024 ** 3;

/** How the index file is mapped on this word size. */
export interface MapLayout {
  mapSize?: number;
  /** Maps the file in chunks on demand (32-bit: a 3 GiB address space cannot hold one large map). */
  remapChunks: boolean;
}

export function mapLayout(wordBits: 32 | 64 = processWordBits(), mapSizeBytes?: number): MapLayout {
  if (wordBits === 32) {
    // A fixed map on armv7 would take address space that Node's heap needs; chunks bound it instead.
    return mapSizeBytes ? { mapSize: mapSizeBytes, remapChunks: true } : { remapChunks: true };
  }
  return { mapSize: mapSizeBytes ?? MAP_SIZE_64BIT, remapChunks: false };
}

/** Named databases beyond ours that the environment may hold (room for later schemas). */
const MAX_DBS = 32;

const REMOVING = 'removing';

/**
 * Whether an unhandled rejection is lmdb-js's own promise of a failed commit (its `commitError`
 * hangs on it, and lmdb-js rejects promises of the batch that no caller holds). The caller of every
 * write got its own error (IndexStore.write), so this one is only absorbed (with its cause), never
 * a reason to crash. Anything else: false.
 */
export function absorbIndexCommitFailure(reason: unknown): boolean {
  if (!(reason instanceof Error) || !/^Commit failed/.test(reason.message)) return false;
  const commitError = (reason as { commitError?: Promise<unknown> }).commitError;
  if (!(commitError instanceof Promise)) return false;
  commitError.catch(() => undefined);
  return true;
}

export class IndexStore extends Resource {
  static readonly SCHEMA_VERSION: number = SCHEMA_VERSION;

  private readonly logger: Logger;
  private env: RootDatabase | undefined;
  private databases: IndexDbs | undefined;
  /** The same databases with raw keys and values (a background repack's copy reads them). */
  private rawDatabases: RawDbs | undefined;
  private readonly pendingWrites = new Set<Promise<unknown>>();
  private readonly removals = new Map<string, Promise<void>>();
  private readonly folderIndexes = new Map<string, LmdbFolderIndex>();
  /** Set while the home's disk is full: since when, and what failed. */
  private full: { sinceMs: number; detail: string } | undefined;
  private fullTimer: NodeJS.Timeout | null = null;
  /** Records written since the last repack that are not in meta yet (see churn()). */
  private unsavedChurn = 0;
  /** While a background repack copies the index: the keys written since it began, and the databases that note them. */
  private journal: { keys: WriteJournal; dbs: IndexDbs } | undefined;
  /** While a background repack swaps the index: new writes wait for it. */
  private gate: Promise<void> | undefined;
  private backgroundRepack: Promise<LiveRepackResult | undefined> | undefined;
  /** The churn count passed REPACK_MIN_CHURN: whether the index is loose is looked at after the commit. */
  private repackDue = false;
  private lastRepackMs = 0;
  /** Records written in the current window (since startMs) and in the one before it: see REPACK_BUSY_RECORDS. */
  private readonly writeWindow = { startMs: 0, current: 0, previous: 0 };
  /** A background repack put off while the index is busy looks again when this fires. */
  private repackTimer: NodeJS.Timeout | undefined;
  /** Scans running now (FolderIndex.scanning): no background repack starts meanwhile. */
  private scansRunning = 0;
  /**
   * Environments replaced by a background repack, kept open while generators that began on them still iterate (their
   * directory is deleted; the kernel frees the file when it is closed). A reader never finished keeps its environment
   * until the store closes.
   */
  private readonly retired = new Set<RootDatabase>();
  /** Generators reading each environment (LmdbFolderIndex: context.reader). */
  private readonly readers = new Map<RootDatabase, number>();

  constructor(private readonly options: IndexStoreOptions) {
    super();
    this.logger = (options.logger ?? silentLogger).child('index');
  }

  protected async _open(): Promise<void> {
    const path = this.options.path;
    let replaced = await settleRepack(path, this.logger);
    let opened: { env: RootDatabase; dbs: IndexDbs };
    try {
      opened = await this.openEnvironment();
    } catch (err) {
      // A repacked index that does not open: the one it replaced comes back (the new one is set aside).
      if (!replaced || !(await restoreOldIndex(path))) throw err;
      this.logger.error('the repacked index does not open; back to the one it replaced', { path, err: String(err) });
      replaced = false;
      opened = await this.openEnvironment();
    }
    if (replaced) await dropOldIndex(path);
    if ((this.options.repack ?? true) && repackWanted(opened.dbs)) {
      await opened.env.close();
      await writeRepack(path, mapLayout(undefined, this.options.mapSizeBytes) as unknown as Record<string, unknown>, this.logger);
      await settleRepack(path, this.logger);
      opened = await this.openEnvironment();
      await dropOldIndex(path);
      opened.env.transactionSync(() => opened.dbs.meta.removeSync(CHURN_KEY));
    }
    const { env } = opened;
    this.databases = opened.dbs;
    this.rawDatabases = openRawDatabases(env);
    this.env = env;
    this.lastRepackMs = Date.now();
    for (const key of this.databases.meta.getKeys({ start: [REMOVING], end: [REMOVING + '\u0001'] })) {
      const folderId = (key as [string, string])[1];
      this.logger.info('finishing an interrupted folder removal', { folder: folderId });
      await this.removeFolderData(folderId);
    }
    this.logger.debug('index open', { path: this.options.path });
  }

  /** Opens the environment at the schema version (migrating it if needed) and its databases. */
  private async openEnvironment(): Promise<{ env: RootDatabase; dbs: IndexDbs }> {
    let env: RootDatabase;
    try {
      env = openLmdb({
        path: this.options.path,
        maxDbs: MAX_DBS,
        ...mapLayout(undefined, this.options.mapSizeBytes),
      });
    } catch (err) {
      throw new FerryError('IO', `cannot open the index at ${this.options.path}: ${String(err)}`, { cause: err });
    }
    try {
      const target = this.options.schemaVersion ?? SCHEMA_VERSION;
      prepareSchema(env, target, this.options.migrations ?? MIGRATIONS, this.logger);
      return { env, dbs: openDatabases(env) };
    } catch (err) {
      await env.close();
      throw err;
    }
  }

  /** The home's disk is full: writes fail (and are retried by their owners) until space is freed. */
  get diskFull(): { sinceMs: number; detail: string } | undefined {
    return this.full;
  }

  protected async _close(): Promise<void> {
    if (this.fullTimer) clearInterval(this.fullTimer);
    if (this.repackTimer) clearTimeout(this.repackTimer);
    this.repackTimer = undefined;
    await this.backgroundRepack;
    await Promise.allSettled([...this.removals.values(), ...this.pendingWrites]);
    this.folderIndexes.clear();
    const env = this.env;
    this.env = undefined;
    this.databases = undefined;
    this.rawDatabases = undefined;
    if (env) await env.close();
    const retired = [...this.retired];
    this.retired.clear();
    for (const old of retired) await old.close();
  }

  // settings

  getSetting<T>(key: string): T | undefined {
    return this.dbs().settings.get(key) as T | undefined;
  }

  /** Stores a JSON-able value; `undefined` deletes the setting. */
  async putSetting(key: string, value: unknown): Promise<void> {
    await this.write(() => {
      if (value === undefined) this.openDbs().settings.removeSync(key);
      else this.openDbs().settings.putSync(key, value);
    });
    await this.options.onConfigWrite?.({ setting: key });
  }

  allSettings(): Record<string, unknown> {
    const settings: Record<string, unknown> = {};
    for (const { key, value } of this.dbs().settings.getRange({})) settings[key as string] = value;
    return settings;
  }

  // folders

  listFolders(): FolderConfig[] {
    return this.dbs().folders.getRange({}).map(({ value }) => value as FolderConfig).asArray;
  }

  getFolder(id: string): FolderConfig | undefined {
    return this.dbs().folders.get(id) as FolderConfig | undefined;
  }

  async putFolder(folder: FolderConfig): Promise<void> {
    await this.removals.get(folder.id);
    await this.write(() => this.openDbs().folders.putSync(folder.id, { ...folder }));
    await this.options.onConfigWrite?.({});
  }

  /** Forgets the folder and everything indexed for it; resumes on the next open if interrupted. */
  async removeFolder(id: string): Promise<void> {
    const running = this.removals.get(id);
    if (running) return running;
    const removal = (async () => {
      await this.write(() => {
        const dbs = this.openDbs();
        dbs.folders.removeSync(id);
        dbs.counters.removeSync(id);
        dbs.meta.putSync([REMOVING, id], true);
      });
      await this.options.onConfigWrite?.({});
      this.folderIndexes.delete(id);
      await this.removeFolderData(id);
    })();
    this.removals.set(id, removal);
    try {
      await removal;
    } finally {
      this.removals.delete(id);
    }
  }

  // devices

  listDevices(): DeviceRecord[] {
    return this.dbs().devices.getRange({}).map(({ value }) => value as DeviceRecord).asArray;
  }

  getDevice(id: string): DeviceRecord | undefined {
    return this.dbs().devices.get(id) as DeviceRecord | undefined;
  }

  async putDevice(device: DeviceRecord): Promise<void> {
    await this.write(() => this.openDbs().devices.putSync(device.id, { ...device }));
    await this.options.onConfigWrite?.({});
  }

  /** The index of one folder (one object per folder ID while the store is open). */
  folder(id: string): FolderIndex {
    this.dbs();
    let index = this.folderIndexes.get(id);
    if (!index) {
      const dbs = this.openDbs();
      // Allocated once per folder, in its own small transaction (a folder is opened before any write of it).
      const prefix = folderPrefix(dbs, id) ?? this.env!.transactionSync(() => allocateFolderPrefix(dbs, id));
      index = new LmdbFolderIndex(id, prefix, {
        dbs: () => this.openDbs(),
        write: (action) => this.write(action),
        churn: (records) => this.churn(records),
        reader: () => this.reader(),
        scanning: () => this.scanning(),
      });
      this.folderIndexes.set(id, index);
    }
    return index;
  }

  /** A scan begins: a background repack waits until it (and every other running scan) has ended. */
  private scanning(): () => void {
    this.scansRunning++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.scansRunning--;
      if (this.scansRunning === 0 && this.repackDue) this.maybeRepack();
    };
  }

  /** Whether a background repack is copying or swapping the index now. */
  get repackRunning(): boolean {
    return this.backgroundRepack !== undefined;
  }

  /** Keys the running background repack's journal holds (0 when none runs): at most REPACK_JOURNAL_MAX. */
  get repackJournalKeys(): number {
    return this.journal?.keys.size ?? 0;
  }

  /** Environments a background repack replaced that are still open for their readers. */
  get retiredEnvironments(): number {
    return this.retired.size;
  }

  /** A generator begins reading the current environment; the function returned says it ended. */
  private reader(): () => void {
    const env = this.env;
    if (!env) return () => undefined;
    this.readers.set(env, (this.readers.get(env) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = (this.readers.get(env) ?? 1) - 1;
      if (left > 0) this.readers.set(env, left);
      else {
        this.readers.delete(env);
        this.closeRetired(env);
      }
    };
  }

  /** A replaced environment without readers is closed. */
  private closeRetired(env: RootDatabase): void {
    if (!this.retired.has(env) || this.readers.has(env)) return;
    this.retired.delete(env);
    env.close().catch((err: unknown) => this.logger.warn('closing a replaced index environment failed', { err: String(err) }));
  }

  /** For the store's own reads and writes: refused once close() was called. */
  private dbs(): IndexDbs {
    if (this.closed) throw new FerryError('CLOSED', 'the index is not open');
    return this.openDbs();
  }

  /** For folder indexes, whose queued transactions still run while close() waits for them. */
  private openDbs(): IndexDbs {
    if (!this.databases) throw new FerryError('CLOSED', 'the index is not open');
    return this.journal?.dbs ?? this.databases;
  }

  /**
   * Inside a write transaction: `records` more records written since the last repack. Kept in memory until they add
   * up to REPACK_MIN_CHURN, then stored with each transaction (a small index never gets the key).
   */
  private churn(records: number): void {
    this.rollWriteWindow(Date.now()).current += records;
    this.unsavedChurn += records;
    const meta = this.openDbs().meta;
    const saved: unknown = meta.get(CHURN_KEY);
    const total = (typeof saved === 'number' ? saved : 0) + this.unsavedChurn;
    if (total < REPACK_MIN_CHURN) return;
    meta.putSync(CHURN_KEY, total);
    this.unsavedChurn = 0;
    this.repackDue = true;
  }

  /** One asynchronous write transaction, tracked so close() can wait for it. */
  private write<T>(action: () => T): Promise<T> {
    if (!this.env || this.closed) return Promise.reject(new FerryError('CLOSED', 'the index is not open'));
    // The environment is taken when the transaction is queued: after a background repack's swap, the new one.
    const run = (): Promise<T> => {
      const env = this.env;
      if (!env) return Promise.reject(new FerryError('CLOSED', 'the index is not open'));
      return env.transaction(action);
    };
    const done = (this.gate ? this.gate.then(run) : run()).catch(async (err: unknown) => {
      throw await this.commitFailed(err);
    });
    this.pendingWrites.add(done);
    const forget = (): void => void this.pendingWrites.delete(done);
    done.then(forget, forget);
    if (this.repackDue) done.then(() => this.maybeRepack(), () => undefined);
    return done;
  }

  /** The write-rate window as of `nowMs` (two fixed buckets: O(1) per write). */
  private rollWriteWindow(nowMs: number): { startMs: number; current: number; previous: number } {
    const window = this.writeWindow;
    const windowMs = this.options.repackBusyWindowMs ?? REPACK_BUSY_WINDOW_MS;
    const elapsed = nowMs - window.startMs;
    if (elapsed >= windowMs) {
      window.previous = elapsed >= 2 * windowMs ? 0 : window.current;
      window.current = 0;
      window.startMs = nowMs;
    }
    return window;
  }

  /** Records written in the current write-rate window and the one before it. */
  get recentWrites(): number {
    const window = this.rollWriteWindow(Date.now());
    return window.current + window.previous;
  }

  /** After a commit that passed the churn count: a background repack when the index is loose (repackWanted) and quiet. */
  private maybeRepack(): void {
    if (!this.repackDue || this.backgroundRepack || this.closed || !this.databases || !(this.options.backgroundRepack ?? true)) return;
    if (Date.now() - this.lastRepackMs < (this.options.repackIntervalMs ?? REPACK_INTERVAL_MS)) return;
    // Looked at again when the last scan ends.
    if (this.scansRunning > 0) return;
    if (this.recentWrites > (this.options.repackBusyRecords ?? REPACK_BUSY_RECORDS)) {
      // Busy: looked at again after a window, whether or not more is written (the last write of a sync may be the last one for hours).
      this.repackTimer ??= setTimeout(() => {
        this.repackTimer = undefined;
        this.maybeRepack();
      }, this.options.repackBusyWindowMs ?? REPACK_BUSY_WINDOW_MS);
      this.repackTimer.unref();
      return;
    }
    this.repackDue = false;
    if (!repackWanted(this.databases)) return;
    void this.repackWhileOpen();
  }

  /**
   * Repacks the open index without stopping its readers and writers (live-repack.ts): the databases are copied from
   * read snapshots into path-repacking while writes go on and their keys are journalled; then, at a quiet moment
   * (the writes in flight finish, REPACK_QUIET_WAIT_MS at most), new writes wait while the journalled keys are taken
   * again from the live index and the copy takes its place with the renames of repack.ts. The old environment stays
   * open while generators that began on it still iterate. Resolves to undefined when it was given up (the
   * store closed, or more was written meanwhile than the journal holds), with the old index in use as before.
   */
  repackWhileOpen(): Promise<LiveRepackResult | undefined> {
    if (this.backgroundRepack) return this.backgroundRepack;
    const running = this.runLiveRepack()
      .catch((err: unknown) => {
        this.logger.error('background repack of the index failed; the index in use is unchanged', { err: String(err) });
        return undefined;
      })
      .finally(() => {
        this.backgroundRepack = undefined;
        this.lastRepackMs = Date.now();
      });
    this.backgroundRepack = running;
    return running;
  }

  private async runLiveRepack(): Promise<LiveRepackResult | undefined> {
    const path = this.options.path;
    const paths = repackPaths(path);
    const source = this.env;
    const live = this.databases;
    const liveRaw = this.rawDatabases;
    if (!source || !live || !liveRaw || this.closed) return undefined;
    const bytesBefore = (await stat(join(path, 'data.mdb'))).size;
    await rm(paths.tmp, { recursive: true, force: true });
    await rm(paths.old, { recursive: true, force: true }); // a leftover (deleted at the open otherwise)
    const keys = new WriteJournal();
    this.journal = { keys, dbs: keys.wrap(live) };
    let target: RootDatabase | undefined;
    let swapped = false;
    try {
      // Writes queued before the journal began are committed first, so each database's snapshot holds them.
      await Promise.allSettled([...this.pendingWrites]);
      target = openLmdb({ path: paths.tmp, maxDbs: MAX_DBS, ...mapLayout(undefined, this.options.mapSizeBytes) });
      const copyRaw = openRawDatabases(target);
      const copy = openDatabases(target);
      const given = (): boolean => this.closed || keys.overflowed;
      const entries = await copyLive(liveRaw, target, copyRaw, given);
      if (entries === undefined || given()) return undefined;

      // The quiet moment, then writes held: what was written during the copy is taken again, until none is left.
      const quietUntil = Date.now() + REPACK_QUIET_WAIT_MS;
      while (this.pendingWrites.size > 0 && Date.now() < quietUntil) {
        await Promise.race([Promise.allSettled([...this.pendingWrites]), new Promise((resolve) => setTimeout(resolve, 50))]);
      }
      const heldAt = Date.now();
      const inFlight = [...this.pendingWrites];
      let release!: () => void;
      this.gate = new Promise((resolve) => (release = resolve));
      try {
        await Promise.allSettled(inFlight);
        let caughtUp = 0;
        for (let round = 0; ; round++) {
          if (given()) return undefined;
          const written = keys.drain();
          if (written.length === 0 && round > 0) break;
          target.transactionSync(() => {
            caughtUp += applyJournal(written, live, copy);
            copy.meta.removeSync(CHURN_KEY);
          });
          await target.flushed; // durable before it takes the index's name
        }
        // Synchronous from here to the swap: no write can come between the last catch-up and the new environment.
        this.journal = undefined;
        try {
          renameSync(paths.tmp, paths.done);
          renameSync(path, paths.old);
          renameSync(paths.done, path);
          syncDirSync(dirname(path));
        } catch (err) {
          // The index in use goes back to its name (the copy is deleted below): a later open must not take the copy.
          if (!existsSync(path) && existsSync(paths.old)) renameSync(paths.old, path);
          if (existsSync(paths.done)) renameSync(paths.done, paths.tmp);
          throw err;
        }
        this.env = target;
        this.databases = copy;
        this.rawDatabases = copyRaw;
        this.unsavedChurn = 0;
        this.retired.add(source);
        this.closeRetired(source);
        swapped = true;
        const heldMs = Date.now() - heldAt;
        await rm(paths.old, { recursive: true, force: true });
        const bytesAfter = (await stat(join(path, 'data.mdb'))).size;
        this.logger.info('index repacked while open', { entries, caughtUp, heldMs, bytesBefore, bytesAfter });
        return { entries, bytesBefore, bytesAfter, caughtUp, heldMs };
      } finally {
        this.gate = undefined;
        release();
      }
    } finally {
      this.journal = undefined;
      if (!swapped) {
        await target?.close().catch(() => undefined);
        await rm(paths.tmp, { recursive: true, force: true });
      }
    }
  }

  /**
   * A failed commit as a FerryError, never a crash: lmdb-js hangs the cause on a second promise
   * (`commitError`) that nobody else awaits. Out of space (ENOSPC, MDB_MAP_FULL, or a write error
   * with under DISK_FULL_BYTES free) is DISK_FULL, and the store watches for space to come back.
   */
  private async commitFailed(err: unknown): Promise<FerryError> {
    if (err instanceof FerryError) return err;
    const commitError = (err as { commitError?: Promise<unknown> } | null)?.commitError;
    const cause = commitError ? await commitError.then(() => err, (inner: unknown) => inner) : err;
    const code = (cause as { code?: unknown } | null)?.code;
    const message = cause instanceof Error ? cause.message : String(cause);
    const full = code === 'ENOSPC' || code === 28 || code === MDB_MAP_FULL || /MDB_MAP_FULL|ENOSPC|no space/i.test(message) || (await this.freeBytes()) < DISK_FULL_BYTES;
    if (!full) return new FerryError('IO', `index write failed: ${message}`, { cause });
    const detail = `the disk of the home is full (${message}); the index is not saved until space is freed`;
    if (!this.full) {
      this.full = { sinceMs: Date.now(), detail };
      this.logger.error('home disk full: index writes fail until space is freed', { path: this.options.path, reason: message });
      this.options.onDiskFull?.(true);
      this.fullTimer = setInterval(() => void this.checkSpace(), this.options.diskFullCheckMs ?? DISK_FULL_CHECK_MS);
      this.fullTimer.unref();
    }
    return new FerryError('DISK_FULL', detail, { cause });
  }

  private async freeBytes(): Promise<number> {
    try {
      const stats = await statfs(this.options.path);
      return stats.bavail * stats.bsize;
    } catch {
      return Infinity;
    }
  }

  /** While full: space is back once DISK_FULL_BYTES are free again; owners retry their writes then. */
  private async checkSpace(): Promise<void> {
    if (!this.full || this.closed || (await this.freeBytes()) < 4 * DISK_FULL_BYTES) return;
    this.logger.info('home disk has space again', { path: this.options.path });
    this.full = undefined;
    if (this.fullTimer) clearInterval(this.fullTimer);
    this.fullTimer = null;
    this.options.onDiskFull?.(false);
  }

  /** Deletes a folder's entries in bounded transactions, then its key prefix and its removal marker. */
  private async removeFolderData(id: string): Promise<void> {
    const prefix = folderPrefix(this.openDbs(), id);
    if (prefix === undefined) {
      await this.write(() => this.openDbs().meta.removeSync([REMOVING, id]));
      return;
    }
    const range = folderRange(prefix);
    for (const name of FOLDER_DBS) {
      let removed: number;
      do {
        removed = await this.write(() => {
          const db = this.openDbs()[name];
          const keys = db.getKeys({ ...range, limit: REMOVE_BATCH_ENTRIES }).asArray;
          for (const key of keys) db.removeSync(key);
          return keys.length;
        });
      } while (removed === REMOVE_BATCH_ENTRIES);
    }
    await this.write(() => {
      forgetFolderPrefix(this.openDbs(), id);
      this.openDbs().meta.removeSync([REMOVING, id]);
    });
  }
}

/** Makes the renames in `dir` durable (synchronously: nothing else runs between the swap's renames and its end). */
function syncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Whether the index was rewritten about as much as it holds since its last repack (and at least REPACK_MIN_CHURN records). */
function repackWanted(dbs: IndexDbs): boolean {
  const churn: unknown = dbs.meta.get(CHURN_KEY);
  if (typeof churn !== 'number' || churn < REPACK_MIN_CHURN) return false;
  const entries = (dbs.local.getStats() as { entryCount?: number }).entryCount ?? 0;
  return churn >= entries;
}
