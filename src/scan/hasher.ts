// Streaming SHA-256 per block of one file, with fixed reusable buffers and detection of files changed mid-hash.

import { createHash, webcrypto, type Hash } from 'node:crypto';
import { closeSync, fstat, fstatSync, lstatSync, openSync, read, readSync } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { promisify } from 'node:util';
import { READ_NO_FOLLOW, closeQuietly, openFd, readFd } from '../util/fd.js';
import { FerryError, ioError } from '../errors.js';

/** What the hashers look at of an AbortSignal (HashPool passes one that also sees its own closing). */
export type AbortCheck = Pick<AbortSignal, 'aborted' | 'reason'>;

function throwIfAborted(signal?: AbortCheck): void {
  if (signal?.aborted) throw new FerryError('ABORTED', 'operation aborted', { cause: signal.reason });
}

/** Bytes per read; large reads keep syscalls and thread-pool hops negligible next to hashing. */
export const HASH_READ_BYTES = 1024 * 1024;

export interface HashResult {
  /** Bytes hashed. */
  size: number;
  /** mtime and inode of the file as hashed (taken before reading; equal after unless `changedDuringHash`). */
  mtimeMs: number;
  inode: number;
  /** Permission bits (mode & 0o7777) as hashed. */
  mode: number;
  /** SHA-256 of each block; empty for an empty file. */
  blocks: Buffer[];
  /** The file's size, mtime or inode moved while it was read: the hashes describe no real state; retry later. */
  changedDuringHash: boolean;
  /** For a part (HashRange): the whole file's size when the part was read. */
  fileSize?: number;
}

type StatLike = { size: number; mtimeMs: number; ino: number; mode: number };

/** The result, flagged as changed when the bytes read or the file's identity moved between before and after. */
function resultOf(before: StatLike, after: StatLike | undefined, bytesRead: number, blocks: Buffer[], expectedBytes = before.size): HashResult {
  const changedDuringHash =
    bytesRead !== expectedBytes ||
    !after ||
    after.size !== before.size ||
    after.mtimeMs !== before.mtimeMs ||
    after.ino !== before.ino;
  return { size: bytesRead, mtimeMs: before.mtimeMs, inode: before.ino, mode: before.mode & 0o7777, blocks, changedDuringHash };
}

/** Read buffers reused across calls in this thread (two per concurrent hash: one read ahead while one is hashed). */
const freeBuffers: Buffer[] = [];
const MAX_FREE_BUFFERS = 8;

function takeBuffer(): Buffer {
  return freeBuffers.pop() ?? Buffer.allocUnsafeSlow(HASH_READ_BYTES);
}

/**
 * Free read buffers are dropped once none was used for this long: hashing runs on the event loop's
 * thread now, which never ends as a worker did, and 4-8 idle megabytes would stay for good.
 */
export const FREE_BUFFERS_IDLE_MS = 10_000;
let dropFree: NodeJS.Timeout | undefined;

function giveBack(buffer: Buffer): void {
  if (freeBuffers.length < MAX_FREE_BUFFERS) freeBuffers.push(buffer);
  if (dropFree) dropFree.refresh();
  else {
    dropFree = setTimeout(() => {
      freeBuffers.length = 0;
      dropFree = undefined;
    }, FREE_BUFFERS_IDLE_MS);
    dropFree.unref();
  }
}

/** Read buffers kept for the next hash (tests). */
export function freeReadBuffers(): number {
  return freeBuffers.length;
}

/** Drops the free read buffers now (a closing HashPool). */
export function dropFreeReadBuffers(): void {
  if (dropFree) clearTimeout(dropFree);
  dropFree = undefined;
  freeBuffers.length = 0;
}

/**
 * Part of a file, for hashing one large file on several threads: from `start` (a multiple of the
 * block size) to `end` or the end of the file. The result covers that part only: `size` is the
 * bytes hashed there and `fileSize` the whole file's size when the part was read.
 */
export interface HashRange {
  start: number;
  end?: number;
}

/**
 * Told of block hashes as they become known while a large file is hashed: blocks `first`… of the
 * part hashed (add the part's first block for the file's index). Called every HASH_PROGRESS_BYTES
 * or so, and once at the end for the rest.
 */
export type BlockProgress = (first: number, blocks: Buffer[]) => void;

/** Bytes of new block hashes between two progress reports (each an announcement to peers). */
export const HASH_PROGRESS_BYTES = 8 * 1024 * 1024;

