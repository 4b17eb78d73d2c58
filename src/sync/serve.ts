// Answers peers' block Requests from local files, checking each request against our record (and the data against its hash when the file changed since it was indexed).

import { fstatSync, openSync, readSync } from 'node:fs';
import { FerryError, isFerryError } from '../errors.js';
import type { FolderIndex } from '../index/types.js';
import { LIMITS, type RequestMessage, type ResponseError } from '../protocol/messages.js';
import { WARM_FILE_MAX_BYTES, type WarmFiles } from '../scan/warm-files.js';
import { closeQuietly, openFd, READ_NO_FOLLOW, readFd } from '../util/fd.js';
import type { Logger } from '../util/log.js';
import { firstMismatchedBlock } from './block-hashes.js';
import { childPath, DiskPaths } from './paths.js';

export type BlockAnswer = { data: Buffer } | { error: ResponseError };

const HASH_BYTES = LIMITS.hashBytes;

/** Files kept open between requests (a peer pulling a large file asks for its blocks one after another). */
const OPEN_FILES = 8;
/** An open file unused this long is closed. */
const IDLE_CLOSE_MS = 2000;

export interface BlockServerOptions {
  root: string;
  index: FolderIndex;
  logger: Logger;
  requestScan(path: string): void;
  /** Small files read or written moments ago, served with synchronous calls. */
  warmFiles?: WarmFiles;
  /** A file being hashed now whose blocks were announced (Hashing): served before its record exists. */
  hashing?: (path: string) => IndexedFile | undefined;
}

/** What our record of a served file says: enough to check requests without decoding it again. */
interface IndexedFile {
  blockSize: number;
  size: number;
  /** Holes: blocks of a file being hashed whose hashes are not known yet. */
  blocks: ReadonlyArray<Uint8Array | undefined>;
  /** mtime and inode the file had when indexed: while fstat still shows them, blocks need no re-hashing. */
  mtimeMs: number;
  inode: number;
}

/** A served file kept open between requests. */
interface OpenFile extends IndexedFile {
  path: string;
  fd: number;
  lastUsedMs: number;
  /** Reads in progress: the descriptor is closed only when none is. */
  users: number;
  closing: boolean;
}

/**
 * Reads the requested blocks if our local record of the path has exactly those blocks (same offsets,
 * sizes and hashes); a file that changed on disk since it was indexed (fstat differs, and so does the
 * block's hash) answers HASH_MISMATCH and gets rescanned. Never reads through a symlink. Recently
 * served files stay open with their block list, so a large file costs one record decode and one
 * open, not one per block; a request that does not match the remembered block list reads the
 * record again before it is refused.
 */
