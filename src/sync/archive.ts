// The folder's archive (.ferry/archive/): deleted and replaced files are moved here, kept N days, restorable.

import { mkdir, readdir, rename, rm, rmdir, lstat } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { FerryError, ioError } from '../errors.js';
import type { Logger } from '../util/log.js';

export const ARCHIVE_DIR = '.ferry/archive';
const STAMP = /~(\d{8}-\d{6}-\d{3})(?:-(\d+))?$/;

export interface ArchivedFile {
  /** Where it lived in the folder. */
  path: string;
  /** Its name inside the archive, relative to the archive root. */
  archivePath: string;
  archivedAtMs: number;
  size: number;
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

export class Archive {
  readonly root: string;

  constructor(private readonly folderRoot: string, private readonly logger: Logger, private readonly now: () => number = Date.now) {
    this.root = join(folderRoot, ARCHIVE_DIR);
  }

  /**
   * Moves the file at `relPath` into the archive (a rename: same filesystem, atomic).
   * Returns its archive path, or null when there was nothing to archive.
   */
  async keep(relPath: string): Promise<string | null> {
    const source = join(this.folderRoot, relPath);
    try {
      await lstat(source);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw ioError(`cannot archive ${relPath}`, err);
    }
    const base = `${relPath}~${stamp(this.now())}`;
    for (let n = 0; n < 1000; n++) {
      const archivePath = n === 0 ? base : `${base}-${n}`;
      const target = join(this.root, archivePath);
      try {
        await mkdir(dirname(target), { recursive: true });
        await lstat(target).then(
          () => {
            throw Object.assign(new Error('exists'), { code: 'EEXIST' });
          },
          (err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw err;
          },
        );
        await rename(source, target);
        this.logger.debug('archived', { path: relPath, as: archivePath });
        return archivePath;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw ioError(`cannot archive ${relPath}`, err);
      }
    }
    throw new FerryError('IO', `cannot archive ${relPath}: too many versions archived at the same moment`);
  }

  /** Every archived file, walking the archive one directory at a time. */
  async *list(): AsyncGenerator<ArchivedFile> {
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
        const match = STAMP.exec(entry.name);
        if (match && !entry.isDirectory()) {
          const info = await lstat(join(this.root, archivePath));
          yield {
            path: archivePath.slice(0, archivePath.length - match[0].length),
            archivePath,
            archivedAtMs: parseStamp(match[1]!),
            size: info.size,
          };
        } else if (entry.isDirectory()) pending.push(archivePath);
      }
    }
  }

  /** Puts an archived file back at its path (or `toPath`); what is there now is archived first. */
  async restore(archivePath: string, toPath?: string): Promise<string> {
    const match = STAMP.exec(archivePath);
    if (!match || archivePath.split('/').includes('..') || archivePath.startsWith('/')) {
      throw new FerryError('USAGE', `not an archived file: ${archivePath}`);
    }
    const target = toPath ?? archivePath.slice(0, archivePath.length - match[0].length);
    await this.keep(target);
    await mkdir(dirname(join(this.folderRoot, target)), { recursive: true });
    try {
      await rename(join(this.root, archivePath), join(this.folderRoot, target));
    } catch (err) {
      throw ioError(`cannot restore ${archivePath}`, err);
    }
    await this.pruneEmptyDirs(dirname(archivePath));
    return target;
  }

  /** Deletes archived files older than `maxAgeDays`; returns how many went. */
  async purge(maxAgeDays: number): Promise<number> {
    const cutoff = this.now() - maxAgeDays * 86_400_000;
    let purged = 0;
    // list() reads a directory whole before yielding from it, so deleting as we go is safe.
    for await (const file of this.list()) {
      if (file.archivedAtMs >= cutoff) continue;
      await rm(join(this.root, file.archivePath), { force: true });
      await this.pruneEmptyDirs(dirname(file.archivePath));
      purged++;
    }
    if (purged) this.logger.info('purged archive', { files: purged, olderThanDays: maxAgeDays });
    return purged;
  }

  private async pruneEmptyDirs(dir: string): Promise<void> {
    for (let current = dir; current && current !== '.'; current = posix.dirname(current)) {
      try {
        await rmdir(join(this.root, current));
      } catch {
        return; // not empty (or gone): stop climbing
      }
    }
  }
}