/** Cuts a byte stream into blocks of `blockSize` and hashes each. */
class BlockHasher {
  readonly blocks: Buffer[] = [];
  private hash: Hash = createHash('sha256');
  private bytesInBlock = 0;
  /** Blocks already reported to `progress`. */
  private reported = 0;

  constructor(
    private readonly blockSize: number,
    private readonly progress?: BlockProgress,
  ) {}

  /** Reports the blocks finished since the last report, when there are enough of them (or `all`). */
  report(all = false): void {
    if (!this.progress) return;
    const fresh = this.blocks.length - this.reported;
    if (fresh === 0 || (!all && fresh * this.blockSize < HASH_PROGRESS_BYTES)) return;
    this.progress(this.reported, this.blocks.slice(this.reported));
    this.reported = this.blocks.length;
  }

  update(data: Buffer): void {
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(this.blockSize - this.bytesInBlock, data.length - offset);
      this.hash.update(offset === 0 && take === data.length ? data : data.subarray(offset, offset + take));
      this.bytesInBlock += take;
      offset += take;
      if (this.bytesInBlock === this.blockSize) this.finishBlock();
    }
  }

  finish(): Buffer[] {
    if (this.bytesInBlock > 0) this.finishBlock();
    return this.blocks;
  }

  private finishBlock(): void {
    this.blocks.push(this.hash.digest());
    this.hash = createHash('sha256');
    this.bytesInBlock = 0;
  }
}

/** The result of a whole file or a range read from `start` up to `position`: the file looked at again, to tell a change while hashing. */
async function resultAfterReads(absPath: string, before: StatLike, start: number, position: number, blocks: Buffer[], range: HashRange | undefined): Promise<HashResult> {
  const after = await lstat(absPath).catch(() => undefined);
  if (!range) return resultOf(before, after, position, blocks);
  const expected = Math.max(0, Math.min(range.end ?? Infinity, before.size) - start);
  return { ...resultOf(before, after, position - start, blocks, expected), fileSize: before.size };
}

/** An abort goes through as it is; anything else is an IO error naming the file. */
function hashingError(absPath: string, err: unknown): Error {
  if ((err as { code?: string }).code === 'ABORTED') return err as Error;
  return ioError(`hashing ${absPath}`, err);
}

/**
 * Hashes a file block by block without holding more than two read buffers. Reads ahead into one buffer
 * on the thread pool while the other is hashed, so disk and CPU overlap.
 */
export async function hashFile(absPath: string, blockSize: number, signal?: AbortCheck, range?: HashRange, progress?: BlockProgress): Promise<HashResult> {
  throwIfAborted(signal);
  let handle;
  try {
    handle = await open(absPath, READ_NO_FOLLOW); // a file swapped for a symlink is not followed
  } catch (err) {
    throw ioError(`opening ${absPath}`, err);
  }
  let current = takeBuffer();
  let ahead = takeBuffer();
  let pendingRead: Promise<{ bytesRead: number }> | undefined;
  try {
    const before = await handle.stat();
    const hasher = new BlockHasher(blockSize, progress);
    const start = range?.start ?? 0;
    // Past the file's size (or the range's end) only to notice a file growing under us.
    const stop = Math.min(range?.end ?? Infinity, before.size + 1);
    const readAt = (buffer: Buffer, at: number): Promise<{ bytesRead: number }> =>
      handle!.read(buffer, 0, Math.max(0, Math.min(buffer.length, stop - at)), at);
    let position = start;
    pendingRead = readAt(current, position);
    for (;;) {
      const { bytesRead } = await pendingRead;
      pendingRead = undefined;
      if (bytesRead === 0) break;
      position += bytesRead;
      if (position > before.size) break; // growing under us: changed, and never read an endless file
      throwIfAborted(signal);
      pendingRead = readAt(ahead, position);
      hasher.update(bytesRead === current.length ? current : current.subarray(0, bytesRead));
      hasher.report();
      [current, ahead] = [ahead, current];
    }
    const blocks = hasher.finish();
    hasher.report(true);
    return await resultAfterReads(absPath, before, start, position, blocks, range);
  } catch (err) {
    throw hashingError(absPath, err);
  } finally {
    // A read may still be in flight after an abort or error: let it land before reusing its buffer.
    if (pendingRead) await pendingRead.catch(() => undefined);
    await handle.close().catch(() => undefined);
    giveBack(current);
    giveBack(ahead);
  }
}

/** The most hashSmallFileSync reads by default. */
export const SYNC_HASH_MAX_BYTES = 4 * 1024 * 1024;