export class BlockServer {
  private readonly files = new Map<string, OpenFile>();
  private readonly paths: DiskPaths;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly options: BlockServerOptions) {
    this.paths = new DiskPaths(options.root);
  }

  /** `allocate` gives the buffer the block is read into (a connection's pool). */
  async answer(request: RequestMessage, allocate: (size: number) => Buffer = Buffer.allocUnsafe): Promise<BlockAnswer> {
    const warm = await this.answerWarm(request, allocate);
    if (warm) return warm;
    let file = this.files.get(request.path);
    if (file && !matches(file, request)) {
      this.release(file);
      file = undefined;
    }
    if (!file) {
      const opened = await this.openFile(request);
      if ('error' in opened) return opened;
      file = opened;
    }
    file.users++;
    file.lastUsedMs = Date.now();
    let data: Buffer;
    try {
      data = allocate(request.size);
      let done = 0;
      while (done < request.size) {
        const { bytesRead } = await readFd(file.fd, data, done, request.size - done, request.offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      if (done < request.size) data = data.subarray(0, done);
    } catch (err) {
      this.options.logger.debug('cannot read a requested block', { path: request.path, err: err instanceof Error ? err : String(err) });
      this.release(file);
      return { error: 'NO_SUCH_FILE' };
    } finally {
      file.users--;
      if (file.closing && file.users === 0) closeQuietly(file.fd);
    }
    const answer = this.checkRead(request, file, data, unchangedSinceIndexed(file));
    if ('error' in answer) this.release(file);
    return answer;
  }

  /**
   * A whole small file the scanner hashed or the puller wrote moments ago (WarmFiles), read with
   * synchronous calls: its inode and data are in the page cache, so they take microseconds where
   * the thread pool's round trips cost ~100 µs each. Undefined when the file is not served this way
   * (not warm, already open, or anything unusual): the usual path then answers.
   */
  private async answerWarm(request: RequestMessage, allocate: (size: number) => Buffer): Promise<BlockAnswer | undefined> {
    const warm = this.options.warmFiles;
    if (!warm || request.offset !== 0 || request.size > WARM_FILE_MAX_BYTES || this.files.has(request.path) || !warm.isWarm(request.path)) {
      return undefined;
    }
    const indexed = this.indexedFile(request);
    if ('error' in indexed) return indexed;
    if (indexed.blocks.length !== 1) return undefined;
    let fd: number;
    try {
      const { parentAbs, name } = await this.paths.resolveParent(request.path);
      fd = openSync(childPath(parentAbs, name), READ_NO_FOLLOW);
    } catch {
      return undefined; // a symlink, an NFD name, a missing parent: the usual path tells which
    }
    try {
      const before = fstatSync(fd);
      if (!before.isFile()) return undefined;
      const data = allocate(request.size);
      const bytesRead = readSync(fd, data, 0, request.size, 0);
      const after = fstatSync(fd);
      const unchanged = after.size === indexed.size && after.mtimeMs === indexed.mtimeMs && after.ino === indexed.inode;
      return this.checkRead(request, indexed, data.subarray(0, bytesRead), unchanged);
    } catch {
      return undefined;
    } finally {
      closeQuietly(fd);
    }
  }

  /**
   * The answer for `data` read for `request`: the data, unless the file changed since it was indexed
   * (`unchanged` false, and the data's hash differs), which gets the path rescanned.
   */
  private checkRead(request: RequestMessage, file: IndexedFile, data: Buffer, unchanged: boolean): BlockAnswer {
    const hashOf = (j: number): Buffer => request.hash.subarray(j * HASH_BYTES, (j + 1) * HASH_BYTES);
    const changed =
      data.length !== request.size ||
      (!unchanged && firstMismatchedBlock(data, file.blockSize, request.hash.length / HASH_BYTES, hashOf) >= 0);
    if (!changed) return { data };
    this.options.logger.info('file changed since it was indexed; rescanning', { path: request.path });
    this.options.requestScan(request.path);
    return { error: 'HASH_MISMATCH' };
  }

  /** What our local record says of the requested file, if the request matches it. */
  private indexedFile(request: RequestMessage): IndexedFile | { error: ResponseError } {
    const local = this.options.index.getLocal(request.path);
    if (local && !local.deleted && local.type === 'file' && local.blockSize > 0) {
      const file = { blockSize: local.blockSize, size: local.size, blocks: local.blocks, mtimeMs: local.mtimeMs, inode: local.inode };
      if (matches(file, request)) return file;
    }
    // Blocks announced while the file is hashed (streaming a large file before its record exists).
    const hashing = this.options.hashing?.(request.path);
    return hashing && matches(hashing, request) ? hashing : { error: 'NO_SUCH_FILE' };
  }

  close(): void {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const file of [...this.files.values()]) this.release(file);
  }

  /** Reads the record, checks the request against it, opens the file without following a symlink. */
  private async openFile(request: RequestMessage): Promise<OpenFile | { error: ResponseError }> {
    const candidate = this.indexedFile(request);
    if ('error' in candidate) return candidate;
    let fd: number;
    try {
      fd = await this.openRegularFile(request.path);
    } catch (err) {
      if (isFerryError(err, 'PATH_UNSAFE') || (err as NodeJS.ErrnoException).code === 'ELOOP') {
        this.options.logger.warn('not serving a path through a symlink', { path: request.path });
        return { error: 'NO_SUCH_FILE' };
      }
      this.options.logger.debug('cannot open a requested file', { path: request.path, err: err instanceof Error ? err : String(err) });
      return { error: 'NO_SUCH_FILE' };
    } finally {
      // Listings may go stale between requests; verified parents expire by themselves.
      this.paths.forget('listings');
    }
    const file: OpenFile = { path: request.path, fd, ...candidate, lastUsedMs: Date.now(), users: 0, closing: false };
    if (this.closed) {
      file.closing = true;
      return file; // answered once, then closed
    }
    const previous = this.files.get(request.path);
    if (previous) this.release(previous);
    this.files.set(request.path, file);
    if (this.files.size > OPEN_FILES) {
      const oldest = [...this.files.values()].reduce((a, b) => (a.lastUsedMs <= b.lastUsedMs ? a : b));
      this.release(oldest);
    }
    this.sweepTimer ??= setInterval(() => this.sweep(), IDLE_CLOSE_MS);
    this.sweepTimer.unref();
    return file;
  }

  /** A descriptor of the regular file at `path`; throws when it is missing, a symlink or not a file. */
  private async openRegularFile(path: string): Promise<number> {
    const { parentAbs, name } = await this.paths.resolveParent(path);
    let fd: number;
    try {
      fd = await openFd(childPath(parentAbs, name), READ_NO_FOLLOW);
    } catch (err) {
      // The name may be spelled another way (NFD) on disk: look it up properly.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !/[^\u0000-\u007f]/.test(name)) throw err;
      const target = await this.paths.resolve(path);
      if (!target.stats) throw err;
      fd = await openFd(target.abs, READ_NO_FOLLOW);
    }
    let regular = false;
    try {
      regular = fstatSync(fd).isFile();
    } catch {
      // treated as not a file
    }
    if (regular) return fd;
    closeQuietly(fd);
    throw new FerryError('IO', `${path} is not a regular file`);
  }

  private sweep(): void {
    const now = Date.now();
    for (const file of [...this.files.values()]) if (now - file.lastUsedMs >= IDLE_CLOSE_MS) this.release(file);
    if (this.files.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** Forgets a file; its descriptor closes once no read uses it. */
  private release(file: OpenFile): void {
    if (this.files.get(file.path) === file) this.files.delete(file.path);
    if (file.closing) return;
    file.closing = true;
    if (file.users === 0) closeQuietly(file.fd);
  }
}


/**
 * Whether the open file still has the size, mtime and inode it was indexed with, checked after the
 * read: then the block is the one indexed (the scanner trusts the same signs) and is not hashed
 * again; the receiver verifies every block anyway. Hashing each served block cost the sender as
 * much CPU as the receiver's verification.
 */
function unchangedSinceIndexed(file: OpenFile): boolean {
  try {
    const stats = fstatSync(file.fd);
    return stats.size === file.size && stats.mtimeMs === file.mtimeMs && stats.ino === file.inode;
  } catch {
    return false;
  }
}

/** Whether the request names a run of whole, adjacent blocks of this block list, each by its hash. */
function matches(file: { blockSize: number; size: number; blocks: ReadonlyArray<Uint8Array | undefined> }, request: RequestMessage): boolean {
  const first = request.offset / file.blockSize;
  const count = request.hash.length / HASH_BYTES;
  if (!Number.isInteger(first) || first + count > file.blocks.length) return false;
  // Every block but the file's last is whole.
  if (request.size !== Math.min(request.offset + count * file.blockSize, file.size) - request.offset) return false;
  for (let j = 0; j < count; j++) {
    const known = file.blocks[first + j];
    if (!known || request.hash.compare(known, 0, HASH_BYTES, j * HASH_BYTES, (j + 1) * HASH_BYTES) !== 0) return false;
  }
  return true;
}

/** One request answered by a server of its own (no file kept open). */
export async function answerRequest(request: RequestMessage, options: BlockServerOptions): Promise<BlockAnswer> {
  const server = new BlockServer(options);
  try {
    return await server.answer(request);
  } finally {
    server.close();
  }
}
