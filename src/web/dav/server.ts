// The WebDAV share (RFC 4918, classes 1 and 2) of every folder at /dav/<folderId>/ on the web listener.
// Every read and write goes through the folder's DiskPaths (never through a symlink, never outside the
// folder, never into .ferry); deletions and overwritten files go to the archive; each change is a local
// edit the folder rescans. A small server of our own: see docs/webdav.md for why not a library.

import { constants, createReadStream, createWriteStream, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { lstat, opendir, rmdir, stat, unlink } from 'node:fs/promises';
import { basename, extname, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Koa from 'koa';
import type { Element } from '@xmldom/xmldom';
import ZipStream, { type ZipEntryData } from 'zip-stream';
import { isDiskFull, isFerryError } from '../../errors.js';
import { DiskPaths, openFolderDir, parentOfDiskRel, type ResolvedTarget } from '../../scan/disk-path.js';
import { FERRY_DIR, TEMP_FILE_PREFIX } from '../../scan/ignore.js';
import { Archive } from '../../sync/archive.js';
import { closeQuietly, fsyncFd, openFd, READ_NO_FOLLOW } from '../../util/fd.js';
import type { Logger } from '../../util/log.js';
import type { AppPasswordAccess } from '../app-passwords.js';
import type { LocalFolderHandle } from '../daemon-api.js';
import { HttpRefusal } from '../http.js';
import { DAV_PREFIX } from './prefix.js';
import { isAncestor, LockTable, parseIfHeader, parseTimeout, type DavLock, type IfList } from './locks.js';
import type { DirectoryEntry, DirectoryPage } from './types.js';
import { DeadProps, type PropsFolder } from './props.js';
import {
  DAV_NS, davChild, elementChildren, emptyProp, escapeXml, isDav, parseXmlBody, propKey, readBoundedBody, serializeElement, XML_HEAD,
} from './xml.js';

export { DAV_PREFIX };
const ALLOW = 'OPTIONS, GET, HEAD, PUT, DELETE, PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK, UNLOCK';
const WRITE_METHODS = new Set(['PUT', 'DELETE', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK']);
/** Dead properties kept per folder (in memory), per resource, and the size of one value. */
const MAX_PROPS_PER_RESOURCE = 64;
const MAX_PROP_VALUE_CHARS = 16 * 1024;
const LIVE_PROPS = ['resourcetype', 'getcontentlength', 'getlastmodified', 'creationdate', 'getetag', 'getcontenttype', 'displayname', 'supportedlock', 'lockdiscovery'];
const PROTECTED_LIVE = new Set(LIVE_PROPS.filter((p) => p !== 'displayname').map((p) => `{${DAV_NS}}${p}`));

function refuse(status: number, code: string, message: string, headers: Record<string, string> = {}): HttpRefusal {
  return new HttpRefusal(status, code, message, headers);
}

/** Names one directory listing reads at most (the file browser pages through them). */
const MAX_LISTED = 100_000;

export interface DavServerOptions {
  folders: () => LocalFolderHandle[];
  logger: Logger;
}

interface Folder {
  handle: LocalFolderHandle;
  /** How the request named it (its ID or its name): hrefs are written the same way. */
  key: string;
  paths: DiskPaths;
  archive: Archive;
}

/** A request's resource: the folder, the folder-relative path ('' = the folder) and what is there. */
interface Resource {
  folder: Folder;
  path: string;
  target?: ResolvedTarget;
  stats?: Stats;
}

/** A path segment refused whatever the folder holds. */
function checkSegment(segment: string): void {
  if (segment === '' || segment === '.' || segment === '..' || /[\\/\0]/.test(segment)) {
    throw refuse(400, 'PATH_REFUSED', 'the path leaves the folder or holds a forbidden character');
  }
  // Encoded once more (…%2e%2e…, %2f, %5c, %00): a client trying a second decode somewhere; refused.
  if (/%(2e|2f|5c|00|25)/i.test(segment)) throw refuse(400, 'PATH_REFUSED', 'doubly encoded characters in the path are refused');
}

/** Splits a raw request path under /dav/ into its decoded segments (400 for anything that could leave the folder). */
export function davSegments(rawPath: string): { segments: string[]; collection: boolean } {
  if (!rawPath.startsWith(`${DAV_PREFIX}/`) && rawPath !== DAV_PREFIX) throw refuse(404, 'NOT_DAV', 'not a WebDAV path');
  const rest = rawPath.slice(DAV_PREFIX.length + 1);
  if (/\\|%5c/i.test(rest)) throw refuse(400, 'PATH_REFUSED', 'backslashes are refused in WebDAV paths');
  const collection = rest === '' || rest.endsWith('/');
  const parts = rest === '' ? [] : rest.replace(/\/$/, '').split('/');
  const segments = parts.map((part) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(part);
    } catch {
      throw refuse(400, 'PATH_REFUSED', 'the path is not valid percent-encoded UTF-8');
    }
    checkSegment(decoded);
    return decoded.normalize('NFC');
  });
  return { segments, collection };
}

function encodePath(path: string): string {
  return path === '' ? '' : path.split('/').map(encodeURIComponent).join('/');
}

export function etagOf(stats: Stats): string {
  const mtimeUs = Math.floor(stats.mtimeMs * 1000);
  return `"${stats.ino.toString(36)}-${stats.size.toString(36)}-${mtimeUs.toString(36)}"`;
}

function contentTypeOf(name: string): string {
  const types: Record<string, string> = {
    '.txt': 'text/plain', '.html': 'text/html', '.htm': 'text/html', '.css': 'text/css', '.js': 'text/javascript', '.json': 'application/json',
    '.xml': 'application/xml', '.pdf': 'application/pdf', '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif',
    '.svg': 'image/svg+xml', '.webp': 'image/webp', '.mp4': 'video/mp4', '.webm': 'video/webm', '.mkv': 'video/x-matroska', '.mp3': 'audio/mpeg',
    '.ogg': 'audio/ogg', '.flac': 'audio/flac', '.zip': 'application/zip', '.md': 'text/markdown',
  };
  return types[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

function parentOf(path: string): string {
  const at = path.lastIndexOf('/');
  return at < 0 ? '' : path.slice(0, at);
}

function isMissing(err: unknown): boolean {
  if (isFerryError(err, 'IO')) return (err.cause as { code?: string } | undefined)?.code === 'ENOENT';
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export class DavServer {
  private readonly locks = new LockTable();
  private readonly props: DeadProps;
  private readonly paths = new Map<string, { paths: DiskPaths; archive: Archive }>();

  constructor(private readonly options: DavServerOptions) {
    this.props = new DeadProps(options.logger.child('props'));
  }

  private propsFolder(folder: Folder): PropsFolder {
    return { id: folder.handle.id, root: folder.handle.path, paths: folder.paths };
  }

  /** Koa handler for everything under /dav (the caller has checked the credentials). */
  async handle(ctx: Koa.Context, access: AppPasswordAccess): Promise<void> {
    const rawPath = (ctx.req.url ?? '/').split('?')[0]!;
    // A fragment never belongs in a request: refused rather than cut off (DELETE /dir/#x must not delete /dir/).
    if (rawPath.includes('#')) throw refuse(400, 'PATH_REFUSED', 'a request path with a fragment (#) is refused');
    const method = ctx.method.toUpperCase();
    const { segments } = davSegments(rawPath);
    ctx.set('DAV', '1, 2');
    if (segments.length === 0) {
      await this.serveTop(ctx, method, access);
      return;
    }
    const folder = this.folder(segments[0]!, access);
    const path = segments.slice(1).join('/');
    if (path === FERRY_DIR || path.startsWith(`${FERRY_DIR}/`) || segments.slice(1).some((s) => s.startsWith(TEMP_FILE_PREFIX))) {
      throw refuse(403, 'PATH_REFUSED', "Ferry's own files are not served");
    }
    if (WRITE_METHODS.has(method) && method !== 'UNLOCK') {
      if (access.readOnly) throw refuse(403, 'READ_ONLY', 'this app password is read-only');
      if (folder.handle.access !== 'rw') throw refuse(403, 'READ_ONLY', 'this device holds the folder read-only: its files cannot be changed here');
    }
    folder.paths.forget();
    await this.props.load(this.propsFolder(folder));
    const resource = await this.resource(folder, path);
    try {
      switch (method) {
        case 'OPTIONS':
          ctx.set('Allow', ALLOW);
          ctx.set('MS-Author-Via', 'DAV');
          ctx.body = '';
          ctx.status = 200;
          return;
        case 'GET':
        case 'HEAD':
          return await this.get(ctx, resource);
        case 'PUT':
          return await this.put(ctx, resource, access);
        case 'DELETE':
          return await this.delete(ctx, resource, access);
        case 'MKCOL':
          return await this.mkcol(ctx, resource, access);
        case 'COPY':
        case 'MOVE':
          return await this.copyMove(ctx, resource, access, method === 'MOVE');
        case 'PROPFIND':
          return await this.propfind(ctx, resource, rawPath);
        case 'PROPPATCH':
          return await this.proppatch(ctx, resource, access, rawPath);
        case 'LOCK':
          return await this.lock(ctx, resource, access, rawPath);
        case 'UNLOCK':
          return this.unlock(ctx, resource, access);
        default:
          ctx.set('Allow', ALLOW);
          throw refuse(405, 'METHOD', `${method.slice(0, 20)} is not supported here`);
      }
    } catch (err) {
      throw this.mapError(err);
    }
  }

  private mapError(err: unknown): unknown {
    if (err instanceof HttpRefusal) return err;
    if (isFerryError(err, 'PATH_UNSAFE')) return refuse(403, 'PATH_REFUSED', err.message);
    if (isDiskFull(err) || isFerryError(err, 'DISK_FULL')) return refuse(507, 'DISK_FULL', 'the disk is full');
    if (isMissing(err)) return refuse(409, 'CONFLICT', 'a directory on the way is missing');
    return err;
  }

  /** The folder a request names, by ID or by its directory's name (when that is unique). */
  private folder(key: string, access: AppPasswordAccess): Folder {
    const all = this.options.folders();
    let handle = all.find((f) => f.id === key.toLowerCase());
    if (!handle) {
      const named = all.filter((f) => basename(f.path) === key);
      if (named.length === 1) handle = named[0];
    }
    if (!handle) throw refuse(404, 'FOLDER_UNKNOWN', 'no such folder');
    if (access.folder && access.folder !== handle.id) throw refuse(403, 'NOT_ALLOWED', 'this app password opens another folder');
    if (handle.access === 'enc') {
      throw refuse(403, 'ENCRYPTED', 'this device holds the folder encrypted (ENC key): it cannot read its files, so it cannot serve them');
    }
    let kept = this.paths.get(handle.id);
    if (!kept || kept.paths.root !== handle.path) {
      kept = { paths: new DiskPaths(handle.path), archive: new Archive(handle.path, this.options.logger.child('archive')) };
      this.paths.set(handle.id, kept);
    }
    return { handle, key, ...kept };
  }

  private async resource(folder: Folder, path: string): Promise<Resource> {
    if (path === '') {
      // The folder's root may be a symlink the user chose (as openFolderDir allows): followed here only.
      const stats = await stat(folder.handle.path);
      return { folder, path, stats };
    }
    let target: ResolvedTarget | undefined;
    try {
      target = await folder.paths.resolve(path);
    } catch (err) {
      if (isMissing(err) || isFerryError(err, 'IO')) return { folder, path };
      throw this.mapError(err);
    }
    if (target.stats?.isSymbolicLink()) throw refuse(403, 'SYMLINK', 'symlinks are not served');
    return { folder, path, target, ...(target.stats ? { stats: target.stats } : {}) };
  }

  private href(folder: Folder, path: string, collection: boolean): string {
    const encoded = encodePath(path);
    return `${DAV_PREFIX}/${encodeURIComponent(folder.key)}/${encoded}${collection && encoded !== '' ? '/' : ''}`;
  }

  private scan(folder: Folder, path: string): void {
    void folder.handle.requestScan(path).catch((err: unknown) => this.options.logger.warn('rescan after a WebDAV change failed', { err: err as Error }));
  }

  /**
   * One page of a directory for the file browser: directories first, then files, by name. Only this
   * directory's names are held (never a tree); at most MAX_LISTED names are read.
   */
  async list(folderKey: string, path: string, offset: number, limit: number, access: AppPasswordAccess): Promise<DirectoryPage> {
    const segments = path === '' ? [] : path.split('/');
    for (const segment of segments) checkSegment(segment);
    const rel = segments.map((s) => s.normalize('NFC')).join('/');
    if (rel === FERRY_DIR || rel.startsWith(`${FERRY_DIR}/`)) throw refuse(403, 'PATH_REFUSED', "Ferry's own files are not shown");
    const folder = this.folder(folderKey, access);
    folder.paths.forget();
    const resource = await this.resource(folder, rel);
    if (!resource.stats) throw refuse(404, 'NOT_FOUND', 'no such directory');
    if (!resource.stats.isDirectory()) throw refuse(400, 'NOT_DIRECTORY', 'not a directory');
    const dir = await openFolderDir(folder.handle.path, rel === '' ? '' : resource.target!.diskRel);
    const entries: DirectoryEntry[] = [];
    let truncated = false;
    try {
      for await (const entry of await opendir(dir.base, { bufferSize: 64 })) {
        const name = entry.name;
        if (name.startsWith(TEMP_FILE_PREFIX) || (rel === '' && name === FERRY_DIR)) continue;
        if (entries.length >= MAX_LISTED) {
          truncated = true;
          break;
        }
        const stats = await lstat(dir.entry(name)).catch(() => undefined);
        if (!stats || stats.isSymbolicLink() || !(stats.isFile() || stats.isDirectory())) continue;
        entries.push({ name: name.normalize('NFC'), dir: stats.isDirectory(), size: stats.isDirectory() ? 0 : stats.size, mtimeMs: Math.floor(stats.mtimeMs) });
      }
    } finally {
      dir.close();
    }
    entries.sort((a, b) => Number(b.dir) - Number(a.dir) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      folderId: folder.handle.id,
      path: rel,
      writable: folder.handle.access === 'rw' && !access.readOnly,
      total: entries.length,
      offset,
      truncated,
      entries: entries.slice(offset, offset + limit),
    };
  }

  /**
   * A directory as a zip stream (deflate level 1: quick on a small ARM box): one directory's names
   * and one file's descriptor open at a time, each file read through DiskPaths without following
   * symlinks (symlinks are left out). The stream errors if the walk fails midway.
   */
  async zip(folderKey: string, path: string, access: AppPasswordAccess): Promise<{ filename: string; stream: Readable }> {
    const segments = path === '' ? [] : path.split('/');
    for (const segment of segments) checkSegment(segment);
    const rel = segments.map((s) => s.normalize('NFC')).join('/');
    if (rel === FERRY_DIR || rel.startsWith(`${FERRY_DIR}/`)) throw refuse(403, 'PATH_REFUSED', "Ferry's own files are not served");
    const folder = this.folder(folderKey, access);
    folder.paths.forget();
    const top = await this.resource(folder, rel);
    if (!top.stats?.isDirectory()) throw refuse(404, 'NOT_FOUND', 'no such directory');
    const zip = new ZipStream({ zlib: { level: 1 } });
    const add = (source: NodeJS.ReadableStream | null, data: ZipEntryData): Promise<void> =>
      new Promise((ok, fail) => zip.entry(source, data, (err) => (err ? fail(err) : ok())));
    const inside = (p: string): string => (rel === '' ? p : p.slice(rel.length + 1));
    const walk = async (): Promise<void> => {
      const pending = [rel];
      while (pending.length > 0) {
        const dirRel = pending.pop()!;
        folder.paths.forget();
        const at = await this.resource(folder, dirRel);
        if (!at.stats?.isDirectory()) continue;
        if (dirRel !== rel) await add(null, { name: `${inside(dirRel)}/`, type: 'directory', date: at.stats.mtime });
        const dir = await openFolderDir(folder.handle.path, dirRel === '' ? '' : at.target!.diskRel);
        const names: string[] = [];
        try {
          for await (const entry of await opendir(dir.base, { bufferSize: 64 })) {
            if (entry.name.startsWith(TEMP_FILE_PREFIX) || (dirRel === '' && entry.name === FERRY_DIR)) continue;
            names.push(entry.name.normalize('NFC'));
          }
        } finally {
          dir.close();
        }
        names.sort();
        const subdirs: string[] = [];
        for (const name of names) {
          const child = dirRel === '' ? name : `${dirRel}/${name}`;
          const resource = await this.resource(folder, child).catch(() => undefined);
          if (!resource?.stats) continue;
          if (resource.stats.isDirectory()) subdirs.push(child);
          else if (resource.stats.isFile()) {
            const fd = await this.openForRead(resource);
            await add(createReadStream('', { fd, autoClose: true }), { name: inside(child), date: resource.stats.mtime });
          }
        }
        pending.push(...subdirs.reverse());
      }
      zip.finalize();
    };
    walk().catch((err: unknown) => {
      this.options.logger.warn('zip download stopped', { err: err as Error });
      zip.destroy(err as Error);
    });
    const name = rel === '' ? basename(folder.handle.path) : posix.basename(rel);
    return { filename: `${name || 'folder'}.zip`, stream: zip };
  }

  // --- the list of folders at /dav/ ---

  private async serveTop(ctx: Koa.Context, method: string, access: AppPasswordAccess): Promise<void> {
    if (method === 'OPTIONS') {
      ctx.set('Allow', 'OPTIONS, PROPFIND');
      ctx.body = '';
      return;
    }
    if (method !== 'PROPFIND') throw refuse(405, 'METHOD', 'the list of folders is read with PROPFIND');
    const depth = ctx.get('depth') || 'infinity';
    if (depth !== '0' && depth !== '1') throw refuse(403, 'DEPTH', 'PROPFIND with Depth: infinity is refused');
    await readBoundedBody(ctx.req);
    const parts = [`<D:response><D:href>${DAV_PREFIX}/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`];
    if (depth === '1') {
      for (const f of this.options.folders()) {
        if (f.access === 'enc' || (access.folder && access.folder !== f.id)) continue;
        parts.push(`<D:response><D:href>${DAV_PREFIX}/${f.id}/</D:href><D:propstat><D:prop><D:resourcetype><D:collection/></D:resourcetype>` +
          `<D:displayname>${escapeXml(basename(f.path))}</D:displayname></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`);
      }
    }
    this.multistatus(ctx, parts.join(''));
  }

  private multistatus(ctx: Koa.Context, inner: string | Readable): void {
    ctx.type = 'application/xml; charset=utf-8';
    if (typeof inner === 'string') ctx.body = `${XML_HEAD}<D:multistatus xmlns:D="DAV:">${inner}</D:multistatus>\n`;
    else ctx.body = inner;
    ctx.status = 207;
  }

  // --- conditions and locks ---

  /** The lock tokens this request submits (If header) that belong to its app password. */
  private submitted(lists: IfList[] | undefined, access: AppPasswordAccess): Set<string> {
    const tokens = new Set<string>();
    for (const list of lists ?? []) {
      for (const c of list.conditions) {
        if (c.token && !c.not && this.locks.get(c.token)?.user === access.name) tokens.add(c.token);
      }
    }
    return tokens;
  }

  /** Evaluates the If header (412 when false) and returns the parsed lists. */
  private async checkIf(ctx: Koa.Context, resource: Resource): Promise<IfList[] | undefined> {
    const header = ctx.get('if');
    if (!header) return undefined;
    const lists = parseIfHeader(header);
    if (!lists) throw refuse(400, 'BAD_IF', 'the If header is malformed');
    for (const list of lists) {
      let subject: Resource | undefined = resource;
      if (list.resource !== undefined) subject = await this.taggedResource(ctx, resource.folder, list.resource);
      if (subject && this.listHolds(list, subject)) return lists;
    }
    throw refuse(412, 'PRECONDITION', 'the If header does not hold');
  }

  private async taggedResource(ctx: Koa.Context, folder: Folder, url: string): Promise<Resource | undefined> {
    let path: string;
    try {
      path = new URL(url, `http://${ctx.get('host') || 'localhost'}`).pathname;
    } catch {
      return undefined;
    }
    let segments: string[];
    try {
      segments = davSegments(path).segments;
    } catch {
      return undefined;
    }
    if (segments.length === 0 || (segments[0] !== folder.key && segments[0]!.toLowerCase() !== folder.handle.id)) return undefined;
    return this.resource(folder, segments.slice(1).join('/'));
  }

  private listHolds(list: IfList, subject: Resource): boolean {
    return list.conditions.every((c) => {
      let holds: boolean;
      if (c.token !== undefined) {
        holds = this.locks.covering(subject.folder.handle.id, subject.path).some((l) => l.token === c.token);
      } else {
        const etag = subject.stats ? etagOf(subject.stats) : undefined;
        holds = etag !== undefined && (c.etag === etag || c.etag === `W/${etag}`);
      }
      return c.not ? !holds : holds;
    });
  }

  /**
   * Refuses (423) a change to `path` while a lock applies that this request does not submit:
   * locks on it or above it, on its parent when `member` (it appears or goes), below it when `deep`.
   */
  private checkLocks(folder: Folder, path: string, tokens: Set<string>, options: { member?: boolean; deep?: boolean } = {}): void {
    const id = folder.handle.id;
    const applying: DavLock[] = [...this.locks.covering(id, path)];
    if (options.member && path !== '') applying.push(...this.locks.covering(id, parentOf(path)));
    if (options.deep) applying.push(...this.locks.below(id, path));
    const missing = applying.find((l) => !tokens.has(l.token));
    if (missing) {
      throw refuse(423, 'LOCKED', 'the resource is locked', {});
    }
  }

  // --- methods ---

  private async get(ctx: Koa.Context, resource: Resource): Promise<void> {
    const { stats } = resource;
    if (!stats) throw refuse(404, 'NOT_FOUND', 'not found');
    await this.checkIf(ctx, resource);
    if (stats.isDirectory()) {
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'a WebDAV collection: list it with PROPFIND (a WebDAV client), or browse it in the Ferry page\n';
      return;
    }
    const etag = etagOf(stats);
    ctx.set('ETag', etag);
    ctx.set('Last-Modified', stats.mtime.toUTCString());
    ctx.set('Accept-Ranges', 'bytes');
    const ifNoneMatch = ctx.get('if-none-match');
    if (ifNoneMatch && (ifNoneMatch === '*' || ifNoneMatch.split(',').map((s) => s.trim()).includes(etag))) {
      ctx.status = 304;
      return;
    }
    const ifMatch = ctx.get('if-match');
    if (ifMatch && ifMatch !== '*' && !ifMatch.split(',').map((s) => s.trim()).includes(etag)) throw refuse(412, 'PRECONDITION', 'If-Match does not hold');
    let start = 0;
    let end = stats.size - 1;
    let partial = false;
    const range = ctx.get('range');
    const ifRange = ctx.get('if-range');
    if (range && (!ifRange || ifRange === etag)) {
      const match = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      if (match && (match[1] !== '' || match[2] !== '')) {
        if (match[1] === '') {
          start = Math.max(0, stats.size - Number(match[2]));
        } else {
          start = Number(match[1]);
          if (match[2] !== '') end = Math.min(end, Number(match[2]));
        }
        if (start >= stats.size || start > end) {
          throw refuse(416, 'RANGE', 'the range is not satisfiable', { 'Content-Range': `bytes */${stats.size}` });
        }
        partial = true;
      }
    }
    ctx.type = contentTypeOf(resource.path);
    if (partial) {
      ctx.set('Content-Range', `bytes ${start}-${end}/${stats.size}`);
    }
    if (ctx.method === 'HEAD') {
      ctx.body = '';
      ctx.length = end - start + 1;
      ctx.status = partial ? 206 : 200;
      return;
    }
    const fd = await this.openForRead(resource);
    ctx.body = stats.size === 0 ? '' : createReadStream('', { fd, start, end, autoClose: true });
    if (stats.size === 0) closeQuietly(fd);
    ctx.length = stats.size === 0 ? 0 : end - start + 1;
    ctx.status = partial ? 206 : 200;
  }

  /** The resource's file opened for reading through its directory held open without following symlinks. */
  private async openForRead(resource: Resource): Promise<number> {
    const target = resource.target!;
    const dir = await openFolderDir(resource.folder.handle.path, parentOfDiskRel(target));
    try {
      return await openFd(dir.entry(target.diskName), READ_NO_FOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw refuse(403, 'SYMLINK', 'symlinks are not served');
      throw err;
    } finally {
      dir.close();
    }
  }

  /** Streams `source` into a temp file beside `path` (its directory must exist), then renames it into place. */
  private async writeFile(folder: Folder, path: string, source: NodeJS.ReadableStream): Promise<{ created: boolean; stats: Stats }> {
    const { paths, archive } = folder;
    const parent = await paths.resolveParent(path);
    const dir = await openFolderDir(folder.handle.path, parentRelOf(parent.diskRelParent));
    const tempName = `${TEMP_FILE_PREFIX}dav-${randomBytes(8).toString('hex')}`;
    let fd: number;
    try {
      fd = await openFd(dir.entry(tempName), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    } finally {
      dir.close();
    }
    const tempAbs = `${parent.parentAbs}/${tempName}`;
    let done = false;
    try {
      const out = createWriteStream('', { fd, autoClose: false });
      await pipeline(source, out);
      await fsyncFd(fd);
      closeQuietly(fd);
      fd = -1;
      paths.forget();
      const target = await paths.resolve(path);
      if (target.stats?.isDirectory()) throw refuse(405, 'IS_COLLECTION', 'a collection is there');
      const created = !target.stats;
      if (target.stats) await archive.keep(path);
      paths.forget();
      const place = await paths.resolve(path);
      const stats = paths.renameWithin(place, tempName, place.diskName);
      paths.adopt(place.abs);
      done = true;
      return { created, stats };
    } finally {
      if (fd >= 0) closeQuietly(fd);
      if (!done) await unlink(tempAbs).catch(() => undefined);
    }
  }

  private async put(ctx: Koa.Context, resource: Resource, access: AppPasswordAccess): Promise<void> {
    const lists = await this.checkIf(ctx, resource);
    if (resource.path === '') throw refuse(405, 'IS_COLLECTION', 'the folder itself cannot be replaced');
    if (resource.stats?.isDirectory()) throw refuse(405, 'IS_COLLECTION', 'a collection is there');
    if (ctx.get('content-range')) throw refuse(400, 'RANGE', 'partial PUT (Content-Range) is not supported');
    const etag = resource.stats ? etagOf(resource.stats) : undefined;
    const ifMatch = ctx.get('if-match');
    if (ifMatch && (!etag || (ifMatch !== '*' && !ifMatch.split(',').map((s) => s.trim()).includes(etag)))) throw refuse(412, 'PRECONDITION', 'If-Match does not hold');
    if (ctx.get('if-none-match') === '*' && resource.stats) throw refuse(412, 'PRECONDITION', 'the resource exists');
    this.checkLocks(resource.folder, resource.path, this.submitted(lists, access), { member: !resource.stats });
    const { created, stats } = await this.writeFile(resource.folder, resource.path, ctx.req);
    this.scan(resource.folder, parentOf(resource.path));
    ctx.set('ETag', etagOf(stats));
    ctx.body = '';
    ctx.status = created ? 201 : 204;
  }

  /** Moves a file or a whole tree to the archive (files kept, directories removed when empty). */
  private async removeTree(folder: Folder, path: string): Promise<void> {
    const { paths, archive } = folder;
    paths.forget();
    const target = await paths.resolve(path);
    if (!target.stats) return;
    if (!target.stats.isDirectory()) {
      await archive.keep(path);
      return;
    }
    const dir = await openFolderDir(folder.handle.path, target.diskRel);
    const names: string[] = [];
    try {
      for await (const entry of await opendir(dir.base)) names.push(entry.name);
    } finally {
      dir.close();
    }
    for (const name of names) {
      if (name.startsWith(TEMP_FILE_PREFIX)) {
        await unlink(`${target.abs}/${name}`).catch(() => undefined);
        continue;
      }
      await this.removeTree(folder, `${path}/${name.normalize('NFC')}`);
    }
    paths.forget();
    const again = await paths.resolve(path);
    if (again.stats?.isDirectory()) await rmdir(again.abs);
    paths.noteRemoved(again.parentAbs, again.diskName);
  }

  private async delete(ctx: Koa.Context, resource: Resource, access: AppPasswordAccess): Promise<void> {
    const lists = await this.checkIf(ctx, resource);
    if (!resource.stats) throw refuse(404, 'NOT_FOUND', 'not found');
    if (resource.path === '') throw refuse(403, 'FOLDER_ROOT', 'the folder itself cannot be deleted over WebDAV');
    const depth = ctx.get('depth');
    if (resource.stats.isDirectory() && depth && depth.toLowerCase() !== 'infinity') throw refuse(400, 'DEPTH', 'DELETE of a collection is Depth: infinity');
    this.checkLocks(resource.folder, resource.path, this.submitted(lists, access), { member: true, deep: true });
    await this.removeTree(resource.folder, resource.path);
    this.locks.removeAt(resource.folder.handle.id, resource.path);
    await this.props.drop(this.propsFolder(resource.folder), resource.path);
    this.scan(resource.folder, parentOf(resource.path));
    ctx.body = '';
    ctx.status = 204;
  }

  private async mkcol(ctx: Koa.Context, resource: Resource, access: AppPasswordAccess): Promise<void> {
    const lists = await this.checkIf(ctx, resource);
    const body = await readBoundedBody(ctx.req, 64 * 1024);
    if (body.length > 0) throw refuse(415, 'BODY', 'MKCOL with a body is not supported');
    if (resource.stats) throw refuse(405, 'EXISTS', 'something is there already');
    if (resource.path === '') throw refuse(405, 'EXISTS', 'the folder exists');
    this.checkLocks(resource.folder, resource.path, this.submitted(lists, access), { member: true });
    const { paths } = resource.folder;
    const parent = await paths.resolveParent(resource.path);
    await paths.makeDir(`${parent.parentAbs}/${parent.name}`, 0o755);
    this.scan(resource.folder, parentOf(resource.path));
    ctx.body = '';
    ctx.status = 201;
  }

  /** The Destination header as a path in the same folder (403 for another folder or host). */
  private async destination(ctx: Koa.Context, folder: Folder): Promise<Resource> {
    const header = ctx.get('destination');
    if (!header) throw refuse(400, 'DESTINATION', 'a Destination header is needed');
    let url: URL;
    try {
      url = new URL(header, `http://${ctx.get('host') || 'localhost'}`);
    } catch {
      throw refuse(400, 'DESTINATION', 'the Destination header is not a URL');
    }
    if (url.host !== ctx.get('host')) throw refuse(403, 'DESTINATION', 'the Destination is on another server');
    const raw = url.pathname;
    const { segments } = davSegments(raw);
    if (segments.length === 0 || (segments[0] !== folder.key && this.folderIdOf(segments[0]!) !== folder.handle.id)) {
      throw refuse(403, 'DESTINATION', 'the Destination is in another folder: copy or move only within one folder');
    }
    const path = segments.slice(1).join('/');
    if (path === FERRY_DIR || path.startsWith(`${FERRY_DIR}/`) || segments.slice(1).some((s) => s.startsWith(TEMP_FILE_PREFIX))) {
      throw refuse(403, 'PATH_REFUSED', "Ferry's own files cannot be written");
    }
    return this.resource(folder, path);
  }

  private folderIdOf(key: string): string | undefined {
    const all = this.options.folders();
    const byId = all.find((f) => f.id === key.toLowerCase());
    if (byId) return byId.id;
    const named = all.filter((f) => basename(f.path) === key);
    return named.length === 1 ? named[0]!.id : undefined;
  }

  private async copyMove(ctx: Koa.Context, source: Resource, access: AppPasswordAccess, move: boolean): Promise<void> {
    const lists = await this.checkIf(ctx, source);
    if (!source.stats) throw refuse(404, 'NOT_FOUND', 'not found');
    if (source.path === '') throw refuse(403, 'FOLDER_ROOT', 'the folder itself cannot be copied or moved');
    const folder = source.folder;
    const dest = await this.destination(ctx, folder);
    if (dest.path === '' ) throw refuse(403, 'FOLDER_ROOT', 'the folder itself cannot be replaced');
    if (dest.path === source.path || isAncestor(source.path, dest.path)) throw refuse(403, 'SAME', 'the destination is the source or inside it');
    const overwrite = (ctx.get('overwrite') || 'T').toUpperCase() !== 'F';
    const depthHeader = (ctx.get('depth') || 'infinity').toLowerCase();
    if (move && depthHeader !== 'infinity') throw refuse(400, 'DEPTH', 'MOVE is Depth: infinity');
    if (depthHeader !== '0' && depthHeader !== 'infinity') throw refuse(400, 'DEPTH', 'Depth is 0 or infinity');
    const tokens = this.submitted(lists, access);
    if (move) this.checkLocks(folder, source.path, tokens, { member: true, deep: true });
    this.checkLocks(folder, dest.path, tokens, { member: true, deep: true });
    const { paths } = folder;
    try {
      await paths.resolveParent(dest.path);
    } catch (err) {
      if (isMissing(err) || isFerryError(err, 'IO')) throw refuse(409, 'CONFLICT', 'the destination\'s parent collection is missing');
      throw err;
    }
    const existed = Boolean(dest.stats);
    if (existed) {
      if (!overwrite) throw refuse(412, 'EXISTS', 'the destination exists and Overwrite is F');
      await this.removeTree(folder, dest.path);
      this.locks.removeAt(folder.handle.id, dest.path);
      await this.props.drop(this.propsFolder(folder), dest.path);
    }
    if (move) {
      paths.forget();
      const from = await paths.resolve(source.path);
      const to = await paths.resolve(dest.path);
      if (to.stats) throw refuse(412, 'EXISTS', 'the destination appeared meanwhile');
      paths.renameBetween(from, to);
      this.locks.removeAt(folder.handle.id, source.path);
      await this.props.copy(this.propsFolder(folder), source.path, dest.path, true);
      this.scan(folder, parentOf(source.path));
    } else {
      await this.copyTree(folder, source.path, dest.path, depthHeader === 'infinity');
      await this.props.copy(this.propsFolder(folder), source.path, dest.path, false);
    }
    this.scan(folder, parentOf(dest.path));
    ctx.body = '';
    ctx.status = existed ? 204 : 201;
  }

  private async copyTree(folder: Folder, from: string, to: string, deep: boolean): Promise<void> {
    const { paths } = folder;
    paths.forget();
    const source = await paths.resolve(from);
    if (!source.stats || source.stats.isSymbolicLink()) return;
    if (!source.stats.isDirectory()) {
      const fd = await this.openForRead({ folder, path: from, target: source, stats: source.stats });
      await this.writeFile(folder, to, createReadStream('', { fd, autoClose: true }));
      return;
    }
    const parent = await paths.resolveParent(to);
    await paths.makeDir(`${parent.parentAbs}/${parent.name}`, 0o755);
    if (!deep) return;
    const dir = await openFolderDir(folder.handle.path, source.diskRel);
    const names: string[] = [];
    try {
      for await (const entry of await opendir(dir.base)) if (!entry.name.startsWith(TEMP_FILE_PREFIX)) names.push(entry.name);
    } finally {
      dir.close();
    }
    for (const name of names) await this.copyTree(folder, `${from}/${name.normalize('NFC')}`, `${to}/${name.normalize('NFC')}`, true);
  }

  // --- properties ---

  private liveProp(resource: Resource, name: string): string | undefined {
    const stats = resource.stats!;
    const dir = stats.isDirectory();
    switch (name) {
      case 'resourcetype':
        return dir ? '<D:resourcetype><D:collection/></D:resourcetype>' : '<D:resourcetype/>';
      case 'getcontentlength':
        return dir ? undefined : `<D:getcontentlength>${stats.size}</D:getcontentlength>`;
      case 'getlastmodified':
        return `<D:getlastmodified>${stats.mtime.toUTCString()}</D:getlastmodified>`;
      case 'creationdate':
        return `<D:creationdate>${(stats.birthtimeMs > 0 ? stats.birthtime : stats.mtime).toISOString()}</D:creationdate>`;
      case 'getetag':
        return `<D:getetag>${escapeXml(etagOf(stats))}</D:getetag>`;
      case 'getcontenttype':
        return dir ? undefined : `<D:getcontenttype>${contentTypeOf(resource.path)}</D:getcontenttype>`;
      case 'displayname': {
        const dead = this.props.of(resource.folder.handle.id, resource.path)?.get(`{${DAV_NS}}displayname`);
        if (dead) return dead;
        const shown = resource.path === '' ? basename(resource.folder.handle.path) : posix.basename(resource.path);
        return `<D:displayname>${escapeXml(shown)}</D:displayname>`;
      }
      case 'supportedlock':
        return '<D:supportedlock><D:lockentry><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>' +
          '<D:lockentry><D:lockscope><D:shared/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry></D:supportedlock>';
      case 'lockdiscovery':
        return this.lockDiscovery(this.locks.covering(resource.folder.handle.id, resource.path), resource.folder);
      default:
        return undefined;
    }
  }

  private lockDiscovery(locks: DavLock[], folder: Folder): string {
    return `<D:lockdiscovery>${locks.map((l) => this.activeLock(l, folder)).join('')}</D:lockdiscovery>`;
  }

  private activeLock(lock: DavLock, folder: Folder): string {
    return `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${lock.scope}/></D:lockscope><D:depth>${lock.depth === '0' ? '0' : 'infinity'}</D:depth>` +
      `${lock.owner ? `${lock.owner}` : ''}<D:timeout>Second-${Math.max(0, Math.round((lock.expiresMs - Date.now()) / 1000))}</D:timeout>` +
      `<D:locktoken><D:href>${escapeXml(lock.token)}</D:href></D:locktoken>` +
      `<D:lockroot><D:href>${escapeXml(this.href(folder, lock.root, true))}</D:href></D:lockroot></D:activelock>`;
  }

  /** One <D:response> for a resource: `mode` all properties, their names, or the ones asked for. */
  private propResponse(resource: Resource, mode: 'all' | 'names' | string[]): string {
    const dir = resource.stats!.isDirectory();
    const dead = this.props.of(resource.folder.handle.id, resource.path);
    const found: string[] = [];
    const missing: string[] = [];
    if (mode === 'names') {
      for (const name of LIVE_PROPS) if (this.liveProp(resource, name) !== undefined) found.push(`<D:${name}/>`);
      for (const key of dead?.keys() ?? []) if (!PROTECTED_LIVE.has(key) && key !== `{${DAV_NS}}displayname`) found.push(emptyProp(key));
    } else if (mode === 'all') {
      for (const name of LIVE_PROPS) {
        const value = this.liveProp(resource, name);
        if (value !== undefined) found.push(value);
      }
      for (const [key, value] of dead ?? []) if (key !== `{${DAV_NS}}displayname`) found.push(value);
    } else {
      for (const key of mode) {
        let value: string | undefined;
        if (key.startsWith(`{${DAV_NS}}`) && LIVE_PROPS.includes(key.slice(DAV_NS.length + 2))) value = this.liveProp(resource, key.slice(DAV_NS.length + 2));
        else value = dead?.get(key);
        if (value !== undefined) found.push(value);
        else missing.push(emptyProp(key));
      }
    }
    const propstat = (props: string[], status: string): string =>
      props.length ? `<D:propstat><D:prop>${props.join('')}</D:prop><D:status>HTTP/1.1 ${status}</D:status></D:propstat>` : '';
    return `<D:response><D:href>${escapeXml(this.href(resource.folder, resource.path, dir))}</D:href>` +
      `${propstat(found, '200 OK')}${propstat(missing, '404 Not Found')}</D:response>`;
  }

  private async propfind(ctx: Koa.Context, resource: Resource, rawPath: string): Promise<void> {
    void rawPath;
    const depth = (ctx.get('depth') || 'infinity').toLowerCase();
    if (depth !== '0' && depth !== '1') {
      ctx.type = 'application/xml; charset=utf-8';
      ctx.body = `${XML_HEAD}<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>`;
      ctx.status = 403;
      return;
    }
    const doc = parseXmlBody(await readBoundedBody(ctx.req));
    if (!resource.stats) throw refuse(404, 'NOT_FOUND', 'not found');
    await this.checkIf(ctx, resource);
    let mode: 'all' | 'names' | string[] = 'all';
    if (doc) {
      const root = doc.documentElement!;
      if (!isDav(root, 'propfind')) throw refuse(400, 'BAD_XML', 'the body is not a DAV:propfind');
      const prop = davChild(root, 'prop');
      if (davChild(root, 'propname')) mode = 'names';
      else if (prop) mode = elementChildren(prop).map(propKey);
      else if (!davChild(root, 'allprop')) throw refuse(400, 'BAD_XML', 'propfind needs prop, allprop or propname');
    }
    const first = this.propResponse(resource, mode);
    if (depth === '0' || !resource.stats.isDirectory()) {
      this.multistatus(ctx, first);
      return;
    }
    // Depth 1: the directory is read as a stream, one entry at a time; the answer streams out the same way.
    const folder = resource.folder;
    const dirRel = resource.path === '' ? '' : resource.target!.diskRel;
    const dir = await openFolderDir(folder.handle.path, dirRel);
    const self = this;
    async function* body(): AsyncGenerator<string> {
      try {
        yield `${XML_HEAD}<D:multistatus xmlns:D="DAV:">${first}`;
        const handle = await opendir(dir.base, { bufferSize: 64 });
        for await (const entry of handle) {
          const name = entry.name;
          if (name.startsWith(TEMP_FILE_PREFIX) || (resource.path === '' && name === FERRY_DIR)) continue;
          const stats = await lstat(dir.entry(name)).catch(() => undefined);
          if (!stats || stats.isSymbolicLink() || !(stats.isFile() || stats.isDirectory())) continue;
          const childPath = resource.path === '' ? name.normalize('NFC') : `${resource.path}/${name.normalize('NFC')}`;
          yield self.propResponse({ folder, path: childPath, stats }, mode);
        }
        yield '</D:multistatus>\n';
      } finally {
        dir.close();
      }
    }
    this.multistatus(ctx, Readable.from(body()));
  }

  private async proppatch(ctx: Koa.Context, resource: Resource, access: AppPasswordAccess, rawPath: string): Promise<void> {
    void rawPath;
    const lists = await this.checkIf(ctx, resource);
    const doc = parseXmlBody(await readBoundedBody(ctx.req));
    if (!resource.stats) throw refuse(404, 'NOT_FOUND', 'not found');
    if (!doc || !isDav(doc.documentElement!, 'propertyupdate')) throw refuse(400, 'BAD_XML', 'the body is not a DAV:propertyupdate');
    this.checkLocks(resource.folder, resource.path, this.submitted(lists, access));
    const ops: Array<{ set: boolean; key: string; element: Element }> = [];
    for (const op of elementChildren(doc.documentElement!)) {
      const set = isDav(op, 'set');
      if (!set && !isDav(op, 'remove')) continue;
      const prop = davChild(op, 'prop');
      for (const element of prop ? elementChildren(prop) : []) ops.push({ set, key: propKey(element), element });
    }
    const refused = ops.filter((op) => PROTECTED_LIVE.has(op.key));
    const tooBig = ops.filter((op) => op.set && serializeElement(op.element).length > MAX_PROP_VALUE_CHARS);
    const current = this.props.of(resource.folder.handle.id, resource.path);
    const count = new Set([...(current?.keys() ?? []), ...ops.filter((o) => o.set).map((o) => o.key)]).size;
    const failed = refused.length > 0 || tooBig.length > 0 || count > MAX_PROPS_PER_RESOURCE;
    const statusOf = (op: { key: string }): string => {
      if (!failed) return '200 OK';
      if (refused.some((r) => r.key === op.key)) return '403 Forbidden';
      if (tooBig.some((r) => r.key === op.key) || count > MAX_PROPS_PER_RESOURCE) return '507 Insufficient Storage';
      return '424 Failed Dependency';
    };
    if (!failed) {
      await this.props.update(this.propsFolder(resource.folder), resource.path, ops.map((op) => [op.key, op.set ? serializeElement(op.element) : undefined]));
    }
    const byStatus = new Map<string, string[]>();
    for (const op of ops) {
      const status = statusOf(op);
      byStatus.set(status, [...(byStatus.get(status) ?? []), emptyProp(op.key)]);
    }
    const propstats = [...byStatus].map(([status, props]) => `<D:propstat><D:prop>${props.join('')}</D:prop><D:status>HTTP/1.1 ${status}</D:status></D:propstat>`);
    this.multistatus(ctx, `<D:response><D:href>${escapeXml(this.href(resource.folder, resource.path, resource.stats.isDirectory()))}</D:href>${propstats.join('')}</D:response>`);
  }

  // --- locks ---

  private async lock(ctx: Koa.Context, resource: Resource, access: AppPasswordAccess, rawPath: string): Promise<void> {
    void rawPath;
    const body = await readBoundedBody(ctx.req);
    const doc = parseXmlBody(body);
    const folder = resource.folder;
    const timeoutS = parseTimeout(ctx.get('timeout'));
    if (!doc) {
      // A refresh: the If header names the lock.
      const lists = parseIfHeader(ctx.get('if'));
      const tokens = this.submitted(lists, access);
      const lock = this.locks.covering(folder.handle.id, resource.path).find((l) => tokens.has(l.token));
      if (!lock) throw refuse(412, 'PRECONDITION', 'no lock of yours is named in the If header to refresh');
      this.locks.refresh(lock, timeoutS);
      ctx.type = 'application/xml; charset=utf-8';
      ctx.body = `${XML_HEAD}<D:prop xmlns:D="DAV:">${this.lockDiscovery([lock], folder)}</D:prop>`;
      ctx.status = 200;
      return;
    }
    const lists = await this.checkIf(ctx, resource);
    const root = doc.documentElement!;
    if (!isDav(root, 'lockinfo')) throw refuse(400, 'BAD_XML', 'the body is not a DAV:lockinfo');
    const scopeEl = davChild(root, 'lockscope');
    const scope = scopeEl && davChild(scopeEl, 'shared') ? 'shared' : scopeEl && davChild(scopeEl, 'exclusive') ? 'exclusive' : undefined;
    const typeEl = davChild(root, 'locktype');
    if (!scope || !typeEl || !davChild(typeEl, 'write')) throw refuse(400, 'BAD_XML', 'lockinfo needs a lockscope and a write locktype');
    const ownerEl = davChild(root, 'owner');
    const owner = ownerEl ? serializeElement(ownerEl) : '';
    if (owner.length > MAX_PROP_VALUE_CHARS) throw refuse(400, 'BAD_XML', 'the lock owner is too long');
    const depthHeader = (ctx.get('depth') || 'infinity').toLowerCase();
    if (depthHeader !== '0' && depthHeader !== 'infinity') throw refuse(400, 'DEPTH', 'LOCK is Depth 0 or infinity');
    const depth = resource.stats?.isDirectory() ? (depthHeader as '0' | 'infinity') : '0';
    let created = false;
    if (!resource.stats) {
      // An unmapped URL: locking it creates an empty file (RFC 4918 §7.3).
      this.checkLocks(folder, resource.path, this.submitted(lists, access), { member: true });
      try {
        await folder.paths.resolveParent(resource.path);
      } catch (err) {
        if (isMissing(err) || isFerryError(err, 'IO')) throw refuse(409, 'CONFLICT', 'the parent collection is missing');
        throw err;
      }
      const lock = this.locks.create({ folderId: folder.handle.id, root: resource.path, depth, scope, owner, user: access.name, timeoutS });
      if (!lock) throw refuse(423, 'LOCKED', 'the resource is locked');
      try {
        await this.writeFile(folder, resource.path, Readable.from([]));
      } catch (err) {
        this.locks.remove(lock.token);
        throw err;
      }
      this.scan(folder, parentOf(resource.path));
      created = true;
      this.lockAnswer(ctx, lock, folder, 201);
      return;
    }
    const lock = this.locks.create({ folderId: folder.handle.id, root: resource.path, depth, scope, owner, user: access.name, timeoutS });
    if (!lock) throw refuse(423, 'LOCKED', 'the resource is locked');
    this.lockAnswer(ctx, lock, folder, created ? 201 : 200);
  }

  private lockAnswer(ctx: Koa.Context, lock: DavLock, folder: Folder, status: number): void {
    ctx.set('Lock-Token', `<${lock.token}>`);
    ctx.type = 'application/xml; charset=utf-8';
    ctx.body = `${XML_HEAD}<D:prop xmlns:D="DAV:">${this.lockDiscovery([lock], folder)}</D:prop>`;
    ctx.status = status;
  }

  private unlock(ctx: Koa.Context, resource: Resource, access: AppPasswordAccess): void {
    const header = ctx.get('lock-token');
    const match = /^\s*<([^>]+)>\s*$/.exec(header);
    if (!match) throw refuse(400, 'LOCK_TOKEN', 'UNLOCK needs a Lock-Token header');
    const lock = this.locks.covering(resource.folder.handle.id, resource.path).find((l) => l.token === match[1]);
    if (!lock) {
      ctx.type = 'application/xml; charset=utf-8';
      ctx.body = `${XML_HEAD}<D:error xmlns:D="DAV:"><D:lock-token-matches-request-uri/></D:error>`;
      ctx.status = 409;
      return;
    }
    if (lock.user !== access.name) throw refuse(403, 'NOT_OWNER', 'the lock belongs to another app password');
    this.locks.remove(lock.token);
    ctx.body = '';
    ctx.status = 204;
  }
}

function parentRelOf(diskRelParent: string): string {
  return diskRelParent.replace(/\/$/, '');
}
