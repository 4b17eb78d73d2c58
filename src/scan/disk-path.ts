// The one home of every path the daemon reads or writes inside a folder: never through a symlinked
// parent, NFD spellings, case-insensitive clashes.

import { constants, type Stats } from 'node:fs';
import { fstatSync, lchownSync, lstatSync, openSync, readlinkSync, realpathSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { lstat, opendir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, ioError } from '../errors.js';
import { FERRY_DIR, TEMP_FILE_PREFIX } from './ignore.js';
import { OWN_WRITES } from './own-writes.js';
import { closeQuietly, DIR_NO_FOLLOW, fstatFd, openFd, READ_NO_FOLLOW } from '../util/fd.js';
import { NODE_FILE_IO, type FileIo } from '../util/file-io.js';

/** Relative path as indexed: NFC, '/'-separated (the walker only ever produces '/' on POSIX). */
export function toIndexPath(diskRelPath: string): string {
  return diskRelPath.normalize('NFC');
}

function needsNormalisationLookup(name: string): boolean {
  return name !== name.normalize('NFD');
}

async function findNameInDir(absDir: string, nfcName: string): Promise<string | undefined> {
  let dir;
  try {
    dir = await opendir(absDir);
  } catch {
    return undefined;
  }
  try {
    for await (const entry of dir) {
      if (entry.name.normalize('NFC') === nfcName) return entry.name;
    }
  } catch {
    // dir closes itself on error or early exit of for-await
  }
  return undefined;
}

/**
 * The on-disk relative path for an indexed (NFC) path: the path itself when it exists, otherwise each
 * component whose NFC form could be spelled differently is looked up in its parent directory.
 * Returns undefined when no such entry exists. Only composed characters cost a directory listing.
 */
export async function resolveDiskPath(
  root: string,
  indexPath: string,
  exists: (absPath: string) => Promise<boolean>,
): Promise<string | undefined> {
  if (indexPath === '') return '';
  if (await exists(join(root, indexPath))) return indexPath;
  if (!needsNormalisationLookup(indexPath)) return undefined;
  let diskRel = '';
  for (const part of indexPath.split('/')) {
    const candidate = diskRel === '' ? part : `${diskRel}/${part}`;
    if (await exists(join(root, candidate))) {
      diskRel = candidate;
      continue;
    }
    if (!needsNormalisationLookup(part)) return undefined;
    const found = await findNameInDir(join(root, diskRel), part);
    if (found === undefined) return undefined;
    diskRel = diskRel === '' ? found : `${diskRel}/${found}`;
  }
  return diskRel;
}

/** Directories whose listing is remembered for clash checks during one puller pass. */
const MAX_LISTED_DIRS = 16;
/**
 * How long a parent directory found to be a real directory is trusted without another lstat: the
 * puller resolves dozens of files per directory per second, and each lstat is a thread-pool round trip.
 */
const VERIFIED_DIR_MS = 1000;
const MAX_VERIFIED_DIRS = 256;

/** What the disk looked like lately: entries expire after VERIFIED_DIR_MS; at most MAX_VERIFIED_DIRS, oldest dropped first. */
class RecentlySeen<V> {
  private readonly entries = new Map<string, { value: V; atMs: number }>();

  get(key: string): V | undefined {
    const known = this.entries.get(key);
    if (!known) return undefined;
    if (Date.now() - known.atMs <= VERIFIED_DIR_MS) return known.value;
    this.entries.delete(key);
    return undefined;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    if (this.entries.size >= MAX_VERIFIED_DIRS) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, atMs: Date.now() });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * `dirAbs/name` for one already-validated name: what path.join gives, without normalising the whole
 * string again (join was the largest single source of garbage in the puller's hot path).
 */
export function childPath(dirAbs: string, name: string): string {
  return dirAbs.endsWith('/') ? dirAbs + name : `${dirAbs}/${name}`;
}

/** The name two entries share on a case-insensitive, normalisation-insensitive filesystem. */
export function foldName(name: string): string {
  return name.normalize('NFC').toLowerCase();
}

export interface ResolvedTarget {
  /** Absolute path of the parent directory (real directories all the way from the root). */
  parentAbs: string;
  /** The entry's name on disk: the record's NFC name, or the NFD spelling already there. */
  diskName: string;
  abs: string;
  /** Folder-relative path as spelled on disk. */
  diskRel: string;
  /** lstat of the entry, when it exists. */
  stats?: Stats;
  /** A different entry in the same directory that is the same name to a case-insensitive filesystem. */
  clash?: string;
}

/**
 * Resolves folder-relative (NFC) paths to disk entries without ever passing through a symlink:
 * every parent component is lstat'ed and must be a real directory (PATH_UNSAFE otherwise).
 */
export class DiskPaths {
  private readonly listings = new Map<string, Map<string, string[]>>();
  /** Parent directories lately lstat'ed, by parent path + NUL + NFC name. */
  private readonly verifiedDirs = new RecentlySeen<{ diskName: string; stats: Stats }>();
  /** Directories an entry was lately looked up in. */
  private readonly lookedInto = new RecentlySeen<true>();
  /** Parent directories being made by resolveParent now, by absolute path. */
  private readonly making = new Map<string, Promise<Stats | undefined>>();
  /** The root's owner, read at the first adopt (null: not running as root, or the root is unreadable). */
  private owner: { uid: number; gid: number } | null | undefined;

  /** Whether the folder's volume holds names differing only in case side by side (probed once). */
  private caseSensitive: Promise<boolean> | undefined;

  /** The writing file operations (node:fs unless a test injects faults). */
  readonly io: FileIo;

  /** Directories of the folder held open for a moment, verified at each use (see HeldDirs). */
  readonly dirs: HeldDirs;

  /**
   * `caseSensitive`: what the volume is, without probing it (tests simulate a case-insensitive one);
   * `io`: the writing file operations (NODE_FILE_IO by default; tests inject faults through it).
   */
  constructor(
    readonly root: string,
    options: { caseSensitive?: boolean; io?: FileIo } = {},
  ) {
    this.io = options.io ?? NODE_FILE_IO;
    this.dirs = new HeldDirs(root);
    if (options.caseSensitive !== undefined) this.caseSensitive = Promise.resolve(options.caseSensitive);
  }

  /**
   * Whether the folder's volume is case-sensitive: a temp name is created at the root and its
   * upper-case form looked up. Probed once per folder; a volume that cannot be probed (read-only,
   * full) counts as case-insensitive, the cautious answer (a twin is kept out, never overwritten).
   */
  isCaseSensitive(): Promise<boolean> {
    this.caseSensitive ??= probeCaseSensitive(this.root, this.io);
    return this.caseSensitive;
  }

  /** Forgets directory listings (at the start of each puller pass) and, unless only `listings`, the verified parents. */
  forget(what: 'all' | 'listings' = 'all'): void {
    this.listings.clear();
    if (what === 'all') {
      this.verifiedDirs.clear();
      this.lookedInto.clear();
      this.dirs.closeIdle();
    }
  }

  /**
   * Where `path` lives on disk. Missing parents are created (mode 0o755, the folder's owner) when
   * `createParents`; otherwise a missing parent throws IO ENOENT.
   */
  async resolve(path: string, options: { createParents?: boolean } = {}): Promise<ResolvedTarget> {
    const { parentAbs, diskRelParent, name } = await this.resolveParent(path, options);
    const entry = await this.findEntry(parentAbs, name);
    const diskName = entry?.diskName ?? name;
    const target: ResolvedTarget = { parentAbs, diskName, abs: childPath(parentAbs, diskName), diskRel: diskRelParent + diskName };
    if (entry) target.stats = entry.stats;
    else if (!(await this.isCaseSensitive())) {
      const clash = (await this.listing(parentAbs)).get(foldName(name))?.find((other) => other.normalize('NFC') !== name);
      if (clash !== undefined) target.clash = diskRelParent + clash;
    }
    return target;
  }

  /**
   * The real directory `path` lives in (every component lstat'ed, or verified within the last
   * second) and its last component, not looked up.
   */
  async resolveParent(path: string, options: { createParents?: boolean } = {}): Promise<{ parentAbs: string; diskRelParent: string; name: string }> {
    const parts = path.split('/');
    const name = parts.pop()!;
    let parentAbs = this.root;
    let diskRelParent = '';
    for (const part of parts) {
      const key = `${parentAbs}\0${part}`;
      let entry = this.verifiedDirs.get(key);
      if (!entry) {
        entry = await this.findEntry(parentAbs, part);
        if (entry?.stats.isDirectory()) this.verifiedDirs.set(key, entry);
      }
      let childAbs: string;
      if (entry) {
        childAbs = childPath(parentAbs, entry.diskName);
        if (entry.stats.isSymbolicLink()) throw unsafe(path, `${diskRelParent}${entry.diskName} is a symlink`);
        if (!entry.stats.isDirectory()) throw new FerryError('IO', `cannot write ${path}: ${diskRelParent}${entry.diskName} is not a directory`);
        diskRelParent += `${entry.diskName}/`;
      } else {
        if (!options.createParents) throw new FerryError('IO', `parent of ${path} is missing`, { cause: { code: 'ENOENT' } });
        childAbs = childPath(parentAbs, part);
        // Files of a new directory arrive many at once: one of them makes it, the others wait for that (a mkdir
        // each cost thousands of EEXIST failures, lchowns and lstats on the real tree).
        let making = this.making.get(childAbs);
        if (!making) {
          making = this.makeDir(childAbs, 0o755).finally(() => this.making.delete(childAbs));
          this.making.set(childAbs, making);
        }
        const made = await making;
        if (made?.isDirectory()) this.verifiedDirs.set(key, { diskName: part, stats: made });
        this.noteCreated(parentAbs, part);
        diskRelParent += `${part}/`;
      }
      parentAbs = childAbs;
    }
    return { parentAbs, diskRelParent, name };
  }

  /**
   * Renames the entry `from` of the target's directory to `to` in the same directory, through that
   * directory opened again component by component with O_NOFOLLOW (a parent swapped for a symlink
   * since the target was resolved is refused: PATH_UNSAFE). Returns the lstat of the renamed entry.
   */
  renameWithin(target: ResolvedTarget, from: string, to: string): Stats {
    const parent = this.dirs.open(parentOfDiskRel(target));
    try {
      this.io.renameSync(parent.entry(from), parent.entry(to));
      return lstatSync(parent.entry(to));
    } finally {
      parent.close();
    }
  }

  /**
   * Moves one resolved entry to another resolved (absent) place, both directories opened again
   * component by component with O_NOFOLLOW: a parent swapped for a symlink meanwhile is refused.
   */
  renameBetween(from: ResolvedTarget, to: ResolvedTarget): void {
    const source = this.dirs.open(parentOfDiskRel(from));
    try {
      const destination = this.dirs.open(parentOfDiskRel(to));
      try {
        this.io.renameSync(source.entry(from.diskName), destination.entry(to.diskName));
      } finally {
        destination.close();
      }
    } finally {
      source.close();
    }
  }

  /**
   * Hard-links one resolved entry at another resolved (absent) place, both directories opened again
   * component by component with O_NOFOLLOW, like renameBetween. The entry itself stays.
   */
  linkBetween(from: ResolvedTarget, to: ResolvedTarget): void {
    const source = this.dirs.open(parentOfDiskRel(from));
    try {
      const destination = this.dirs.open(parentOfDiskRel(to));
      try {
        this.io.linkSync(source.entry(from.diskName), destination.entry(to.diskName));
      } finally {
        destination.close();
      }
    } finally {
      source.close();
    }
  }

  /** mkdir with a mode (umask aside) and the folder's owner when running as root. */
  async makeDir(abs: string, mode: number): Promise<Stats | undefined> {
    try {
      await this.io.mkdir(abs, { mode: mode & 0o777 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`cannot create directory ${abs}`, err);
    }
    this.adopt(abs);
    const stats = await lstat(abs).catch(() => undefined);
    OWN_WRITES.note(abs, stats);
    return stats;
  }

  /**
   * Gives a new entry the folder root's owner and group when running as root (a NAS daemon usually
   * is). Synchronous: chown of an inode just created touches no disk, and a thread-pool round trip
   * costs more than the call.
   */
  adopt(abs: string): void {
    if (this.owner === undefined) {
      const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
      this.owner = null;
      if (asRoot) {
        try {
          const { uid, gid } = lstatSync(this.root);
          this.owner = { uid, gid };
        } catch {
          // unreadable root: entries keep the daemon's owner
        }
      }
    }
    if (!this.owner) return;
    try {
      lchownSync(abs, this.owner.uid, this.owner.gid); // never through a symlink swapped in meanwhile
    } catch {
      // best effort: the entry stays the daemon's
    }
  }

  noteCreated(parentAbs: string, name: string): void {
    const listing = this.listings.get(parentAbs);
    if (!listing) return;
    const key = foldName(name);
    const names = listing.get(key) ?? [];
    if (!names.includes(name)) names.push(name);
    listing.set(key, names);
  }

  noteRemoved(parentAbs: string, name: string): void {
    this.verifiedDirs.delete(`${parentAbs}\0${name.normalize('NFC')}`);
    const names = this.listings.get(parentAbs)?.get(foldName(name));
    const at = names?.indexOf(name) ?? -1;
    if (at >= 0) names!.splice(at, 1);
  }

  /** The entry for an NFC name: itself, or the name spelled another way (NFD) in this directory. */
  private async findEntry(dirAbs: string, name: string): Promise<{ diskName: string; stats: Stats } | undefined> {
    const stats = await this.lstatEntry(childPath(dirAbs, name), dirAbs);
    if (stats) return { diskName: name, stats };
    if (!/[^\u0000-\u007f]/.test(name)) return undefined; // plain ASCII has no other spelling
    const spelled = (await this.listing(dirAbs)).get(foldName(name))?.find((other) => other !== name && other.normalize('NFC') === name);
    if (spelled === undefined) return undefined;
    const spelledStats = await this.lstatEntry(childPath(dirAbs, spelled), dirAbs);
    return spelledStats && { diskName: spelled, stats: spelledStats };
  }

  /**
   * lstat of an entry; undefined when it is missing. In a directory looked into within the last
   * second (its blocks are in the page cache) the call is synchronous: a few microseconds against a
   * thread-pool round trip, and a missing entry builds no Error. The first look into a directory,
   * which may read the disk, goes through the thread pool.
   */
  private async lstatEntry(abs: string, dirAbs: string): Promise<Stats | undefined> {
    const hot = this.lookedInto.get(dirAbs) === true;
    try {
      return hot ? lstatSync(abs, { throwIfNoEntry: false }) : await lstat(abs);
    } catch (err) {
      if (!isMissing(err)) throw ioError(`cannot read ${abs}`, err);
      return undefined;
    } finally {
      if (!hot) this.lookedInto.set(dirAbs, true);
    }
  }

  /** Names in a directory grouped by folded name; one readdir per directory per pass. */
  private async listing(dirAbs: string): Promise<Map<string, string[]>> {
    let listing = this.listings.get(dirAbs);
    if (listing) return listing;
    listing = new Map();
    let names: string[] = [];
    try {
      names = await readdir(dirAbs);
    } catch (err) {
      if (!isMissing(err)) throw ioError(`cannot list ${dirAbs}`, err);
    }
    for (const name of names) {
      if (name.startsWith(TEMP_FILE_PREFIX)) continue;
      const key = foldName(name);
      const group = listing.get(key);
      if (group) group.push(name);
      else listing.set(key, [name]);
    }
    if (this.listings.size >= MAX_LISTED_DIRS) this.listings.delete(this.listings.keys().next().value!);
    this.listings.set(dirAbs, listing);
    return listing;
  }
}

function unsafe(path: string, detail: string): FerryError {
  return new FerryError('PATH_UNSAFE', `refusing ${JSON.stringify(path)}: ${detail}`);
}

/**
 * Throws PATH_UNSAFE unless `path` names something inside the folder: relative, '/'-separated, no
 * NUL, no empty, `.` or `..` segment. (Names the wire or the disk refuse are checked in names.ts.)
 */
export function checkFolderRelative(path: string): void {
  if (path === '' || path.startsWith('/') || path.includes('\0')) throw unsafe(path, 'not a relative path');
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') throw unsafe(path, `"${segment}" segment`);
  }
}

/**
 * Whether `/proc/self/fd/N` reaches the directory an open descriptor holds (Linux): then entries are
 * read relative to the descriptor, as openat/fstatat would, whatever happens to the path meanwhile.
 */
const PROC_FD = ((): boolean => {
  try {
    return lstatSync('/proc/self/fd', { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false;
  }
})();

/** The identity of a directory as first seen (lstat through its verified parent). */
export interface DirIdentity {
  dev: number;
  ino: number;
}

/**
 * A directory of the folder held open by a descriptor, reached without passing through a symlink.
 * Read its entries through `base` (`/proc/self/fd/N` on Linux, else its path); close() when done.
 */
export class VerifiedDir {
  private closed = false;

  /** `release`: close() hands the descriptor back to its owner (a HeldDirs cache) instead of closing it. */
  constructor(
    readonly fd: number,
    readonly abs: string,
    readonly identity: DirIdentity,
    private readonly release?: () => void,
  ) {}

  /** Prefix for the entries of this directory: `${base}/${name}`. */
  get base(): string {
    return PROC_FD ? `/proc/self/fd/${this.fd}` : this.abs;
  }

  /** Absolute path of an entry inside, for reading (through the descriptor where possible). */
  entry(name: string): string {
    return `${this.base}/${name}`;
  }

  /**
   * True when what was read through `base` came from this directory. Always so through the
   * descriptor; by path, the path must still lead to the same directory.
   */
  async stillHere(): Promise<boolean> {
    if (PROC_FD) return true;
    const now = await lstat(this.abs).catch(() => undefined);
    return now !== undefined && now.isDirectory() && sameDir(now, this.identity);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.release) this.release();
    else closeQuietly(this.fd);
  }
}

function sameDir(stats: { dev: number; ino: number }, identity: DirIdentity): boolean {
  return stats.dev === identity.dev && stats.ino === identity.ino;
}

async function openNoFollow(abs: string, shown: string, path: string, follow = false): Promise<{ fd: number; stats: Stats }> {
  let fd: number;
  try {
    fd = await openFd(abs, follow ? constants.O_RDONLY | constants.O_DIRECTORY : DIR_NO_FOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || (code === 'ENOTDIR' && (await lstat(abs).catch(() => undefined))?.isSymbolicLink())) {
      throw unsafe(path, `${shown || '.'} is a symlink`);
    }
    throw err;
  }
  try {
    return { fd, stats: await fstatFd(fd) };
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

function openNoFollowSync(abs: string, path: string, follow: boolean, withStats = true): { fd: number; stats?: Stats } {
  let fd: number;
  try {
    fd = openSync(abs, follow ? constants.O_RDONLY | constants.O_DIRECTORY : DIR_NO_FOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || (code === 'ENOTDIR' && lstatSync(abs, { throwIfNoEntry: false })?.isSymbolicLink())) {
      throw unsafe(path, `${path || '.'} is a symlink`);
    }
    throw err;
  }
  if (!withStats) return { fd };
  try {
    return { fd, stats: fstatSync(fd) };
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

/**
 * Opens the folder directory at `diskRel` ('' = the root) for reading, never through a symlink:
 * with `expect` (its identity as lstat'ed through its verified parent) one open with O_NOFOLLOW
 * whose result must be that very directory; without, each component is opened with O_NOFOLLOW
 * relative to the one before. Throws PATH_UNSAFE for a symlink or a directory swapped meanwhile,
 * and the errno error (ENOENT, ENOTDIR, EACCES…) otherwise.
 */
export async function openFolderDir(root: string, diskRel: string, expect?: DirIdentity): Promise<VerifiedDir> {
  const abs = diskRel === '' ? root : `${root}/${diskRel}`;
  if (expect) {
    // Synchronous: the directory was lstat'ed through its parent moments ago (inode cached), so the
    // open and fstat take microseconds, less than two thread-pool round trips per directory.
    const { fd, stats: opened } = openNoFollowSync(abs, diskRel, diskRel === '');
    const stats = opened!;
    if (!sameDir(stats, expect)) {
      closeQuietly(fd);
      throw unsafe(diskRel, 'the directory was replaced while it was read');
    }
    return new VerifiedDir(fd, abs, { dev: stats.dev, ino: stats.ino });
  }
  let { fd, stats } = await openNoFollow(root, '', diskRel, true); // the root itself may be a symlink the user chose
  let shown = '';
  try {
    for (const part of diskRel === '' ? [] : diskRel.split('/')) {
      shown = shown === '' ? part : `${shown}/${part}`;
      const through = PROC_FD ? `/proc/self/fd/${fd}/${part}` : `${root}/${shown}`;
      const next = await openNoFollow(through, shown, diskRel);
      closeQuietly(fd);
      ({ fd, stats } = next);
    }
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  return new VerifiedDir(fd, abs, { dev: stats.dev, ino: stats.ino });
}

async function probeCaseSensitive(root: string, io: FileIo): Promise<boolean> {
  // Inside the folder's own `.ferry/` (same volume: it is the folder's marker) so that no probe ever shows in
  // the user's tree, even for the moment it exists; at the root only when there is no marker directory yet.
  const marker = childPath(root, FERRY_DIR);
  const dir = (await lstat(marker).catch(() => undefined))?.isDirectory() ? marker : root;
  const name = `${TEMP_FILE_PREFIX}case-probe-${randomBytes(6).toString('hex')}`;
  const abs = childPath(dir, name);
  try {
    closeQuietly(await io.open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
  } catch {
    return false;
  }
  try {
    return (await lstat(childPath(dir, name.toUpperCase())).catch(() => undefined)) === undefined;
  } finally {
    await io.unlink(abs).catch(() => undefined);
  }
}

/**
 * chmod of a folder entry (file or directory) that never follows a symlink swapped in at its path:
 * through a descriptor opened with O_NOFOLLOW (fchmod). An entry the daemon cannot open for reading
 * (mode 0o200, say) is lstat'ed first and refused when it is a symlink. `io`: the folder's FileIo.
 */
export async function chmodNoFollow(abs: string, mode: number, io: FileIo = NODE_FILE_IO): Promise<void> {
  let fd: number;
  try {
    fd = await openFd(abs, READ_NO_FOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw unsafe(abs, 'is a symlink');
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    if ((await lstat(abs)).isSymbolicLink()) throw unsafe(abs, 'is a symlink');
    await io.chmod(abs, mode & 0o7777);
    return;
  }
  try {
    await io.fchmod(fd, mode & 0o7777);
  } finally {
    closeQuietly(fd);
  }
}

/**
 * openFolderDir's synchronous chain (every component opened with O_NOFOLLOW relative to the one
 * before), for the installer's final rename: directories the puller has just resolved are in the
 * cache, so each open takes microseconds.
 */
export function openFolderDirSync(root: string, diskRel: string): VerifiedDir {
  let { fd } = openNoFollowSync(root, diskRel, true, false);
  let shown = '';
  try {
    for (const part of diskRel === '' ? [] : diskRel.split('/')) {
      shown = shown === '' ? part : `${shown}/${part}`;
      const next = openNoFollowSync(PROC_FD ? `/proc/self/fd/${fd}/${part}` : `${root}/${shown}`, diskRel, false, false);
      closeQuietly(fd);
      fd = next.fd;
    }
    const { dev, ino } = fstatSync(fd); // only the last one's identity is kept
    return new VerifiedDir(fd, diskRel === '' ? root : `${root}/${diskRel}`, { dev, ino });
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

/** How long a held directory descriptor stays open after its last use (it keeps an unmount busy meanwhile). */
const HELD_DIR_IDLE_MS = 1000;
const MAX_HELD_DIRS = 64;

interface HeldDir {
  fd: number;
  identity: DirIdentity;
  users: number;
}

/**
 * Folder directories opened with openFolderDirSync (every component O_NOFOLLOW) and held open for a moment, so that
 * a stream of files into one directory does not open its whole chain twice per file (each component one openat
 * through /proc: 20-40 µs for four levels against 6 µs for the check below). Before each use the held descriptor
 * must still be the directory at its place: its path as the kernel knows it now (readlink of /proc/self/fd/N, built
 * from the dentries up to the root, hence through real directories only) must be the folder root's real path plus
 * `diskRel`. A directory moved, deleted or swapped for a symlink since it was opened fails that check, and its
 * chain is opened again (which refuses the symlink: PATH_UNSAFE). Descriptors close after HELD_DIR_IDLE_MS unused.
 * Linux only (/proc/self/fd); elsewhere every call opens the chain.
 */
export class HeldDirs {
  private readonly held = new Map<string, HeldDir>();
  /** The root's real path (it may be a symlink the user chose), read when the first directory is held. */
  private realRoot: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastUseMs = 0;

  constructor(private readonly root: string) {}

  /** The folder directory at `diskRel` ('' = the root), verified; close() the result when done (it stays held). */
  open(diskRel: string): VerifiedDir {
    if (!PROC_FD) return openFolderDirSync(this.root, diskRel);
    this.lastUseMs = Date.now();
    const known = this.held.get(diskRel);
    if (known && this.stillAt(known.fd, diskRel)) return this.lend(diskRel, known);
    if (known) this.drop(diskRel, known);
    const opened = openFolderDirSync(this.root, diskRel);
    // The root's real path is read after its chain was opened, so that both name the same directory.
    this.realRoot ??= realpathOrUndefined(this.root);
    if (this.held.size >= MAX_HELD_DIRS && !this.evictOne()) return opened; // all busy: this one is the caller's own
    const entry: HeldDir = { fd: opened.fd, identity: opened.identity, users: 0 };
    this.held.set(diskRel, entry);
    this.schedule();
    return this.lend(diskRel, entry);
  }

  /** Closes every held descriptor not in use (and forgets the root's real path). */
  closeIdle(): void {
    for (const [diskRel, entry] of this.held) if (entry.users === 0) this.drop(diskRel, entry);
    if (this.held.size === 0) {
      this.realRoot = undefined;
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Descriptors held now (tests). */
  get size(): number {
    return this.held.size;
  }

  private lend(diskRel: string, entry: HeldDir): VerifiedDir {
    entry.users++;
    return new VerifiedDir(entry.fd, diskRel === '' ? this.root : `${this.root}/${diskRel}`, entry.identity, () => {
      entry.users--;
      // Dropped while lent (evicted, found moved): closed by its last user.
      if (entry.users === 0 && this.held.get(diskRel) !== entry) closeQuietly(entry.fd);
    });
  }

  private stillAt(fd: number, diskRel: string): boolean {
    if (this.realRoot === undefined) return false;
    let now: string;
    try {
      now = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return false;
    }
    const want = diskRel === '' ? this.realRoot : this.realRoot === '/' ? `/${diskRel}` : `${this.realRoot}/${diskRel}`;
    return now === want;
  }

  private drop(diskRel: string, entry: HeldDir): void {
    this.held.delete(diskRel);
    if (entry.users === 0) closeQuietly(entry.fd);
  }

  private evictOne(): boolean {
    for (const [diskRel, entry] of this.held) {
      if (entry.users > 0) continue;
      this.drop(diskRel, entry);
      return true;
    }
    return false;
  }

  private schedule(): void {
    if (this.timer) return;
    const tick = (): void => {
      this.timer = undefined;
      const idleMs = Date.now() - this.lastUseMs;
      if (idleMs >= HELD_DIR_IDLE_MS) this.closeIdle();
      if (this.held.size > 0) {
        this.timer = setTimeout(tick, Math.max(10, HELD_DIR_IDLE_MS - Math.min(idleMs, HELD_DIR_IDLE_MS)));
        this.timer.unref();
      }
    };
    this.timer = setTimeout(tick, HELD_DIR_IDLE_MS);
    this.timer.unref();
  }
}

function realpathOrUndefined(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

/** The folder-relative disk path of a resolved target's directory ('' = the root). */
export function parentOfDiskRel(target: ResolvedTarget): string {
  return target.diskRel.slice(0, target.diskRel.length - target.diskName.length).replace(/\/$/, '');
}
