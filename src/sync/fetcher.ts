// Fills one file's temp file: keeps verified blocks of an earlier attempt, copies blocks found locally, fetches the rest from peers in parallel.

import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { FerryError, isDiskFull, isFerryError } from '../errors.js';
import type { FileRecord } from '../index/records.js';
import type { FolderIndex } from '../index/types.js';
import type { RequestParams } from '../protocol/connection.js';
import type { BufferPool } from '../util/buffer-pool.js';
import { NODE_FILE_IO, type FileIo } from '../util/file-io.js';
import type { Logger } from '../util/log.js';
import { throwIfAborted } from '../util/abort.js';
import { AlignedBuffers } from './aligned-buffers.js';
import type { ByteBudget } from './budget.js';
import { verifyBlocks } from './block-hashes.js';
import type { RateLimiter } from './rate-limit.js';
import { SourceFiles } from './source-files.js';
import { TempFile } from './temp-file.js';
import type { HeldDirs } from '../scan/disk-path.js';

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
  /** The folder's held directories (DiskPaths.dirs), for the temp file's directory. */
  dirs?: HeldDirs;
  /**
   * The temp file was prefetched while the sender hashed the file (prefetch.ts): per block, whether
   * it already holds it, verified. Those are kept without reading them again; the rest are fetched.
   */
  prefetched?: readonly boolean[];
}

/**
 * Bytes one request asks for at most. Each request costs both sides a message, a thread-pool read
 * or write and their wake-ups; 1 MiB spans cut those four-fold on 256 KiB blocks, and 2 MiB took
 * the CPU of a `large` session (512 MiB, user method, A + B) from 3.50-3.69 s to 3.19-3.39 s
 * (3 sessions each, alternating with 4 MiB, which gave 3.48-3.61 s: with the peer's 8 MiB in
 * flight only two requests are then out). The prefetch asks as much (prefetch.ts).
 */
export const MAX_REQUEST_BYTES = 2 * 1024 * 1024;

/** The direct-write staging buffers' size: a request's data is written through them in pieces of this. */
const DIRECT_SLOT_BYTES = 1024 * 1024;

/**
 * Direct writes in flight per puller: each holds a thread-pool thread until the disk has its data,
 * and two already reach this disk's speed (1 GiB in 1 MiB writes: 0.73 s with 2, 4 or 8 in flight).
 */
const DIRECT_WRITE_SLOTS = 4;

/** The staging buffers a puller hands to its fetches for direct writes; none where WebAssembly is off (`--jitless`). */
export function directWriteBuffers(): AlignedBuffers | undefined {
  return typeof WebAssembly === 'object' ? new AlignedBuffers(DIRECT_WRITE_SLOTS, DIRECT_SLOT_BYTES) : undefined;
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

/**
 * Builds `record` in its temp file (created or reused); throws when some block cannot be had. True: the
 * temp file is fsynced. False: a new file of one block, whose data must be made durable (fdatasync)
 * before it is renamed into place (the installer does that for a batch at once).
 */
export async function fetchIntoTemp(job: FetchJob): Promise<boolean> {
  const fetch = new FileFetch(job);
  return fetch.run();
}

class FileFetch {
  private readonly record: FileRecord;
  /** Hash (hex) → a block index already correct in the temp file. */
  private readonly present = new Map<string, number>();
  /** Peers that cannot serve this file at all (no such file, changed under them). */
  private readonly excluded = new Set<string>();
  /** Set by run() for the rest of the fetch. */
  private temp!: TempFile;
  /** Local files blocks are copied from, opened once each. */
  private readonly sources: SourceFiles;
  private holderCache: { path: string; record: FileRecord | undefined } | undefined;

  constructor(private readonly job: FetchJob) {
    this.record = job.record;
    this.sources = new SourceFiles(job.root, job.buffers, job.relocated);
  }

  private blockLength(i: number): number {
    return Math.min(this.record.blockSize, this.record.size - i * this.record.blockSize);
  }

  async run(): Promise<boolean> {
    const { job } = this;
    this.temp = await TempFile.open({
      root: job.root,
      tempAbs: job.tempAbs,
      path: this.record.path,
      size: this.record.size,
      singleBlock: this.record.blocks.length <= 1,
      io: job.io ?? NODE_FILE_IO,
      ...(job.dirs ? { dirs: job.dirs } : {}),
      direct: job.direct,
      progress: job.progress,
      stats: job.stats,
      signal: job.signal,
      logger: job.logger,
    });
    try {
      // A new temp file (the usual case) has nothing to check or trim: every block is written into it.
      const missing = this.temp.fresh
        ? this.record.blocks.map((_, i) => i)
        : job.prefetched
          ? this.keepPrefetchedBlocks(job.prefetched)
          : await this.keepVerifiedBlocks();
      if (!this.temp.fresh) await this.temp.truncate(this.record.size);
      await this.fill(missing);
      return await this.temp.finish();
    } finally {
      await this.temp.close();
      this.sources.close();
    }
  }

  /** Blocks the prefetch wrote and verified; returns the indexes still missing. */
  private keepPrefetchedBlocks(prefetched: readonly boolean[]): number[] {
    const missing: number[] = [];
    this.record.blocks.forEach((hash, i) => {
      if (prefetched[i]) this.present.set(Buffer.from(hash).toString('hex'), i);
      else missing.push(i);
    });
    return missing;
  }

  /** Blocks an earlier attempt already wrote (checked by hash); returns the indexes still missing. */
  private async keepVerifiedBlocks(): Promise<number[]> {
    const size = this.temp.currentSize();
    const missing: number[] = [];
    for (let i = 0; i < this.record.blocks.length; i++) {
      const offset = i * this.record.blockSize;
      const length = this.blockLength(i);
      if (offset + length <= size) {
        throwIfAborted(this.job.signal);
        const data = await this.temp.read(length, offset, this.job.buffers);
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
    const location = this.job.index.findBlock(hash, this.record.path);
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
        ? await this.temp.read(length, source.position, this.job.buffers)
        : await this.sources.read(source.path, source.position, length);
    if (!data || !same(sha256(data), hash)) {
      if (data) {
        this.job.stats.badBlocks++;
        this.job.buffers.recycle(data);
      }
      return false;
    }
    await this.temp.write(data, i * this.record.blockSize);
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
        const mismatch = data.length === length ? await verifyBlocks(data, blockSize, run.length, (j) => blocks[run[0]! + j]!) : 0;
        if (mismatch >= 0) {
          const bad = run[0]! + mismatch;
          this.job.stats.badBlocks++;
          this.job.logger.warn('block hash mismatch; trying another peer', { path, offset: bad * blockSize, device: peer.deviceId });
          peer.reportBadBlock(path, bad * blockSize);
          continue;
        }
        try {
          await this.temp.write(data, offset);
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