/** Times the reads of hashSmallFileSync: `readMs` is set to the milliseconds its read calls took, on `clock`. */
export interface ReadTiming {
  clock: () => number;
  readMs: number;
}

/**
 * Synchronous variant for small files (it blocks its thread: HashPool runs it a few milliseconds at a time). Returns undefined
 * when the file is larger than `maxBytes`, so the caller can stream it with hashFile instead. With `timing`, the time
 * spent in the read calls alone (a page-cache copy, or a wait for the disk) is told there.
 */
export function hashSmallFileSync(absPath: string, blockSize: number, maxBytes = SYNC_HASH_MAX_BYTES, timing?: ReadTiming): HashResult | undefined {
  let fd: number;
  try {
    fd = openSync(absPath, READ_NO_FOLLOW);
  } catch (err) {
    throw ioError(`opening ${absPath}`, err);
  }
  const buffer = takeBuffer();
  try {
    const before = fstatSync(fd);
    if (before.size > maxBytes) return undefined;
    const hasher = new BlockHasher(blockSize);
    let position = 0;
    for (;;) {
      const started = timing?.clock();
      const bytesRead = readSync(fd, buffer, 0, buffer.length, position);
      if (timing) timing.readMs += timing.clock() - started!;
      if (bytesRead === 0) break;
      position += bytesRead;
      if (position > before.size) break; // growing under us: changed
      hasher.update(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
    }
    let after;
    try {
      after = lstatSync(absPath);
    } catch {
      after = undefined;
    }
    return resultOf(before, after, position, hasher.finish());
  } catch (err) {
    throw ioError(`hashing ${absPath}`, err);
  } finally {
    closeSync(fd);
    giveBack(buffer);
  }
}

/** The read of hashSmallFileAhead: node:fs `read` unless a test counts or holds the reads. */
export type ReadCallback = (
  fd: number,
  buffer: Buffer,
  offset: number,
  length: number,
  position: number,
  callback: (err: NodeJS.ErrnoException | null, bytesRead: number) => void,
) => void;

/**
 * A small file hashed with ONE thread-pool round trip, for a cold disk: the open, the stats and
 * the close run here (the walk's lstat just brought the inode into memory, so they take
 * microseconds), and only the read of the data, the one call that waits for the disk, goes to
 * libuv's pool; the bytes are hashed here when it lands. The streaming hashers take four or five
 * round trips per file (open, fstat, read, lstat, each a promise and two thread wake-ups): on a
 * cold first scan of 100,000 files of 1 KiB that cost the event loop more CPU than all the rest.
 *
 * `done` is called once, later (never before this returns): with the result, with undefined when
 * the file is larger than `maxBytes` (stream it instead), or with an error (IO naming the file).
 * One buffer of the file's size is held while the read is under way.
 */
export function hashSmallFileAhead(
  absPath: string,
  blockSize: number,
  maxBytes: number,
  done: (err: Error | null, result?: HashResult) => void,
  readAt: ReadCallback = read,
): void {
  let fd: number;
  try {
    fd = openSync(absPath, READ_NO_FOLLOW);
  } catch (err) {
    const error = ioError(`opening ${absPath}`, err);
    queueMicrotask(() => done(error));
    return;
  }
  let before: StatLike;
  try {
    before = fstatSync(fd);
  } catch (err) {
    closeQuietly(fd);
    const error = ioError(`hashing ${absPath}`, err);
    queueMicrotask(() => done(error));
    return;
  }
  if (before.size > maxBytes) {
    closeQuietly(fd);
    queueMicrotask(() => done(null, undefined));
    return;
  }
  // One byte more than the size: a file growing under us reads long and counts as changed.
  const buffer = Buffer.allocUnsafe(before.size + 1);
  readAt(fd, buffer, 0, buffer.length, 0, (err, bytesRead) => {
    if (err) {
      closeQuietly(fd);
      done(ioError(`hashing ${absPath}`, err));
      return;
    }
    let result: HashResult;
    try {
      // A short read of a regular file is its end (a file shrinking meanwhile: the sizes disagree, changed).
      const hasher = new BlockHasher(blockSize);
      if (bytesRead > 0) hasher.update(buffer.subarray(0, bytesRead));
      let after;
      try {
        after = lstatSync(absPath);
      } catch {
        after = undefined;
      }
      result = resultOf(before, after, bytesRead, hasher.finish());
    } catch (hashErr) {
      closeQuietly(fd);
      done(ioError(`hashing ${absPath}`, hashErr));
      return;
    }
    closeQuietly(fd);
    done(null, result);
  });
}

const fstatFd = promisify(fstat);

/**
 * Pieces at most this large are hashed on the calling thread: a thread-pool round trip (and
 * WebCrypto's argument checks) cost more than hashing 32 KiB (~20 µs).
 */
export const INLINE_DIGEST_BYTES = 32 * 1024;

/** SHA-256 of `data`: small pieces here, larger ones on libuv's thread pool (WebCrypto copies the bytes first). */
function digest(data: Buffer): Buffer | Promise<Buffer> {
  if (data.length <= INLINE_DIGEST_BYTES) return createHash('sha256').update(data).digest();
  return webcrypto.subtle.digest('SHA-256', data).then((hash) => Buffer.from(hash));
}

/**
 * hashFile without a thread of its own: reads land in pooled buffers through libuv's thread pool,
 * and each block of a read is digested there too (WebCrypto, one job per block), so one file's
 * blocks spread over the pool's threads while the next read is under way. No V8 isolate per
 * hashing thread (a worker thread held 7-8 MiB of anonymous memory). Blocks larger than a read
 * (files above 4 GiB) cannot be digested in pieces this way: those go through hashFile, on the
 * calling thread. A file smaller than a read is read into a buffer of its own size, not a pooled one.
 */
export async function hashFileOnPool(
  absPath: string,
  blockSize: number,
  signal?: AbortCheck,
  range?: HashRange,
  progress?: BlockProgress,
): Promise<HashResult> {
  if (blockSize > HASH_READ_BYTES || HASH_READ_BYTES % blockSize !== 0) return hashFile(absPath, blockSize, signal, range, progress);
  throwIfAborted(signal);
  let fd: number;
  try {
    fd = await openFd(absPath, READ_NO_FOLLOW); // a file swapped for a symlink is not followed
  } catch (err) {
    throw ioError(`opening ${absPath}`, err);
  }
  let current: Buffer | undefined;
  let ahead: Buffer | undefined;
  let pooled = false;
  let pendingRead: Promise<number> | undefined;
  try {
    const before = await fstatFd(fd);
    const start = range?.start ?? 0;
    // Past the file's size (or the range's end) only to notice a file growing under us.
    const stop = Math.min(range?.end ?? Infinity, before.size + 1);
    const span = Math.max(0, stop - start);
    if (span < HASH_READ_BYTES) {
      current = Buffer.allocUnsafe(span); // a small file: one read, no pooled megabyte
    } else {
      pooled = true;
      current = takeBuffer();
      ahead = takeBuffer();
    }
    const blocks: Buffer[] = [];
    let reported = 0;
    const report = (all: boolean): void => {
      const fresh = blocks.length - reported;
      if (!progress || fresh === 0 || (!all && fresh * blockSize < HASH_PROGRESS_BYTES)) return;
      progress(reported, blocks.slice(reported));
      reported = blocks.length;
    };
    // A short read ends the loop: at the end of the file, or the file shrank (then the sizes disagree: changed).
    const readAt = async (buffer: Buffer, at: number): Promise<number> =>
      (await readFd(fd, buffer, 0, Math.max(0, Math.min(buffer.length, stop - at)), at)).bytesRead;
    let position = start;
    pendingRead = readAt(current, position);
    for (;;) {
      const bytesRead = await pendingRead;
      pendingRead = undefined;
      if (bytesRead === 0) break;
      position += bytesRead;
      if (position > before.size) break; // growing under us: changed, and never read an endless file
      throwIfAborted(signal);
      const digests: Array<Buffer | Promise<Buffer>> = [];
      for (let offset = 0; offset < bytesRead; offset += blockSize) digests.push(digest(current.subarray(offset, Math.min(bytesRead, offset + blockSize))));
      // The next read runs while this one's blocks are digested (each read holds whole blocks: reads start on block boundaries).
      if (ahead && bytesRead === current.length) pendingRead = readAt(ahead, position);
      blocks.push(...(await Promise.all(digests)));
      report(false);
      if (!pendingRead) break;
      [current, ahead] = [ahead!, current];
    }
    report(true);
    return await resultAfterReads(absPath, before, start, position, blocks, range);
  } catch (err) {
    throw hashingError(absPath, err);
  } finally {
    // A read may still be in flight after an abort or error: let it land before reusing its buffer.
    if (pendingRead) await pendingRead.catch(() => undefined);
    closeQuietly(fd);
    if (pooled) {
      giveBack(current!);
      giveBack(ahead!);
    }
  }
}
