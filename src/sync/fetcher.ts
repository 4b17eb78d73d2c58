// Fills one file's temp file: keeps verified blocks of an earlier attempt, copies blocks found locally, fetches the rest from peers in parallel.

import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { constants, fstatSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { FerryError, isDiskFull, isFerryError } from '../errors.js';
import type { FileRecord } from '../index/records.js';
import type { FolderIndex } from '../index/types.js';
import type { RequestParams } from '../protocol/connection.js';
import { openFolderDirSync } from '../scan/disk-path.js';
import type { BufferPool } from '../util/buffer-pool.js';
import { closeQuietly, openFd, READ_NO_FOLLOW, readFd } from '../util/fd.js';
import { NODE_FILE_IO, type FileIo } from '../util/file-io.js';
import type { Logger } from '../util/log.js';
import { throwIfAborted } from '../util/abort.js';
import { AlignedBuffers, DIRECT_IO_ALIGN } from './aligned-buffers.js';
import type { ByteBudget } from './budget.js';
import { firstMismatchedBlock } from './block-hashes.js';
import type { RateLimiter } from './rate-limit.js';

/** A connected peer that has the file's exact version. */
export interface BlockPeer {
  readonly deviceId: string;
  /** Bytes requested from this peer and not yet written. */
  readonly budget: ByteBudget;
  /** Whether one request may name several adjacent blocks. */
  readonly multiBlock: boolean;
  usable(): boolean;
  request(params: RequestParams, signal: AbortSignal): Promise<Buffer>;
  /** Gives a block from request() back for reuse once it is written and no longer read. */
  recycle(data: Buffer): void;
  /** The peer sent a block whose hash is wrong. */
  reportBadBlock(path: string, offset: number): void;
}

/** Counters of where blocks came from (for status and tests). */
export interface TransferStats {
  blocksRequested: number;
  bytesRequested: number;
  blocksCopied: number;
  bytesCopied: number;
  /** Blocks already correct in a temp file left by an earlier attempt. */
  blocksReused: number;
  bytesReused: number;
  /** Blocks that failed verification (from peers or local copies). */
  badBlocks: number;
  /** Bytes written to temp files with O_DIRECT, past the page cache. */
  bytesWrittenDirect: number;
}

export function emptyTransferStats(): TransferStats {
  return { blocksRequested: 0, bytesRequested: 0, blocksCopied: 0, bytesCopied: 0, blocksReused: 0, bytesReused: 0, badBlocks: 0, bytesWrittenDirect: 0 };
}

export interface FetchJob {
  folderId: Buffer;
  root: string;
  index: FolderIndex;
  /** The version to build (the global record of a live file). */
  record: FileRecord;
  tempAbs: string;
  peers: BlockPeer[];
  /** The folder's bytes in flight. */
  budget: ByteBudget;
  stats: TransferStats;
  /** Where a local file moved to by the puller is now (its blocks are still indexed under the old path). */
  relocated?: (path: string) => string | undefined;
  /** Buffers for blocks read from local files. */
  buffers: BufferPool;
  /** Staging buffers for direct writes (from directWriteBuffers()); without them every write goes through the page cache. */
  direct?: AlignedBuffers;
  /** The daemon's download limit: each block's size is taken before it is requested. */
  download?: RateLimiter;
  /** Told the bytes of each block written into the temp file (fetched or copied), for status. */
  progress?: (bytes: number) => void;
  signal: AbortSignal;
  logger: Logger;
  /** The writing file operations (node:fs unless a test injects faults): the folder's DiskPaths.io. */
  io?: FileIo;
}

/** Local files kept open at once while copying blocks from them. */
const MAX_SOURCE_FILES = 16;
/**
 * Bytes one request asks for at most. Each request costs both sides a message, a thread-pool read
 * or write and their wake-ups; 1 MiB spans cut those four-fold on 256 KiB blocks.
 */
const MAX_REQUEST_BYTES = 1024 * 1024;

/**
 * Largest single write. Measured on this VM's ext4 (kernel 6.18), 1 GiB after the page cache was
 * dropped, the two sizes alternating: 1 MiB-aligned writes of 1 MiB cost 1.0–2.9 s of system time,
 * 512 KiB writes 0.2–0.6 s (the kernel then builds smaller page-cache folios).
 */
const MAX_WRITE_BYTES = 512 * 1024;

/**
 * Bytes written to a temp file between two background flushes. The page cache otherwise holds a
 * large file's data until the final fsync, which then wrote 1 GiB at the end of the transfer
 * (~0.5 s with both cores idle); flushed as it comes, the disk writes while the network moves.
 */
const FLUSH_EVERY_BYTES = 64 * 1024 * 1024;

/**
 * Files of at least this size are written past the page cache (O_DIRECT, see
 * aligned-buffers.ts). On this VM that took the receiver's system time for 1 GiB from 2.0–2.3 s
 * to 0.6–0.7 s, and the bench's `large` from 4.46–4.83 s to 3.22–3.53 s (alternating runs). Small
 * files keep their single durable write through the cache.
 */
const DIRECT_WRITE_MIN_FILE_BYTES = 1024 * 1024;

/**
 * Direct writes in flight per puller: each holds a thread-pool thread until the disk has its data,
 * and two already reach this disk's speed (1 GiB in 1 MiB writes: 0.73 s with 2, 4 or 8 in flight).
 */
const DIRECT_WRITE_SLOTS = 4;

/** The staging buffers a puller hands to its fetches for direct writes; none where WebAssembly is off (`--jitless`). */
export function directWriteBuffers(): AlignedBuffers | undefined {
  return typeof WebAssembly === 'object' ? new AlignedBuffers(DIRECT_WRITE_SLOTS, MAX_REQUEST_BYTES) : undefined;
}

/** Writes `length` bytes of `data` from `offset` at `position`, or fails: a short write (a full disk) is an error. */
async function writeFully(io: FileIo, fd: number, data: Buffer, offset: number, length: number, position: number): Promise<void> {
  const { bytesWritten } = await io.write(fd, data, offset, length, position);
  if (bytesWritten !== length) throw new FerryError('IO', `short write: ${bytesWritten} of ${length} bytes (disk full?)`);
}

/** Writes `data` at `position` in pieces of at most MAX_WRITE_BYTES, all at once. */
async function writeInPieces(io: FileIo, fd: number, data: Buffer, position: number): Promise<void> {
  const pieces: Array<Promise<unknown>> = [];
  for (let at = 0; at < data.length; at += MAX_WRITE_BYTES) {
    pieces.push(writeFully(io, fd, data, at, Math.min(MAX_WRITE_BYTES, data.length - at), position + at));
  }
  await Promise.all(pieces);
}

/** Where a block's bytes are on disk: in this temp file (`path` undefined) or in another local file. */
interface LocalSource {
  path: string | undefined;
  position: number;
}

function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

async function readExactly(fd: number, length: number, position: number, buffers: BufferPool): Promise<Buffer | undefined> {
  const buffer = buffers.take(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await readFd(fd, buffer, done, length - done, position + done);
    if (bytesRead === 0) {
      buffers.recycle(buffer);
      return undefined;
    }
    done += bytesRead;
  }
  return buffer;
}

/** Builds `record` in its temp file (created or reused), fsynced; throws when some block cannot be had. */
export async function fetchIntoTemp(job: FetchJob): Promise<void> {
  const fetch = new FileFetch(job);
  await fetch.run();
}

class FileFetch {
  private readonly record: FileRecord;
  /** Hash (hex) → a block index already correct in the temp file. */
  private readonly present = new Map<string, number>();
  /** Peers that cannot serve this file at all (no such file, changed under them). */
  private readonly excluded = new Set<string>();
  private fd = -1;
  /** The temp file opened a second time with O_DIRECT, for large files on file systems that allow it. */
  private directFd: number | undefined;
  /** The file system refused a direct write: the rest go through the cache (the descriptor stays open until the end, as other writes may use it). */
  private directRefused = false;
  /** Local files blocks are copied from, opened once each. */
  private readonly sources = new Map<string, { fd: Promise<number>; users: number; closing: boolean }>();
  private holderCache: { path: string; record: FileRecord | undefined } | undefined;
  private unflushedBytes = 0;
  /** A background flush of what was written so far (see FLUSH_EVERY_BYTES), and how one failed. */
  private flushing: Promise<void> | null = null;
  private flushError: unknown;

  private readonly io: FileIo;

  constructor(private readonly job: FetchJob) {
    this.record = job.record;
    this.io = job.io ?? NODE_FILE_IO;
  }

  private blockLength(i: number): number {
    return Math.min(this.record.blockSize, this.record.size - i * this.record.blockSize);
  }

  async run(): Promise<void> {
    // A new temp file (the usual case) has nothing to check or trim: every block is written into it.
    let fresh = true;
    // A file of one block is written in one piece: with O_DSYNC that write is durable by itself, which
    // saves each small file the fsync's round trip through the thread pool (two thread wake-ups).
    const durableWrites = this.record.blocks.length <= 1;
    const create = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | (durableWrites ? constants.O_DSYNC : 0);
    // Through its parent opened again with every component O_NOFOLLOW (the disk-path module): a
    // directory swapped for a symlink since the target was resolved is refused, never written through.
    const temp = this.openTempParent();
    const tempEntry = temp.parent.entry(temp.name);
    try {
      this.fd = await this.io.open(tempEntry, create, 0o600)
        .catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          fresh = false; // left by an earlier attempt: its verified blocks are kept
          return this.io.open(tempEntry, constants.O_RDWR | constants.O_NOFOLLOW, 0o600);
        })
        .catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
            throw new FerryError('PATH_UNSAFE', `refusing ${JSON.stringify(this.record.path)}: its temp file was replaced by a symlink`);
          }
          throw new FerryError('IO', `cannot open temp file for ${this.record.path}: ${String(err)}`, { cause: err });
        });
      await this.openDirect(tempEntry);
    } catch (err) {
      if (this.fd >= 0) closeQuietly(this.fd);
      throw err;
    } finally {
      temp.parent.close();
    }
    try {
      const missing = fresh ? this.record.blocks.map((_, i) => i) : await this.keepVerifiedBlocks();
      if (!fresh) await this.io.truncate(this.fd, this.record.size);
      await this.fill(missing);
      await this.flushing;
      // The kernel reports a write-back error to one flush of a descriptor only: this file is not installed.
      if (this.flushError !== undefined) throw this.flushError;
      if (!(fresh && durableWrites)) await this.io.fsync(this.fd);
    } finally {
      await this.flushing; // never close a descriptor a flush may still be given
      closeQuietly(this.fd);
      if (this.directFd !== undefined) closeQuietly(this.directFd);
      this.closeSources();
    }
  }

  /**
   * Opens the temp file for direct writes when the file is large enough and its file system allows
   * it (ramfs, FUSE and some network file systems refuse O_DIRECT: their writes go through the cache).
   */
  private async openDirect(tempEntry: string): Promise<void> {
    if (!this.job.direct || this.record.size < DIRECT_WRITE_MIN_FILE_BYTES || constants.O_DIRECT === undefined) return;
    const fd = await this.io.open(tempEntry, constants.O_WRONLY | constants.O_DIRECT | constants.O_NOFOLLOW).catch((err: unknown) => {
      this.job.logger.debug('no direct writes for this file', { path: this.record.path, err: String(err) });
      return undefined;
    });
    if (fd === undefined) return;
    // Opened by name a second time: it must still be the temp file this fetch created.
    const [mine, opened] = [fstatSync(this.fd), fstatSync(fd)];
    if (mine.ino !== opened.ino || mine.dev !== opened.dev) closeQuietly(fd);
    else this.directFd = fd;
  }

  /**
   * The temp file's directory inside the folder, opened with O_NOFOLLOW component by component
   * (PATH_UNSAFE when one is a symlink), and the temp file's name in it.
   */
  private openTempParent(): { parent: ReturnType<typeof openFolderDirSync>; name: string } {
    const rel = relative(this.job.root, dirname(this.job.tempAbs));
    if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) {
      throw new FerryError('PATH_UNSAFE', `temp file for ${JSON.stringify(this.record.path)} is outside the folder`);
    }
    const name = this.job.tempAbs.slice(this.job.tempAbs.lastIndexOf('/') + 1);
    try {
      return { parent: openFolderDirSync(this.job.root, rel), name };
    } catch (err) {
      if (isFerryError(err)) throw err;
      throw new FerryError('IO', `cannot open the directory of ${this.record.path}: ${String(err)}`, { cause: err });
    }
  }

  /** Writes into the temp file: its aligned part directly when it can, the rest through the cache. */
  private async write(data: Buffer, position: number): Promise<void> {
    const directBytes = position % DIRECT_IO_ALIGN === 0 ? data.length - (data.length % DIRECT_IO_ALIGN) : 0;
    const written = directBytes > 0 && (await this.writeDirect(data.subarray(0, directBytes), position)) ? directBytes : 0;
    if (written < data.length) await this.writeCached(data.subarray(written), position + written);
    this.job.progress?.(data.length);
  }

  /**
   * Writes aligned `data` with O_DIRECT, through the staging buffers; false when this file has no
   * direct descriptor, or when its file system refused a direct write (EINVAL: it wants a larger
   * alignment), after which this file's writes all go through the cache.
   */
  private async writeDirect(data: Buffer, position: number): Promise<boolean> {
    const staging = this.job.direct;
    if (this.directFd === undefined || this.directRefused || !staging) return false;
    for (let done = 0; done < data.length; ) {
      const slot = await staging.take(this.job.signal);
      try {
        const length = Math.min(slot.length, data.length - done);
        data.copy(slot, 0, done, done + length);
        await writeFully(this.io, this.directFd, slot, 0, length, position + done);
        done += length;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        this.job.logger.debug('direct write refused; writing through the cache', { path: this.record.path, err: String(err) });
        this.directRefused = true;
        return false;
      } finally {
        staging.give(slot);
      }
    }
    this.job.stats.bytesWrittenDirect += data.length;
    return true;
  }

  /** Writes through the page cache, starting a background flush every FLUSH_EVERY_BYTES. */
  private async writeCached(data: Buffer, position: number): Promise<void> {
    await writeInPieces(this.io, this.fd, data, position);
    this.unflushedBytes += data.length;
    if (this.unflushedBytes < FLUSH_EVERY_BYTES || this.flushing) return;
    this.unflushedBytes = 0;
    this.flushing = this.io.fdatasync(this.fd)
      .catch((err: unknown) => void (this.flushError ??= err))
      .finally(() => (this.flushing = null));
  }

  /** Blocks an earlier attempt already wrote (checked by hash); returns the indexes still missing. */
  private async keepVerifiedBlocks(): Promise<number[]> {
    const { size } = fstatSync(this.fd);
    const missing: number[] = [];
    for (let i = 0; i < this.record.blocks.length; i++) {
      const offset = i * this.record.blockSize;
      const length = this.blockLength(i);
      if (offset + length <= size) {
        throwIfAborted(this.job.signal);
        const data = await readExactly(this.fd, length, offset, this.job.buffers);
        const intact = data !== undefined && same(sha256(data), this.record.blocks[i]!);
        if (data) this.job.buffers.recycle(data);
        if (intact) {
          this.present.set(Buffer.from(this.record.blocks[i]!).toString('hex'), i);
          this.job.stats.blocksReused++;
          this.job.stats.bytesReused += length;
          continue;
        }
      }
      missing.push(i);
    }
    return missing;
  }

  /**
   * Every missing block is copied from a local file when one holds its hash, else fetched; both run
   * in parallel within the folder's bytes-in-flight budget, so a renamed or edited large file is
   * rebuilt at disk speed rather than one block read, hashed and written after another. Adjacent
   * blocks to fetch go in one request (up to MAX_REQUEST_BYTES): one request, one read and one write
   * on each side instead of one per block.
   */
  private async fill(missing: number[]): Promise<void> {
    // A request never asks for more than a budget lets be in flight (a lone block above it still goes).
    const maxRequestBytes = this.job.peers.every((peer) => peer.multiBlock)
      ? Math.min(MAX_REQUEST_BYTES, this.job.budget.limitBytes, ...this.job.peers.map((peer) => peer.budget.limitBytes))
      : 0;
    // A failed block cancels its siblings; a lone block (every small file) has none, and skips
    // building the composite signal.
    const failed = missing.length > 1 ? new AbortController() : undefined;
    const signal = failed ? AbortSignal.any([this.job.signal, failed.signal]) : this.job.signal;
    // Every block in flight (bounded by the bytes-in-flight budgets) listens on it: not a leak.
    if (failed) setMaxListeners(0, signal);
    const tasks = new Set<Promise<void>>();
    let failure: unknown;
    for (let k = 0; k < missing.length && failure === undefined; ) {
      throwIfAborted(this.job.signal);
      const first = missing[k]!;
      const source = this.localSource(first);
      const run = [first];
      let length = this.blockLength(first);
      for (let next = missing[k + 1]; !source && next !== undefined; next = missing[k + run.length]) {
        if (next !== run[run.length - 1]! + 1 || length + this.blockLength(next) > maxRequestBytes || this.localSource(next)) break;
        run.push(next);
        length += this.blockLength(next);
      }
      k += run.length;
      try {
        await this.job.budget.acquire(length, signal);
      } catch (err) {
        failure ??= err;
        break;
      }
      const task = (async () => {
        if (!source || !(await this.copyLocally(first, source))) await this.fetchRemote(run, length, signal);
      })()
        .catch((err: unknown) => {
          failure ??= err;
          failed?.abort();
        })
        .finally(() => {
          this.job.budget.release(length);
          tasks.delete(task);
        });
      tasks.add(task);
    }
    await Promise.allSettled([...tasks]);
    throwIfAborted(this.job.signal);
    if (failure !== undefined) throw failure;
  }

  /** Where block i's bytes may already be on disk: this temp file, or another local file with the same hash. */
  private localSource(i: number): LocalSource | undefined {
    const hash = this.record.blocks[i]!;
    const inTemp = this.present.get(Buffer.from(hash).toString('hex'));
    if (inTemp !== undefined) return { path: undefined, position: inTemp * this.record.blockSize };
    const location = this.job.index.findBlock(hash);
    const holder = location && this.holder(location.path);
    if (!location || !holder || holder.deleted || holder.type !== 'file') return undefined;
    return { path: location.path, position: location.index * holder.blockSize };
  }

  /** Copies block i from where localSource found it; false when it is not there (any more). */
  private async copyLocally(i: number, source: LocalSource): Promise<boolean> {
    const hash = this.record.blocks[i]!;
    const length = this.blockLength(i);
    const data =
      source.path === undefined
        ? await readExactly(this.fd, length, source.position, this.job.buffers)
        : await this.readSource(source.path, source.position, length);
    if (!data || !same(sha256(data), hash)) {
      if (data) {
        this.job.stats.badBlocks++;
        this.job.buffers.recycle(data);
      }
      return false;
    }
    await this.write(data, i * this.record.blockSize);
    this.job.buffers.recycle(data);
    this.present.set(Buffer.from(hash).toString('hex'), i);
    this.job.stats.blocksCopied++;
    this.job.stats.bytesCopied += length;
    return true;
  }

  /**
   * The local record of a file blocks are copied from, read once per file and not once per block
   * (a large file's record holds thousands of hashes); the hash check of each copied block covers staleness.
   */
  private holder(path: string): FileRecord | undefined {
    if (this.holderCache?.path !== path) this.holderCache = { path, record: this.job.index.getLocal(path) };
    return this.holderCache.record;
  }

  private async readSource(path: string, position: number, length: number): Promise<Buffer | undefined> {
    // A second try opens the file again: one moved by the puller may have been renamed into place
    // between looking up where it is and opening it.
    for (let attempt = 0; attempt < 2; attempt++) {
      const source = this.openSource(path);
      source.users++;
      try {
        return await readExactly(await source.fd, length, position, this.job.buffers);
      } catch {
        if (this.sources.get(path) === source) {
          this.sources.delete(path);
          source.closing = true;
        }
      } finally {
        source.users--;
        if (source.closing && source.users === 0) void source.fd.then(closeQuietly, () => undefined);
      }
    }
    return undefined; // moved or changed since it was indexed: fetch from a peer instead
  }

  private openSource(path: string): { fd: Promise<number>; users: number; closing: boolean } {
    let source = this.sources.get(path);
    if (!source) {
      if (this.sources.size >= MAX_SOURCE_FILES) this.closeSources();
      // Never opened through a symlink at the last component; the hash check covers the rest.
      const fd = openFd(this.job.relocated?.(path) ?? join(this.job.root, path), READ_NO_FOLLOW);
      fd.catch(() => undefined); // awaited by the readers; a failure is theirs to handle
      source = { fd, users: 0, closing: false };
      this.sources.set(path, source);
    }
    return source;
  }

  /**
   * Forgets the files blocks were copied from; each is closed once no read uses it (a descriptor
   * closed under a read could be reused by another open and be read in its place).
   */
  private closeSources(): void {
    for (const source of this.sources.values()) {
      source.closing = true;
      if (source.users === 0) void source.fd.then(closeQuietly, () => undefined);
    }
    this.sources.clear();
  }

  private pickPeer(tried: Set<string>): BlockPeer | undefined {
    let best: BlockPeer | undefined;
    for (const peer of this.job.peers) {
      if (!peer.usable() || this.excluded.has(peer.deviceId) || tried.has(peer.deviceId)) continue;
      if (!best || peer.budget.inUse < best.budget.inUse) best = peer;
    }
    return best;
  }

  /** Fetches the adjacent blocks `run` (`length` bytes in all) in one request, from the least busy peer that has them. */
  private async fetchRemote(run: number[], length: number, signal: AbortSignal): Promise<void> {
    const { path, blocks, blockSize } = this.record;
    const offset = run[0]! * blockSize;
    const hash = Buffer.concat(run.map((i) => blocks[i]!));
    const tried = new Set<string>();
    for (;;) {
      throwIfAborted(signal);
      const peer = this.pickPeer(tried);
      if (!peer) throw new FerryError('REQUEST_FAILED', `no connected peer could supply block ${run[0]} of ${path}`);
      tried.add(peer.deviceId);
      let localFailure = false;
      await peer.budget.acquire(length, signal);
      try {
        await this.job.download?.take(length, signal);
        const data = await peer.request({ folderId: this.job.folderId, path, offset, size: length, hash }, signal);
        this.job.stats.blocksRequested += run.length;
        this.job.stats.bytesRequested += length;
        const mismatch = data.length === length ? firstMismatchedBlock(data, blockSize, run.length, (j) => blocks[run[0]! + j]!) : 0;
        if (mismatch >= 0) {
          const bad = run[0]! + mismatch;
          this.job.stats.badBlocks++;
          this.job.logger.warn('block hash mismatch; trying another peer', { path, offset: bad * blockSize, device: peer.deviceId });
          peer.reportBadBlock(path, bad * blockSize);
          continue;
        }
        try {
          await this.write(data, offset);
        } catch (err) {
          // Our disk, not the peer: no other peer would do better, and the peer is not to blame.
          localFailure = true;
          if (isDiskFull(err)) throw new FerryError('DISK_FULL', `the folder's disk is full (writing ${path}): ${(err as Error).message}`, { cause: err });
          if (isFerryError(err)) throw err;
          throw new FerryError('IO', `cannot write the temp file of ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
        peer.recycle(data);
        for (const i of run) this.present.set(Buffer.from(blocks[i]!).toString('hex'), i);
        return;
      } catch (err) {
        if (signal.aborted || localFailure) throw err;
        // The peer no longer has this version (or answers nothing): do not ask it again for this file.
        this.excluded.add(peer.deviceId);
        this.job.logger.debug('block request failed; trying another peer', {
          path,
          offset,
          device: peer.deviceId,
          err: isFerryError(err) ? err : String(err),
        });
      } finally {
        peer.budget.release(length);
      }
    }
  }
}
