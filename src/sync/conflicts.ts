// Current conflicts of a folder (a conflict copy whose original still exists), found from the index, and their resolution.

import { posix } from 'node:path';
import { FerryError } from '../errors.js';
import type { FileRecord } from '../index/records.js';
import type { FolderIndex } from '../index/types.js';
import { checkFolderRelative } from '../scan/disk-path.js';
import type { Logger } from '../util/log.js';
import type { Archive } from './archive.js';
import { DiskPaths } from './paths.js';

/** The last segment of a conflict copy's name, as `conflictPath` (paths.ts) makes it. */
const COPY_NAME = /^(.+)\.conflict-(\d{8})-(\d{6})-([A-Z2-7]+)(?:-\d+)?(\.[^.]*)?$/;

/** Conflict copies tracked per folder: past this many the list says truncated (memory stays bounded). */
export const MAX_TRACKED_COPIES = 100_000;

/** What a conflict copy's name says: the original's path and the device whose version it keeps. */
export function parseConflictPath(path: string): { original: string; device: string } | undefined {
  const slash = path.lastIndexOf('/');
  const match = COPY_NAME.exec(path.slice(slash + 1));
  if (!match) return undefined;
  return { original: `${path.slice(0, slash + 1)}${match[1]}${match[5] ?? ''}`, device: match[4]! };
}

export interface ConflictVersion {
  size: number;
  mtimeMs: number;
  /** Short ID of the device that last wrote this version (the version vector's last writer). */
  device: string;
  /** That device's name, when this device knows it. */
  deviceName?: string;
}

export interface Conflict {
  /** The original's path: the version that won the name. */
  path: string;
  /** The conflict copy's path: the version that lost it. */
  copyPath: string;
  original: ConflictVersion;
  copy: ConflictVersion;
}

export type ConflictKeep = 'original' | 'copy' | 'both';

export interface ConflictResolution {
  path: string;
  copyPath: string;
  keep: ConflictKeep;
  /** Where the losing version went in the archive (keep original or copy). */
  archived?: string;
  /** keep both: the copy's new path. */
  renamedTo?: string;
}

function live(record: FileRecord | undefined): record is FileRecord {
  return record !== undefined && !record.deleted && record.type !== 'dir';
}

/** Paths (keys only) read per turn of the event loop in a full pass; records decoded per turn when catching up. */
const PASS_SLICE = 2_000;
const CATCH_UP_SLICE = 250;
/** Past this many changed records a full pass over the paths (keys only) is cheaper than decoding each record. */
const FULL_PASS_AFTER = 5_000;

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The folder's conflict copies, kept up to date from the index: one pass over the local paths (keys
 * only) at first, then the records changed since (or another pass, when many changed), both in
 * slices that give the event loop its turn. A copy counts as a current conflict while its original
 * also has a live local record.
 */
export class ConflictList {
  private copies = new Set<string>();
  private seenSequence = -1;
  private overflow = false;
  private updating: Promise<void> | null = null;
  private counted: { sequence: number; at: number; count: number } | null = null;
  private closed = false;

  constructor(private readonly index: FolderIndex) {}

  /** Brings the list up to the index's current sequence. */
  update(): Promise<void> {
    this.updating ??= this.runUpdate().finally(() => {
      this.updating = null;
    });
    return this.updating;
  }

  /** Stops a pass under way (at its next turn) and waits for it: the index may close after this. */
  async close(): Promise<void> {
    this.closed = true;
    await this.updating?.catch(() => undefined);
  }

  private async runUpdate(): Promise<void> {
    await nextTurn(); // never on the caller's turn: a status asking for the count is answered at once
    for (;;) {
      if (this.closed) throw new FerryError('CLOSED', 'the folder is closing');
      const now = this.index.localSequence();
      if (now === this.seenSequence) return;
      // An index rebuilt from scratch starts its sequence again: every path is looked at once more.
      if (this.seenSequence < 0 || now < this.seenSequence || now - this.seenSequence > FULL_PASS_AFTER) await this.fullPass();
      else await this.catchUp();
    }
  }

