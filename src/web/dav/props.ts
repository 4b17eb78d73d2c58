// WebDAV dead properties (PROPPATCH), per folder, kept in `.ferry/dav-props.json` inside the folder (Ferry's own
// directory: never synced, never served), so they outlive a restart. Read once per folder, written atomically (temp
// file beside it, renamed) after each change, never through a symlink; bounded in count and in size.

import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { isFerryError } from '../../errors.js';
import { DiskPaths, openFolderDir } from '../../scan/disk-path.js';
import { FERRY_DIR, TEMP_FILE_PREFIX } from '../../scan/ignore.js';
import { closeQuietly, fsyncFd, openFd, READ_NO_FOLLOW, writeFd } from '../../util/fd.js';
import type { Logger } from '../../util/log.js';
import { HttpRefusal } from '../http.js';
import { isAncestor } from './locks.js';

export const PROPS_FILE = 'dav-props.json';
export const MAX_PROP_RESOURCES = 10_000;
/** The stored file's size at most; a change that would pass it is refused (507). */
const MAX_PROPS_FILE_BYTES = 8 * 1024 * 1024;

export interface PropsFolder {
  id: string;
  root: string;
  paths: DiskPaths;
}

type FolderProps = Map<string, Map<string, string>>;

export class DeadProps {
  private readonly byFolder = new Map<string, FolderProps>();
  private readonly loading = new Map<string, Promise<void>>();
  private readonly writing = new Map<string, Promise<void>>();

  constructor(private readonly logger: Logger) {}

  /** Reads the folder's stored properties the first time it is used (a missing or unreadable file: none). */
  load(folder: PropsFolder): Promise<void> {
    let loading = this.loading.get(folder.id);
    if (!loading) {
      loading = this.read(folder).then((props) => void this.byFolder.set(folder.id, props));
      this.loading.set(folder.id, loading);
    }
    return loading;
  }

  private async read(folder: PropsFolder): Promise<FolderProps> {
    const props: FolderProps = new Map();
    try {
      const target = await folder.paths.resolve(`${FERRY_DIR}/${PROPS_FILE}`);
      if (!target.stats?.isFile() || target.stats.size > MAX_PROPS_FILE_BYTES) return props;
      const dir = await openFolderDir(folder.root, FERRY_DIR);
      let fd: number;
      try {
        fd = await openFd(dir.entry(PROPS_FILE), READ_NO_FOLLOW);
      } finally {
        dir.close();
      }
      let text: string;
      try {
        text = readFileSync(fd, 'utf8'); // once per folder per run, at most 8 MiB
      } finally {
        closeQuietly(fd);
      }
      const stored = JSON.parse(text) as { version?: number; props?: Record<string, Record<string, string>> };
      for (const [path, values] of Object.entries(stored.props ?? {})) {
        if (typeof values !== 'object' || values === null || props.size >= MAX_PROP_RESOURCES) continue;
        const map = new Map(Object.entries(values).filter(([k, v]) => typeof k === 'string' && typeof v === 'string'));
        if (map.size) props.set(path, map);
      }
    } catch (err) {
      const missing = isFerryError(err, 'IO') || (err as NodeJS.ErrnoException).code === 'ENOENT';
      if (!missing) this.logger.warn('WebDAV properties unreadable: starting without them', { folder: folder.id, err: err as Error });
    }
    return props;
  }

  of(folderId: string, path: string): Map<string, string> | undefined {
    return this.byFolder.get(folderId)?.get(path);
  }

  private folder(folderId: string): FolderProps {
    let folder = this.byFolder.get(folderId);
    if (!folder) this.byFolder.set(folderId, (folder = new Map()));
    return folder;
  }

  /** Applies set (value) and remove (undefined) operations to one resource, then stores them. */
  async update(folder: PropsFolder, path: string, ops: Array<[key: string, value: string | undefined]>): Promise<void> {
    const all = this.folder(folder.id);
    const before = all.get(path);
    const next = new Map(before ?? []);
    for (const [key, value] of ops) {
      if (value === undefined) next.delete(key);
      else next.set(key, value);
    }
    if (!before && next.size && all.size >= MAX_PROP_RESOURCES) throw new HttpRefusal(507, 'PROPS_FULL', 'too many resources with properties');
    if (next.size) all.set(path, next);
    else all.delete(path);
    if (this.serialise(all).length > MAX_PROPS_FILE_BYTES) {
      if (before) all.set(path, before);
      else all.delete(path);
      throw new HttpRefusal(507, 'PROPS_FULL', 'the folder\'s WebDAV properties are full');
    }
    await this.store(folder);
  }

  /** The resource (and what is under it) is gone: its properties too. */
  async drop(folder: PropsFolder, path: string): Promise<void> {
    const all = this.byFolder.get(folder.id);
    if (!all) return;
    let changed = false;
    for (const key of [...all.keys()]) {
      if (key === path || isAncestor(path, key)) {
        all.delete(key);
        changed = true;
      }
    }
    if (changed) await this.store(folder);
  }

  /** Copied or moved: the properties go along. */
  async copy(folder: PropsFolder, from: string, to: string, move: boolean): Promise<void> {
    const all = this.byFolder.get(folder.id);
    if (!all) return;
    let changed = false;
    for (const [key, props] of [...all.entries()]) {
      if (key !== from && !isAncestor(from, key)) continue;
      if (move) all.delete(key);
      if (all.size < MAX_PROP_RESOURCES) all.set(to + key.slice(from.length), new Map(props));
      changed = true;
    }
    if (changed) await this.store(folder);
  }

  private serialise(all: FolderProps): string {
    const props: Record<string, Record<string, string>> = {};
    for (const [path, values] of all) props[path] = Object.fromEntries(values);
    return JSON.stringify({ version: 1, props });
  }

  /** Writes the folder's properties: one write at a time per folder, each the latest state. */
  private store(folder: PropsFolder): Promise<void> {
    const previous = this.writing.get(folder.id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.write(folder));
    this.writing.set(folder.id, next);
    return next.catch((err: unknown) => this.logger.warn('cannot store WebDAV properties', { folder: folder.id, err: err as Error }));
  }

  private async write(folder: PropsFolder): Promise<void> {
    const text = Buffer.from(this.serialise(this.byFolder.get(folder.id) ?? new Map()));
    folder.paths.forget();
    await folder.paths.resolveParent(`${FERRY_DIR}/${PROPS_FILE}`, { createParents: true });
    const tempName = `${TEMP_FILE_PREFIX}props-${randomBytes(6).toString('hex')}`;
    const dir = await openFolderDir(folder.root, FERRY_DIR);
    let fd = -1;
    let renamed = false;
    try {
      fd = await openFd(dir.entry(tempName), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      for (let at = 0; at < text.length; ) at += (await writeFd(fd, text, at, text.length - at)).bytesWritten;
      await fsyncFd(fd);
      closeQuietly(fd);
      fd = -1;
      const target = await folder.paths.resolve(`${FERRY_DIR}/${PROPS_FILE}`);
      if (target.stats && !target.stats.isFile()) throw new Error(`${FERRY_DIR}/${PROPS_FILE} is not a file`);
      folder.paths.renameWithin(target, tempName, PROPS_FILE);
      renamed = true;
    } finally {
      if (fd >= 0) closeQuietly(fd);
      if (!renamed) await unlink(dir.entry(tempName)).catch(() => undefined);
      dir.close();
    }
  }
}
