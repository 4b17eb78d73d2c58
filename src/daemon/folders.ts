// The set of shared folders: share, join, remove, and the checks that keep folders apart.

import { mkdir, realpath, stat } from 'node:fs/promises';
import { join, posix, resolve, sep } from 'node:path';
import { FerryError, ioError } from '../errors.js';
import { FolderKeys, decodeGrant, grantRefusal, parseFolderKey, type GrantBook } from '../keys/index.js';
import type { IndexStore } from '../index/store.js';
import type { FolderConfig } from '../index/types.js';
import type { HashPool } from '../scan/index.js';
import { Archive, checkArchivePolicy, changeSelection, type ArchivedFile, type ArchivePolicy, normaliseSubtree, stillExcludedBy, type FolderSync, type FolderSyncLimits, type TransferRates } from '../sync/index.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import type {
  SelectionReport, VersionReport, VersionsReport, ArchivePlanReport, ArchiveListing, BulkRestoreReport, ConflictKeep, ConflictListing, ConflictResolutionReport, FolderOptions, FolderReport, KeysReport,
} from '../web/daemon-api.js';
import { FOLDER_MARKER, SharedFolder } from './folder.js';
import { countExisting, notEmptyError } from './join-check.js';
import type { Settings } from './settings.js';

export interface FolderManagerOptions {
  store: IndexStore;
  pool: HashPool;
  device: { id: string; shortId: string };
  home: string;
  settings: Settings;
  logger: Logger;
  syncLimits?: FolderSyncLimits;
  /** The daemon's upload/download limiters, shared by every folder. */
  rates?: TransferRates;
  peerSource: (deviceId: string) => string | undefined;
  peerLink?: (deviceId: string) => { path: string; rttMs?: number } | undefined;
  /** A folder was added or removed: connections must re-handshake to include it. */
  onChange: () => void;
  /** The folder's grant book (grants.ts): records signed under valid RW grants are accepted. */
  grantBook?: (keys: FolderKeys) => GrantBook;
  /** A device's name by its short ID, when known (for the conflict list). */
  deviceName?: (shortId: string) => string | undefined;
}

function versionReport(file: ArchivedFile): VersionReport {
  return {
    archivePath: file.archivePath,
    archivedAtMs: file.archivedAtMs,
    at: new Date(file.archivedAtMs).toISOString(),
    size: file.size,
    ...(file.device ? { device: file.device } : {}),
  };
}

/** A file's path in the folder: relative already, or absolute inside it. */
function relativeIn(shared: SharedFolder, path: string): string {
  const root = shared.config.path;
  const rel = path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path.replace(/^\/+/, '');
  if (rel === '' || rel.split('/').some((part) => part === '' || part === '.' || part === '..')) throw new FerryError('USAGE', `not a file of the folder: ${path}`);
  return rel;
}

/** Entries of one directory listed per page of the selection tree. */
export const TREE_PAGE = 500;

/** Archive entries read for one listing: beyond this many, the listing is truncated (memory stays bounded). */
export const ARCHIVE_WALK_LIMIT = 200_000;

function contains(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}