  private async fullPass(): Promise<void> {
    const sequence = this.index.localSequence();
    const found = new Set<string>();
    let overflow = false;
    let seen = 0;
    for (const path of this.index.localPaths()) {
      if (parseConflictPath(path)) {
        if (found.size < MAX_TRACKED_COPIES) found.add(path);
        else overflow = true;
      }
      if (++seen % PASS_SLICE === 0) {
        await nextTurn();
        if (this.closed) return;
      }
    }
    for (const path of found) if (!live(this.index.getLocal(path))) found.delete(path); // tombstones are local paths too
    this.copies = found;
    this.overflow = overflow;
    this.seenSequence = sequence;
  }

  private async catchUp(): Promise<void> {
    const target = this.index.localSequence();
    let seen = 0;
    for (const record of this.index.localSince(this.seenSequence)) {
      const { path } = record;
      if (parseConflictPath(path)) {
        if (live(record)) this.add(path);
        else this.copies.delete(path);
      }
      if (++seen % CATCH_UP_SLICE === 0) {
        await nextTurn();
        if (this.closed) return;
      }
    }
    this.seenSequence = target;
  }

  private add(path: string): void {
    if (this.copies.size >= MAX_TRACKED_COPIES && !this.copies.has(path)) {
      this.overflow = true;
      return;
    }
    this.copies.add(path);
  }

  /** The conflict of one copy, if it is current. */
  get(copyPath: string, names: (shortId: string) => string | undefined = () => undefined): Conflict | undefined {
    const parsed = parseConflictPath(copyPath);
    if (!parsed) return undefined;
    const copy = this.index.getLocal(copyPath);
    const original = this.index.getLocal(parsed.original);
    if (!live(copy) || !live(original)) return undefined;
    const version = (record: FileRecord): ConflictVersion => {
      const name = names(record.modifiedBy);
      return { size: record.size, mtimeMs: record.mtimeMs, device: record.modifiedBy, ...(name ? { deviceName: name } : {}) };
    };
    return { path: parsed.original, copyPath, original: version(original), copy: version(copy) };
  }

  /** Current conflicts, by path, `offset` of them skipped. */
  async list(offset: number, limit: number, names?: (shortId: string) => string | undefined): Promise<{ conflicts: Conflict[]; total: number; truncated: boolean }> {
    await this.update();
    const all: Conflict[] = [];
    for (const copyPath of [...this.copies].sort()) {
      const conflict = this.get(copyPath, names);
      if (conflict) all.push(conflict);
    }
    const conflicts = all.slice(offset, offset + limit);
    return { conflicts, total: all.length, truncated: this.overflow || offset + conflicts.length < all.length };
  }

  /**
   * How many conflicts are current, for status: never waits. Undefined until the first pass is
   * done; an update starts in the background whenever the index has moved.
   */
  count(): number | undefined {
    const now = this.index.localSequence();
    if (now !== this.seenSequence) void this.update().catch(() => undefined); // a closed index: the next status tries again
    if (this.seenSequence < 0) return undefined;
    if (this.counted?.sequence === this.seenSequence && this.counted.at === now) return this.counted.count;
    let count = 0;
    for (const copyPath of this.copies) {
      if (live(this.index.getLocal(parseConflictPath(copyPath)!.original))) count++;
    }
    this.counted = { sequence: this.seenSequence, at: now, count };
    return count;
  }

  /** The copies of an original (a path may have lost more than once). */
  async copiesOf(original: string): Promise<string[]> {
    await this.update();
    return [...this.copies].filter((copy) => parseConflictPath(copy)?.original === original).sort();
  }
}

export interface ResolveContext {
  root: string;
  index: FolderIndex;
  archive: Archive;
  conflicts: ConflictList;
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /** Rescans the paths (the resolution becomes an ordinary local edit that syncs). */
  rescan(paths: string[]): Promise<void>;
  logger: Logger;
}

