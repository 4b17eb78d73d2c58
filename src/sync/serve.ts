// Answers peers' block Requests from local files, checking each request against our record and the data against its hash.

import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isFerryError } from '../errors.js';
import type { FolderIndex } from '../index/types.js';
import type { RequestMessage, ResponseError } from '../protocol/messages.js';
import type { Logger } from '../util/log.js';
import { DiskPaths } from './paths.js';

export type BlockAnswer = { data: Buffer } | { error: ResponseError };

/** Files kept open between requests (a peer pulling a large file asks for its blocks one after another). */
const OPEN_FILES = 8;
/** An open file unused this long is closed. */
const IDLE_CLOSE_MS = 2000;

export interface BlockServerOptions {
  root: string;
  index: FolderIndex;
  logger: Logger;
  requestScan(path: string): void;
}

/** What a served path looked like when its record was last read: enough to check requests without decoding it again. */
interface OpenFile {
  path: string;
  handle: FileHandle;
  blockSize: number;
  size: number;
  blocks: Uint8Array[];
  lastUsedMs: number;
  /** Reads in progress: the handle is closed only when none is. */
  users: number;
  closing: boolean;
}

/**
 * Reads the requested block if our local record of the path has exactly that block (same offset,
 * size and hash); a file that changed on disk since it was indexed answers HASH_MISMATCH (and gets
 * rescanned). Never reads through a symlink. Recently served files stay open with their block list,
 * so a large file costs one record decode and one open, not one per block; a request that does not
 * match the remembered block list reads the record again before it is refused.
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
        const { bytesRead } = await file.handle.read(data, done, request.size - done, request.offset + done);
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
      if (file.closing && file.users === 0) void file.handle.close().catch(() => undefined);
    }
    if (data.length !== request.size || !createHash('sha256').update(data).digest().equals(request.hash)) {
      this.release(file);
      this.options.logger.info('file changed since it was indexed; rescanning', { path: request.path });
      this.options.requestScan(request.path);
      return { error: 'HASH_MISMATCH' };
    }
    return { data };
  }

  close(): void {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    for (const file of [...this.files.values()]) this.release(file);
  }

  /** Reads the record, checks the request against it, opens the file without following a symlink. */
  private async openFile(request: RequestMessage): Promise<OpenFile | { error: ResponseError }> {
    const local = this.options.index.getLocal(request.path);
    if (!local || local.deleted || local.type !== 'file' || local.blockSize === 0) return { error: 'NO_SUCH_FILE' };
    const candidate = { blockSize: local.blockSize, size: local.size, blocks: local.blocks };
    if (!matches(candidate, request)) return { error: 'NO_SUCH_FILE' };
    let handle: FileHandle;
    try {
      const target = await this.paths.resolve(request.path);
      if (!target.stats?.isFile()) return { error: 'NO_SUCH_FILE' };
      handle = await open(target.abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (isFerryError(err, 'PATH_UNSAFE')) {
        this.options.logger.warn('not serving a path through a symlink', { path: request.path });
        return { error: 'NO_SUCH_FILE' };
      }
      this.options.logger.debug('cannot open a requested file', { path: request.path, err: err instanceof Error ? err : String(err) });
      return { error: 'NO_SUCH_FILE' };
    } finally {
      // Listings may go stale between requests; verified parents expire by themselves.
      this.paths.forget('listings');
    }
    const file: OpenFile = { path: request.path, handle, ...candidate, lastUsedMs: Date.now(), users: 0, closing: false };
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

  private sweep(): void {
    const now = Date.now();
    for (const file of [...this.files.values()]) if (now - file.lastUsedMs >= IDLE_CLOSE_MS) this.release(file);
    if (this.files.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** Forgets a file; its handle closes once no read uses it. */
  private release(file: OpenFile): void {
    if (this.files.get(file.path) === file) this.files.delete(file.path);
    if (file.closing) return;
    file.closing = true;
    if (file.users === 0) void file.handle.close().catch(() => undefined);
  }
}

/** Whether the request names exactly one block of this block list. */
function matches(file: { blockSize: number; size: number; blocks: Uint8Array[] }, request: RequestMessage): boolean {
  const blockIndex = request.offset / file.blockSize;
  const expectedSize = Math.min(file.blockSize, file.size - request.offset);
  const expectedHash = Number.isInteger(blockIndex) ? file.blocks[blockIndex] : undefined;
  return expectedHash !== undefined && request.size === expectedSize && Buffer.compare(expectedHash, request.hash) === 0;
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