export class FolderManager extends Resource {
  private readonly running = new Map<string, SharedFolder>();
  private readonly logger: Logger;
  /** Serialises share/join/remove so two requests cannot race past the overlap checks. */
  private changes: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: FolderManagerOptions) {
    super();
    this.logger = options.logger;
  }

  protected async _open(): Promise<void> {
    for (const config of this.options.store.listFolders()) await this.start(config);
  }

  protected async _close(): Promise<void> {
    await Promise.allSettled([...this.running.values()].map((folder) => folder.close()));
    this.running.clear();
  }

  private async start(config: FolderConfig): Promise<void> {
    const keys = parseFolderKey(config.key);
    const folder = new SharedFolder({
      config,
      keys,
      grants: this.options.grantBook?.(keys),
      index: this.options.store.folder(config.id),
      pool: this.options.pool,
      device: this.options.device,
      logger: this.logger,
      rescanIntervalMs: this.options.settings.rescanIntervalS * 1000,
      unwatchedRescanIntervalMs: this.options.settings.unwatchedRescanIntervalS * 1000,
      archiveDays: () => this.options.settings.archiveDays,
      massDeleteFiles: () => this.options.settings.massDeleteFiles,
      syncLimits: this.options.syncLimits,
      rates: this.options.rates,
      peerSource: this.options.peerSource,
      peerLink: this.options.peerLink,
      deviceName: this.options.deviceName,
      onStartedLate: () => this.options.onChange(),
    });
    this.running.set(config.id, folder);
    // A paused folder stays unopened: no scanner, watcher or sync until it is resumed.
    if (!config.paused) await folder.open();
  }

  private serialise<T>(work: () => Promise<T>): Promise<T> {
    const next = this.changes.then(work, work);
    this.changes = next.catch(() => undefined);
    return next;
  }

  list(): SharedFolder[] {
    return [...this.running.values()];
  }

  /** The keys of every folder not paused, for the handshake's claims. */
  allKeys(): FolderKeys[] {
    return this.list()
      .filter((folder) => !folder.config.paused)
      .map((folder) => folder.keys);
  }

  syncFor(folderIdHex: string): FolderSync | undefined {
    return this.running.get(folderIdHex)?.sync ?? undefined;
  }

  /** A folder by its ID or by its path. */
  resolve(folder: string): SharedFolder {
    const byId = this.running.get(folder.toLowerCase());
    if (byId) return byId;
    const path = resolve(folder);
    for (const shared of this.running.values()) {
      if (shared.config.path === path) return shared;
    }
    throw new FerryError('FOLDER_UNKNOWN', `no shared folder '${folder}' on this device`);
  }

  /** Checks that `path` can become a folder: a directory, apart from every other folder and the home. */
  private async checkPlacement(path: string, createIfMissing: boolean): Promise<string> {
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot read ${path}`, err);
      if (!createIfMissing) throw new FerryError('FOLDER_NOT_FOUND', `folder ${path} does not exist`);
      await mkdir(path, { recursive: true }).catch((e: unknown) => {
        throw ioError(`cannot create ${path}`, e);
      });
      info = await stat(path);
    }
    if (!info.isDirectory()) throw new FerryError('FOLDER_NOT_DIRECTORY', `${path} is not a directory`);
    const real = await realpath(path);
    const home = await realpath(this.options.home).catch(() => this.options.home);
    if (contains(real, home) || contains(home, real)) {
      throw new FerryError('FOLDER_OVERLAP', `${path} overlaps Ferry's home ${home}`);
    }
    for (const other of this.running.values()) {
      const otherReal = await realpath(other.config.path).catch(() => other.config.path);
      if (contains(otherReal, real) || contains(real, otherReal)) {
        const how = real === otherReal ? 'is' : contains(otherReal, real) ? 'lies inside' : 'contains';
        throw new FerryError('FOLDER_OVERLAP', `${path} ${how} the shared folder ${other.config.path}`);
      }
    }
    return real;
  }

  private async add(keys: FolderKeys, path: string, createIfMissing: boolean): Promise<SharedFolder> {
    if (this.running.has(keys.folderIdHex)) {
      const existing = this.running.get(keys.folderIdHex)!;
      throw new FerryError('FOLDER_EXISTS', `this folder is already shared here, at ${existing.config.path}`);
    }
    const real = await this.checkPlacement(resolve(path), createIfMissing);
    await mkdir(join(real, FOLDER_MARKER), { recursive: true }).catch((err: unknown) => {
      throw ioError(`cannot create ${FOLDER_MARKER}/ in ${real}`, err);
    });
    const config: FolderConfig = {
      id: keys.folderIdHex,
      path: real,
      access: keys.access,
      key: keys.format(),
      addedAtMs: Date.now(),
      paused: false,
    };
    await this.options.store.putFolder(config);
    await this.start(config);
    this.logger.info('folder added', { folder: config.id, path: real, access: config.access });
    this.options.onChange();
    return this.running.get(config.id)!;
  }

  share(path: string): Promise<KeysReport> {
    return this.serialise(async () => {
      const folder = await this.add(FolderKeys.generate(), path, false);
      return this.keys(folder.config.id);
    });
  }

  /** Joins a folder; a directory that already holds files is refused (FOLDER_NOT_EMPTY) unless `merge`. */
  join(keyText: string, path: string, options: { merge?: boolean } = {}): Promise<FolderReport> {
    return this.serialise(async () => {
      const keys = parseFolderKey(keyText);
      if (!options.merge && !this.running.has(keys.folderIdHex)) {
        const check = await countExisting(resolve(path));
        if (check.files > 0) throw notEmptyError(check);
      }
      if (keys.grant) {
        // An invite for another device, or one already over, would only be refused by every peer.
        const revoked = this.options.grantBook?.(keys).isRevoked(keys.grant.idHex) ?? false;
        const refusal = grantRefusal(decodeGrant(keys.grant.bytes), Date.now(), revoked, this.options.device.id);
        if (refusal) throw refusal;
      }
      return (await this.add(keys, path, true)).report();
    });
  }

  keys(folder: string): KeysReport {
    const shared = this.resolve(folder);
    const { keys } = shared;
    return {
      folderId: keys.folderIdHex,
      path: shared.config.path,
      ...(keys.holdsFolderKey ? { rw: keys.format('rw') } : {}),
      ...(keys.readSecret ? { ro: keys.format('ro') } : {}),
      enc: keys.format('enc'),
    };
  }

  /** Current conflicts of a folder, by path. */
  conflicts(folder: string, limit: number, offset: number): Promise<ConflictListing> {
    return this.resolve(folder).conflicts(limit, offset);
  }

  /** Resolves one conflict of a folder. */
  resolveConflict(folder: string, path: string, keep: ConflictKeep, name?: string): Promise<ConflictResolutionReport> {
    return this.resolve(folder).resolveConflict(path, keep, name);
  }

  revert(folder: string): Promise<number> {
    const shared = this.resolve(folder);
    if (shared.config.access !== 'ro') {
      throw new FerryError('USAGE', 'only a read-only folder has local changes to revert');
    }
    if (!shared.sync) throw new FerryError('FOLDER_UNKNOWN', `folder ${folder} is not running (${shared.report().error ?? 'stopped'})`);
    return shared.sync.revertLocalChanges();
  }

  /** Sets folder options: a change restarts the folder with them stored. Returns the options in force. */
  setOptions(folder: string, options: FolderOptions): Promise<Required<FolderOptions>> {
    return this.serialise(async () => {
      const shared = this.resolve(folder);
      const portableNames = options.portableNames ?? shared.config.portableNames === true;
      const archive = options.archive === undefined ? shared.config.archive : options.archive === null ? undefined : checkArchivePolicy(options.archive);
      if (portableNames !== (shared.config.portableNames === true) || JSON.stringify(archive) !== JSON.stringify(shared.config.archive)) {
        const config: FolderConfig = { ...shared.config, portableNames };
        if (archive) config.archive = archive;
        else delete config.archive;
        this.running.delete(shared.config.id);
        await shared.close();
        await this.options.store.putFolder(config);
        await this.start(config);
        this.logger.info('folder options changed', { folder: config.id, portableNames, archive: archive ? JSON.stringify(archive) : 'archiveDays setting' });
        this.options.onChange();
      }
      return { portableNames, archive: archive ?? null };
    });
  }

  /** The policy the folder's archive follows now: its own, else the archiveDays setting. */
  private policyOf(shared: SharedFolder): ArchivePolicy {
    return shared.config.archive ?? { kind: 'days', days: this.options.settings.archiveDays };
  }

  /** A file's archived versions, newest first. */
  async versions(folder: string, path: string): Promise<VersionsReport> {
    const { shared, archive } = this.archiveOf(folder);
    const relPath = relativeIn(shared, path);
    const versions = (await archive.versions(relPath)).map(versionReport);
    for (const version of versions) {
      const name = version.device ? this.options.deviceName?.(version.device) : undefined;
      if (name) version.deviceName = name;
    }
    return { folderId: shared.config.id, path: relPath, versions };
  }

  /**
   * Restores the version of a file archived at `atMs` (else the newest archived before it): the
   * current version goes to the archive first, and the scan that follows makes it an edit that syncs.
   */
  async restoreVersion(folder: string, path: string, atMs: number): Promise<{ path: string; restored: VersionReport }> {
    const { shared, archive } = this.archiveOf(folder);
    const relPath = relativeIn(shared, path);
    const versions = await archive.versions(relPath);
    const chosen = versions.find((v) => v.archivedAtMs === atMs) ?? versions.find((v) => v.archivedAtMs <= atMs);
    if (!chosen) {
      throw new FerryError('USAGE', versions.length === 0 ? `${relPath} has no archived versions` : `${relPath} has no version archived at or before ${new Date(atMs).toISOString()}`);
    }
    const restored = await this.restoreArchived(folder, chosen.archivePath);
    return { path: restored, restored: versionReport(chosen) };
  }

  /** The archive's size and what purging under the folder's policy would free now. */
  async archivePlan(folder: string): Promise<ArchivePlanReport> {
    const { shared, archive } = this.archiveOf(folder);
    const policy = this.policyOf(shared);
    const plan = await archive.plan(policy);
    return {
      folderId: shared.config.id,
      policy,
      files: plan.keptFiles + plan.remove.length,
      bytes: plan.keptBytes + plan.freedBytes,
      purgeFiles: plan.remove.length,
      purgeBytes: plan.freedBytes,
    };
  }

  /** The folder's selection and, when `dir` is given, one page of that directory of its tree. */
  async selection(folder: string, options: { dir?: string; limit?: number; offset?: number } = {}): Promise<SelectionReport> {
    const shared = this.resolve(folder);
    const excluded = shared.config.excluded ?? [];
    const report: SelectionReport = {
      folderId: shared.config.id,
      access: shared.config.access,
      excluded: [...excluded],
      // Walked afresh for the listing and the tree's root, not for each directory opened below it.
      localUnselected: options.dir === undefined || options.dir === '' ? await shared.checkLocalUnselected() : shared.lastLocalUnselected(),
    };
    if (shared.config.access === 'enc') {
      report.note = 'an encrypted (ENC) device sees encrypted names only: it can exclude encrypted subtrees, not tell which folders they are';
    }
    if (options.dir !== undefined) {
      const dir = options.dir.replace(/^\/+|\/+$/g, '');
      const offset = options.offset ?? 0;
      const { entries, total } = shared.tree(dir, offset, Math.min(options.limit ?? TREE_PAGE, TREE_PAGE));
      Object.assign(report, { dir, entries, total, offset });
    }
    return report;
  }

  /**
   * Excludes or includes one subtree on this device only: stored in the folder's settings (never
   * synced), and the folder restarts with it. Including a subtree fetches what peers have there.
   */
  setSelection(folder: string, change: { exclude?: string; include?: string }): Promise<SelectionReport> {
    return this.serialise(async () => {
      const shared = this.resolve(folder);
      const before = shared.config.excluded ?? [];
      const excluded = changeSelection(before, change);
      if (change.include !== undefined) {
        const still = stillExcludedBy(excluded, normaliseSubtree(change.include));
        if (still !== undefined) throw new FerryError('USAGE', `'${change.include}' lies inside excluded '${still}': include that instead`);
      }
      if (excluded.join('\0') !== before.join('\0')) {
        const config: FolderConfig = { ...shared.config, excluded };
        if (excluded.length === 0) delete config.excluded;
        this.running.delete(shared.config.id);
        await shared.close();
        await this.options.store.putFolder(config);
        await this.start(config);
        this.logger.info('folder selection changed', { folder: config.id, ...change });
        this.options.onChange();
      }
      return { folderId: shared.config.id, access: shared.config.access, excluded, localUnselected: { count: 0, paths: [] } };
    }).then(() => this.selection(folder));
  }

  /** Pauses or resumes a folder: restarts it with the flag stored, and re-handshakes with peers. */
  setPaused(folder: string, paused: boolean): Promise<void> {
    return this.serialise(async () => {
      const shared = this.resolve(folder);
      if (shared.config.paused === paused) return;
      const config: FolderConfig = { ...shared.config, paused };
      this.running.delete(shared.config.id);
      await shared.close();
      await this.options.store.putFolder(config);
      await this.start(config);
      this.logger.info(paused ? 'folder paused' : 'folder resumed', { folder: config.id });
      this.options.onChange();
    });
  }

  private archiveOf(folder: string): { shared: SharedFolder; archive: Archive } {
    const shared = this.resolve(folder);
    if (shared.config.access === 'enc') {
      throw new FerryError('KEY_ACCESS', 'an encrypted (ENC) folder has no readable archive on this device');
    }
    return { shared, archive: new Archive(shared.config.path, this.logger.child('archive')) };
  }

  /**
   * `limit` archived files newest first, after skipping `offset` (paging). The walk reads at most
   * ARCHIVE_WALK_LIMIT entries, so memory stays bounded; past that the listing says truncated.
   */
  async archiveList(folder: string, limit: number, offset = 0): Promise<ArchiveListing> {
    const { shared, archive } = this.archiveOf(folder);
    const all = [];
    let walkTruncated = false;
    for await (const file of archive.list()) {
      if (all.length >= ARCHIVE_WALK_LIMIT) {
        walkTruncated = true;
        break;
      }
      all.push(file);
    }
    all.sort((a, b) => b.archivedAtMs - a.archivedAtMs || a.path.localeCompare(b.path) || a.archivePath.localeCompare(b.archivePath));
    const files = all.slice(offset, offset + limit);
    return { folderId: shared.config.id, files, truncated: walkTruncated || offset + files.length < all.length, offset, total: all.length };
  }

  /**
   * Puts back the newest archived version of each file under `prefix` ('' = everything) that is
   * missing from the folder now, then scans so peers get them back.
   */
  async restoreArchivedAll(folder: string, prefix: string): Promise<BulkRestoreReport> {
    const { shared, archive } = this.archiveOf(folder);
    const under = prefix.replace(/^\/+|\/+$/g, '');
    const newest = new Map<string, { archivePath: string; archivedAtMs: number }>();
    for await (const file of archive.list()) {
      if (under && file.path !== under && !file.path.startsWith(`${under}/`)) continue;
      const known = newest.get(file.path);
      if (!known || file.archivedAtMs > known.archivedAtMs || (file.archivedAtMs === known.archivedAtMs && file.archivePath > known.archivePath)) {
        newest.set(file.path, { archivePath: file.archivePath, archivedAtMs: file.archivedAtMs });
      }
    }
    const report: BulkRestoreReport = { restored: 0, skipped: 0, failed: 0 };
    for (const [path, { archivePath }] of newest) {
      try {
        if (await archive.restoreIfAbsent(archivePath)) report.restored++;
        else report.skipped++;
      } catch (err) {
        report.failed++;
        this.logger.warn('cannot restore from the archive', { folder: shared.config.id, path, err: err as Error });
      }
    }
    this.logger.info('restored from archive', { folder: shared.config.id, under: under || '(all)', ...report });
    if (report.restored > 0) await shared.requestScan(under);
    return report;
  }

  /** A held mass delete goes ahead. */
  async applyDeletions(folder: string): Promise<number> {
    return this.resolve(folder).sync?.applyHeldDeletions() ?? 0;
  }

  /** A held mass delete is undone on every peer. */
  async restoreDeletions(folder: string): Promise<number> {
    return (await this.resolve(folder).sync?.restoreHeldDeletions()) ?? 0;
  }

  /** Restores an archived file, then scans its directory so peers get it back. */
  async restoreArchived(folder: string, archivePath: string): Promise<string> {
    const { shared, archive } = this.archiveOf(folder);
    const restored = await archive.restore(archivePath);
    this.logger.info('restored from archive', { folder: shared.config.id, path: restored });
    const dir = posix.dirname(restored);
    await shared.requestScan(dir === '.' ? '' : dir);
    return restored;
  }

  purgeArchive(folder: string, olderThanDays: number): Promise<number> {
    return this.archiveOf(folder).archive.purge(olderThanDays);
  }

  /** Stops syncing a folder and forgets its index; the files on disk stay as they are. */
  remove(folder: string): Promise<void> {
    return this.serialise(async () => {
      const shared = this.resolve(folder);
      this.running.delete(shared.config.id);
      await shared.close();
      await this.options.store.removeFolder(shared.config.id);
      this.logger.info('folder removed', { folder: shared.config.id, path: shared.config.path });
      this.options.onChange();
    });
  }
}