/** Characters kept out of a default name made from a device name. */
const UNSAFE_NAME = /[\u0000-\u001f\u007f/\\:*?"<>|]/g;

function splitName(path: string): { dir: string; stem: string; ext: string } {
  const slash = path.lastIndexOf('/');
  const dir = slash < 0 ? '' : path.slice(0, slash + 1);
  const name = path.slice(slash + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? { dir, stem: name.slice(0, dot), ext: name.slice(dot) } : { dir, stem: name, ext: '' };
}

/** "keep both" without a name: `report (laptop).txt` beside the original (then `(laptop 2)`, …). */
async function defaultBothName(paths: DiskPaths, index: FolderIndex, conflict: Conflict): Promise<string> {
  const label = (conflict.copy.deviceName ?? '').replace(UNSAFE_NAME, '-').trim().slice(0, 40) || conflict.copy.device;
  const { dir, stem, ext } = splitName(conflict.path);
  for (let n = 1; n < 1000; n++) {
    const candidate = `${dir}${stem} (${label}${n > 1 ? ` ${n}` : ''})${ext}`;
    if (live(index.getLocal(candidate))) continue;
    const at = await paths.resolve(candidate).catch(() => undefined);
    if (!at?.stats) return candidate;
  }
  throw new FerryError('IO', `no free name beside ${conflict.path}`);
}

/**
 * Resolves one conflict, named by its copy's path (or by the original's, when it has one copy):
 * keep the original (the copy goes to the archive), keep the copy (the original goes to the
 * archive and the copy takes its name in one atomic rename), or keep both (the copy is renamed to
 * `name`, or a default). The change is then scanned, so it syncs like any local edit.
 */
export async function resolveConflict(ctx: ResolveContext, path: string, keep: ConflictKeep, name?: string): Promise<ConflictResolution> {
  if (keep !== 'original' && keep !== 'copy' && keep !== 'both') throw new FerryError('USAGE', 'keep is "original", "copy" or "both"');
  let copyPath = path;
  if (!parseConflictPath(path)) {
    const copies = await ctx.conflicts.copiesOf(path);
    if (copies.length > 1) throw new FerryError('USAGE', `${path} has ${copies.length} conflict copies: name the copy (${copies.slice(0, 3).join(', ')})`);
    if (copies.length === 1) copyPath = copies[0]!;
  }
  const conflict = ctx.conflicts.get(copyPath);
  if (!conflict) throw new FerryError('CONFLICT_UNKNOWN', `no current conflict at ${JSON.stringify(path)}`);
  if (name !== undefined) {
    if (keep !== 'both') throw new FerryError('USAGE', 'a new name is given only with keep both');
    name = name.replace(/^\/+|\/+$/g, '');
    if (!name.includes('/')) name = `${splitName(conflict.path).dir}${name}`;
    try {
      checkFolderRelative(name);
    } catch {
      throw new FerryError('USAGE', `cannot name the copy ${JSON.stringify(name)}`);
    }
    if (name.split('/')[0] === '.ferry') throw new FerryError('USAGE', 'the copy cannot go into .ferry/');
  }
  const paths = new DiskPaths(ctx.root);
  const result: ConflictResolution = { path: conflict.path, copyPath, keep };
  await ctx.exclusive(async () => {
    const copy = await paths.resolve(copyPath);
    const original = await paths.resolve(conflict.path);
    if (!copy.stats?.isFile() && !copy.stats?.isSymbolicLink()) throw new FerryError('CONFLICT_UNKNOWN', `${copyPath} is no longer on disk`);
    if (!original.stats || original.stats.isDirectory()) throw new FerryError('CONFLICT_UNKNOWN', `${conflict.path} is no longer on disk`);
    if (keep === 'original') {
      result.archived = (await ctx.archive.keep(copy.diskRel)) ?? undefined;
    } else if (keep === 'copy') {
      // The original stays at its name until the copy replaces it: a hard link keeps it in the archive.
      const linked = await ctx.archive.keepLinked(original.diskRel);
      if (linked !== null) {
        result.archived = linked;
      } else {
        result.archived = (await ctx.archive.keep(original.diskRel)) ?? undefined;
      }
      paths.renameBetween(copy, await paths.resolve(conflict.path));
    } else {
      const target = name ?? (await defaultBothName(paths, ctx.index, conflict));
      const destination = await paths.resolve(target, { createParents: true });
      if (destination.stats || live(ctx.index.getLocal(target))) throw new FerryError('USAGE', `${target} already exists`);
      paths.renameBetween(copy, destination);
      result.renamedTo = target;
    }
  });
  ctx.logger.info('conflict resolved', { path: conflict.path, copy: copyPath, keep, ...(result.renamedTo ? { as: result.renamedTo } : {}) });
  const scan = [conflict.path, copyPath, ...(result.renamedTo ? [result.renamedTo] : [])].map((p) => posix.dirname(p)).map((d) => (d === '.' ? '' : d));
  await ctx.rescan([...new Set(scan)]);
  return result;
}
