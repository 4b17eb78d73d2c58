// The folder's archive (.ferry/archive/): deleted and replaced files are moved here, kept N days, restorable.
// Every path in and out of it goes through DiskPaths: never through a symlinked parent.

import { readdir, rm, rmdir, lstat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { FerryError, ioError, isFerryError } from '../errors.js';
import { checkFolderRelative, DiskPaths } from '../scan/disk-path.js';
import { NODE_FILE_IO, type FileIo } from '../util/file-io.js';
import type { Logger } from '../util/log.js';
import { purgePlan, type ArchivePolicy, type PurgePlan } from './archive-policy.js';

export const ARCHIVE_DIR = '.ferry/archive';
/** The stamp at the end of an archived file's name (its last path segment). */
const STAMP = /~(\d{8}-\d{6}-\d{3})(?:-(\d+))?(?:@([A-Za-z0-9]{1,64}))?$/;
/** A device's short ID as it may follow the stamp (`name~STAMP@DEVICE`: the device whose version it was). */
const DEVICE_TAG = /^[A-Za-z0-9]{1,64}$/;

export interface ArchivedFile {
  /** Where it lived in the folder. */
  path: string;
  /** Its name inside the archive, relative to the archive root. */
  archivePath: string;
  archivedAtMs: number;
  size: number;
  /** Short ID of the device that made this version, when known (the puller archives a peer-replaced version with it). */
  device?: string;
}

function stamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${p(d.getUTCMilliseconds(), 3)}`;
}

function parseStamp(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})-(\d{3})$/.exec(text)!;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!);
}

/**
 * The folder path an archive path was kept for, or undefined when it is not an archived file's
 * name or would name something other than one file inside the folder (`sub/x/..~stamp` is `sub`).
 */
export function originalPath(archivePath: string): string | undefined {
  if (!isFolderRelative(archivePath)) return undefined;
  const match = STAMP.exec(archivePath);
  if (!match) return undefined;
  const path = archivePath.slice(0, archivePath.length - match[0].length);
  return isFolderRelative(path) ? path : undefined;
}

function isFolderRelative(path: string): boolean {
  try {
    checkFolderRelative(path);
    return true;
  } catch {
    return false;
  }
}

function isMissingParent(err: unknown): boolean {
  return isFerryError(err, 'IO') && (err.cause as { code?: string } | undefined)?.code === 'ENOENT';
}

/** Paths whose latest hard-linked version is remembered (bounded: the oldest is forgotten). */
const MAX_REMEMBERED_LINKS = 256;

export class Archive {
  readonly root: string;
  private readonly paths: DiskPaths;
  /** The latest versions kept by a hard link, by path: a retried install does not archive the same file twice. */
  private readonly linked = new Map<string, { ino: number; dev: number; archivePath: string }>();

  /** `io`: the writing file operations of its moves and links (node:fs unless a test injects faults). */
  constructor(folderRoot: string, private readonly logger: Logger, private readonly now: () => number = Date.now, io: FileIo = NODE_FILE_IO) {
    this.root = join(folderRoot, ARCHIVE_DIR);
    this.paths = new DiskPaths(folderRoot, { io });
  }

  /**
   * Moves the file (or symlink) at `relPath` into the archive (a rename: same filesystem, atomic).
   * Returns its archive path, or null when there was nothing to archive. Refuses (PATH_UNSAFE) a
   * path through a symlinked directory, and a directory itself (IO): only files are kept.
   */
  async keep(relPath: string, options: { device?: string } = {}): Promise<string | null> {
    checkFolderRelative(relPath);
    const tag = options.device !== undefined && DEVICE_TAG.test(options.device) ? `@${options.device}` : '';
    let source;
    try {
      source = await this.paths.resolve(relPath);
    } catch (err) {
      if (isMissingParent(err)) return null;
      throw err;
    }
    if (!source.stats) return null;
    if (source.stats.isDirectory()) throw new FerryError('IO', `cannot archive ${relPath}: it is a directory`);
    const base = `${relPath}~${stamp(this.now())}`;
    for (let n = 0; n < 1000; n++) {
      const archivePath = (n === 0 ? base : `${base}-${n}`) + tag;
      const target = await this.paths.resolve(`${ARCHIVE_DIR}/${archivePath}`, { createParents: true });
      if (target.stats) continue;
      try {
        this.paths.renameBetween(source, target);
      } catch (err) {
        if (isFerryError(err)) throw err;
        throw ioError(`cannot archive ${relPath}`, err);
      }
      this.paths.noteRemoved(source.parentAbs, source.diskName);
      this.logger.debug('archived', { path: relPath, as: archivePath });
      return archivePath;
    }
    throw new FerryError('IO', `cannot archive ${relPath}: too many versions archived at the same moment`);
  }

  /**
   * Like keep, but the file also stays where it is: a hard link in the archive, so that a rename
   * over it can follow (an atomic replace). Returns null when there is nothing to keep or the
   * filesystem has no hard links (then the caller archives with keep).
   */
  async keepLinked(relPath: string, options: { device?: string } = {}): Promise<string | null> {
    checkFolderRelative(relPath);
    const tag = options.device !== undefined && DEVICE_TAG.test(options.device) ? `@${options.device}` : '';
    const source = await this.paths.resolve(relPath);
    if (!source.stats || source.stats.isDirectory()) return null;
    // Kept already by an install that then failed (and is retried): that link is the archived version.
    const earlier = this.linked.get(relPath);
    if (earlier && earlier.ino === source.stats.ino && earlier.dev === source.stats.dev) {
      const there = await this.paths.resolve(`${ARCHIVE_DIR}/${earlier.archivePath}`).catch(() => undefined);
      if (there?.stats && there.stats.ino === earlier.ino && there.stats.dev === earlier.dev) return earlier.archivePath;
    }
    const base = `${relPath}~${stamp(this.now())}`;
    for (let n = 0; n < 1000; n++) {
      const archivePath = (n === 0 ? base : `${base}-${n}`) + tag;
      const target = await this.paths.resolve(`${ARCHIVE_DIR}/${archivePath}`, { createParents: true });
      if (target.stats) continue;
      try {
        this.paths.linkBetween(source, target);
        this.linked.delete(relPath);
        this.linked.set(relPath, { ino: source.stats.ino, dev: source.stats.dev, archivePath });
        if (this.linked.size > MAX_REMEMBERED_LINKS) this.linked.delete(this.linked.keys().next().value!);
      } catch (err) {
        if (isFerryError(err)) throw err;
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EXDEV' || code === 'EMLINK') return null;
        throw ioError(`cannot archive ${relPath}`, err);
      }
      this.logger.debug('archived (linked)', { path: relPath, as: archivePath });
      return archivePath;
    }
    throw new FerryError('IO', `cannot archive ${relPath}: too many versions archived at the same moment`);
  }

  /** Every archived file, walking the archive one directory at a time (never through a symlink). */
  async *list(): AsyncGenerator<ArchivedFile> {
    try {
      const top = await this.paths.resolve(ARCHIVE_DIR);
      if (!top.stats?.isDirectory()) return;
    } catch (err) {
      if (isMissingParent(err)) return;
      throw err;
    }
    const pending = [''];
    while (pending.length > 0) {
      const dir = pending.pop()!;
      let entries;
      try {
        entries = await readdir(join(this.root, dir), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw ioError('cannot read the archive', err);
      }
      for (const entry of entries) {
        const archivePath = dir ? posix.join(dir, entry.name) : entry.name;
        const path = entry.isDirectory() ? undefined : originalPath(archivePath);
        if (path !== undefined) {
          const info = await lstat(join(this.root, archivePath));
          const match = STAMP.exec(archivePath)!;
          yield { path, archivePath, archivedAtMs: parseStamp(match[1]!), size: info.size, ...(match[3] ? { device: match[3] } : {}) };
        } else if (entry.isDirectory()) pending.push(archivePath);
      }
    }
  }

  /**
   * Puts an archived file back at its path (or `toPath`); what is there now is archived first.
   * Refuses (PATH_UNSAFE) when a directory on the way is a symlink: nothing is written outside the folder.
   */
  async restore(archivePath: string, toPath?: string): Promise<string> {
    const original = originalPath(archivePath);
    if (original === undefined) throw new FerryError('USAGE', `not an archived file: ${archivePath}`);
    const target = toPath ?? original;
    if (!isFolderRelative(target)) throw new FerryError('USAGE', `cannot restore to ${JSON.stringify(target)}`);
    this.paths.forget();
    const source = await this.paths.resolve(`${ARCHIVE_DIR}/${archivePath}`).catch((err: unknown) => {
      if (isMissingParent(err)) return undefined;
      throw err;
    });
    if (!source?.stats || source.stats.isDirectory()) throw new FerryError('USAGE', `not an archived file: ${archivePath}`);
    // Checked before anything moves: a symlinked parent refuses the restore with the folder untouched.
    await this.paths.resolveParent(target, { createParents: true });
    await this.keep(target);
    const destination = await this.paths.resolve(target, { createParents: true });
    if (destination.stats) throw new FerryError('IO', `cannot restore ${archivePath}: ${target} appeared meanwhile`);
    try {
      this.paths.renameBetween(source, destination);
    } catch (err) {
      if (isFerryError(err)) throw err;
      throw ioError(`cannot restore ${archivePath}`, err);
    }
    await this.pruneEmptyDirs(posix.dirname(archivePath));
    return target;
  }

  /**
   * Like restore, but leaves the folder alone and returns null when something is at the path now
   * (a bulk restore puts back what is missing, never over a file that is there).
   */
  async restoreIfAbsent(archivePath: string): Promise<string | null> {
    const original = originalPath(archivePath);
    if (original === undefined) throw new FerryError('USAGE', `not an archived file: ${archivePath}`);
    this.paths.forget();
    const at = await this.paths.resolve(original).catch((err: unknown) => {
      if (isMissingParent(err)) return undefined;
      throw err;
    });
    if (at?.stats) return null;
    return this.restore(archivePath);
  }

  /** Deletes archived files older than `maxAgeDays`; returns how many went. */
  async purge(maxAgeDays: number): Promise<number> {
    const cutoff = this.now() - maxAgeDays * 86_400_000;
    let purged = 0;
    // list() reads a directory whole before yielding from it, so deleting as we go is safe.
    for await (const file of this.list()) {
      if (file.archivedAtMs >= cutoff) continue;
      const at = await this.paths.resolve(`${ARCHIVE_DIR}/${file.archivePath}`);
      if (!at.stats || at.stats.isDirectory()) continue;
      await rm(at.abs, { force: true });
      await this.pruneEmptyDirs(posix.dirname(file.archivePath));
      purged++;
    }
    if (purged) this.logger.info('purged archive', { files: purged, olderThanDays: maxAgeDays });
    return purged;
  }

  /** What a purge under the policy would remove now (nothing is changed), with the bytes kept and freed. */
  async plan(policy: ArchivePolicy): Promise<PurgePlan> {
    const files: ArchivedFile[] = [];
    for await (const file of this.list()) files.push(file);
    return purgePlan(files, policy, this.now());
  }

  /** Purges under a folder's policy (age, staggering, size cap: oldest first); returns the plan carried out. */
  async purgeWith(policy: ArchivePolicy): Promise<PurgePlan> {
    const plan = await this.plan(policy);
    for (const file of plan.remove) {
      const at = await this.paths.resolve(`${ARCHIVE_DIR}/${file.archivePath}`).catch(() => undefined);
      if (!at?.stats || at.stats.isDirectory()) continue;
      await rm(at.abs, { force: true });
      await this.pruneEmptyDirs(posix.dirname(file.archivePath));
    }
    if (plan.remove.length) this.logger.info('purged archive', { files: plan.remove.length, bytes: plan.freedBytes, policy: policy.kind });
    return plan;
  }

  /** The archived versions of one file, newest first. */
  async versions(path: string): Promise<ArchivedFile[]> {
    checkFolderRelative(path);
    const found: ArchivedFile[] = [];
    for await (const file of this.list()) if (file.path === path) found.push(file);
    return found.sort((a, b) => b.archivedAtMs - a.archivedAtMs || (a.archivePath < b.archivePath ? 1 : -1));
  }

  private async pruneEmptyDirs(dir: string): Promise<void> {
    for (let current = dir; current && current !== '.'; current = posix.dirname(current)) {
      try {
        const at = await this.paths.resolve(`${ARCHIVE_DIR}/${current}`);
        if (!at.stats?.isDirectory()) return;
        await rmdir(at.abs);
        this.paths.noteRemoved(at.parentAbs, at.diskName);
      } catch {
        return; // not empty (or gone): stop climbing
      }
    }
  }
}
