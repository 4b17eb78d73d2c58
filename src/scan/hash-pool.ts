// HashPool: hashes files in parallel on libuv's thread pool (reads and WebCrypto digests), a few at a time, so a
// multi-core NAS uses its cores and the event loop never stalls, without a V8 isolate per hashing thread.

import { availableParallelism } from 'node:os';
import { FerryError } from '../errors.js';
import { Resource } from '../util/resource.js';
import { silentLogger, type Logger } from '../util/log.js';
import { performance } from 'node:perf_hooks';
import {
  dropFreeReadBuffers,
  hashFileOnPool,
  hashSmallFileAhead,
  hashSmallFileSync,
  type AbortCheck,
  type BlockProgress,
  type HashRange,
  type HashResult,
  type ReadCallback,
} from './hasher.js';

export interface HashPoolOptions {
  /** Large files (or parts of one) hashed at once: one per core keeps them busy. @default os.availableParallelism() */
  workers?: number;
  /** Jobs waiting to run before hash() itself waits for room. @default 32 × workers */
  maxQueued?: number;
  logger?: Logger;
  /** Times the synchronous small-file hashes, to tell a cold disk (tests pass their own). @default performance.now */
  clock?: () => number;
  /** The read of a small file on a cold disk (tests count and hold them). @default node:fs read */
  read?: ReadCallback;
}

interface Job {
  path: string;
  blockSize: number;
  /** The size the caller expects (from its lstat): small files run more at a time. */
  expectedBytes: number | undefined;
  /** The inode the caller saw (its lstat): on a cold disk small files are read in inode order. */
  inode: number;
  /** Part of the file only (see hashInParts). */
  range: HashRange | undefined;
  /** Told of block hashes as they become known (indexes within the part). */
  progress: BlockProgress | undefined;
  signal?: AbortSignal;
  resolve: (result: HashResult) => void;
  reject: (err: Error) => void;
  settled: boolean;
}

/**
 * Files at most this large are hashed on the event loop's thread with synchronous calls, a few per
 * turn (SLICE_MS): 20,000 files of 1-4 KiB took 0.24-0.30 s of CPU so, against 0.73-0.86 s in two
 * worker threads (messages both ways) and 1.1-2.0 s through the thread pool (four round trips per
 * file: open, stat, read, stat), on this 2-core machine under load.
 */
const SMALL_FILE_BYTES = 256 * 1024;
/** Small files hashed in one turn of the event loop at most this long (one at least). */
const SLICE_MS = 2;
/**
 * A small file hashed here whose read calls took longer than COLD_READ_MS plus its bytes at
 * COLD_READ_BYTES_PER_MS waited for the disk: a read from the page cache is a copy (a few
 * microseconds for 1 KiB), one from the disk a round trip (0.08-2 ms on this VM's disk, p50 0.1 ms;
 * a whole sync hash of a cold 1 KiB file was under 1 ms nine times in ten, so timing the whole hash
 * against 1 ms, as before, seldom saw a cold disk). COLD_OF_LAST of the last COLD_WINDOW files slow
 * (one alone may be this thread preempted on a busy machine): for the next COLD_MS, small files have
 * only their reads sent to the thread pool (hashSmallFileAhead: one round trip each),
 * COLD_READS_IN_FLIGHT at once, so a cold first scan keeps the disk busy with many reads rather
 * than one, without the CPU of a streaming hash per file.
 */
export const COLD_READ_MS = 0.05;
const COLD_READ_BYTES_PER_MS = 512 * 1024;
const COLD_WINDOW = 4;
const COLD_OF_LAST = 3;
const COLD_MS = 1000;
/**
 * Small-file reads under way at once on a cold disk: bounded, whatever the number of files (a buffer
 * of the file's size each, 8 MiB at most). More than the thread pool's threads, so that they find
 * the next read queued when one lands instead of sleeping until the event loop wakes them: 10k-file
 * cold subtrees, 3 runs each alternating, CPU 2.30 s at 8, 2.07 at 16, 1.82 at 32, 1.80 at 64
 * (UV_THREADPOOL_SIZE=8; fastest at 32).
 */
export const COLD_READS_IN_FLIGHT = 32;
const QUEUED_PER_WORKER = 32;
/** Files at least this large are hashed in parts, one per large slot. */
const SPLIT_FILE_BYTES = 64 * 1024 * 1024;

function aborted(): FerryError {
  return new FerryError('ABORTED', 'hash aborted');
}

function bitCount(bits: number): number {
  let count = 0;
  for (let rest = bits; rest !== 0; rest &= rest - 1) count++;
  return count;
}

function isSmall(job: Job): boolean {
  return job.expectedBytes !== undefined && job.expectedBytes <= SMALL_FILE_BYTES && !job.range && !job.progress;
}

export class HashPool extends Resource {
  /** Large jobs at once (one per core by default). */
  readonly size: number;
  private readonly maxQueued: number;
  private readonly logger: Logger;
  /** Queued small files (isSmall), in order; and the rest. Two lists, so neither is searched for the other's jobs. */
  private readonly smallQueue: Job[] = [];
  private readonly largeQueue: Job[] = [];
  private readonly roomWaiters: Array<() => void> = [];
  /** Hashes under way (each settles its job; the pool closes once they have ended). */
  private readonly runs = new Set<Promise<void>>();
  private runningCount = 0;
  /** Small files whose reads are under way on the thread pool now (while the disk is cold). */
  private runningSmall = 0;
  /** The most of those at once since the pool opened. */
  private peakSmall = 0;
  /** Told when the last small-file read under way lands (a closing pool waits for them). */
  private smallDrained: (() => void) | undefined;
  private readonly clock: () => number;
  private readonly read: ReadCallback | undefined;
  /** Until then small files go through the thread pool (performance.now()). */
  private coldUntil = 0;
  /** The last COLD_WINDOW small files hashed here, one bit each (1: slow, the lowest bit the last). */
  private slowBits = 0;
  private peak = 0;
  private sliceScheduled = false;
  /** Aborts the hashes under way when the pool closes. */
  private readonly stopRuns = new AbortController();
  /**
   * One abort listener per signal, whatever the number of its jobs: a scan has hundreds of files
   * queued under the folder's one signal, and a listener each set off MaxListenersExceededWarning.
   */
  private readonly abortWatches = new Map<AbortSignal, { jobs: Set<Job>; listener: () => void }>();

  constructor(options: HashPoolOptions = {}) {
    super();
    this.size = Math.max(1, options.workers ?? availableParallelism());
    this.maxQueued = Math.max(1, options.maxQueued ?? this.size * QUEUED_PER_WORKER);
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? (() => performance.now());
    this.read = options.read;
  }

  protected async _open(): Promise<void> {}

  /** Hashes under way on the thread pool now. */
  get running(): number {
    return this.runningCount;
  }

  /** The most hashes under way on the thread pool at once since the pool opened. */
  get peakRunning(): number {
    return this.peak;
  }

  /** The most small-file reads under way at once on the thread pool since the pool opened (a cold disk). */
  get peakSmallReads(): number {
    return this.peakSmall;
  }

  protected async _close(): Promise<void> {
    const closedError = new FerryError('CLOSED', 'hash pool closed');
    for (const job of [...this.smallQueue.splice(0), ...this.largeQueue.splice(0)]) this.settle(job, closedError);
    for (const wake of this.roomWaiters.splice(0)) wake();
    this.stopRuns.abort();
    await Promise.all([...this.runs]);
    if (this.runningSmall > 0) await new Promise<void>((drained) => (this.smallDrained = drained));
    dropFreeReadBuffers();
  }

  /**
   * Hashes a file; waits for room when the queue is full. Rejects with ABORTED or CLOSED.
   * `expectedBytes` (the size the caller saw) lets small files run more at a time and splits large ones.
   * `progress` is told of block hashes (file block indexes) as they become known, before the result.
   * `inode` (from the same lstat) orders the reads of small files on a cold disk.
   */
  async hash(absPath: string, blockSize: number, signal?: AbortSignal, expectedBytes?: number, progress?: BlockProgress, inode?: number): Promise<HashResult> {
    if (expectedBytes !== undefined && expectedBytes >= SPLIT_FILE_BYTES && this.size > 1) {
      return this.hashInParts(absPath, blockSize, expectedBytes, signal, progress);
    }
    return this.enqueue(absPath, blockSize, signal, expectedBytes, undefined, progress, inode);
  }

  /**
   * One large file hashed in parts at once, each reading its own: a lone 1 GiB file of 1 MiB blocks
   * otherwise kept one core busy and the others idle for the whole scan. The parts must agree on
   * the file they saw, or the whole counts as changed during the hash.
   */
  private async hashInParts(absPath: string, blockSize: number, expectedBytes: number, signal?: AbortSignal, progress?: BlockProgress): Promise<HashResult> {
    const partBytes = Math.ceil(Math.ceil(expectedBytes / blockSize) / this.size) * blockSize;
    const ranges: HashRange[] = Array.from({ length: this.size }, (_, k) => ({
      start: k * partBytes,
      ...(k < this.size - 1 ? { end: (k + 1) * partBytes } : {}),
    }));
    const partProgress = (range: HashRange): BlockProgress | undefined =>
      progress && ((first, blocks) => progress(range.start / blockSize + first, blocks));
    const parts = await Promise.all(ranges.map((range) => this.enqueue(absPath, blockSize, signal, undefined, range, partProgress(range))));
    const first = parts[0]!;
    const size = parts.reduce((sum, part) => sum + part.size, 0);
    const changedDuringHash =
      size !== first.fileSize ||
      parts.some((part) => part.changedDuringHash || part.fileSize !== first.fileSize || part.mtimeMs !== first.mtimeMs || part.inode !== first.inode);
    return { size, mtimeMs: first.mtimeMs, inode: first.inode, mode: first.mode, changedDuringHash, blocks: parts.flatMap((part) => part.blocks) };
  }

  private async enqueue(
    absPath: string,
    blockSize: number,
    signal?: AbortSignal,
    expectedBytes?: number,
    range?: HashRange,
    progress?: BlockProgress,
    inode = 0,
  ): Promise<HashResult> {
    if (!this.opened) throw new FerryError('CLOSED', 'hash pool is not open');
    while (this.queued >= this.maxQueued) {
      if (signal?.aborted) throw aborted();
      await new Promise<void>((wake) => this.roomWaiters.push(wake));
      if (!this.opened) throw new FerryError('CLOSED', 'hash pool closed');
    }
    if (signal?.aborted) throw aborted();
    return new Promise<HashResult>((resolve, reject) => {
      const job: Job = { path: absPath, blockSize, expectedBytes, inode, range, progress, signal, resolve, reject, settled: false };
      if (signal) this.watchAbort(signal, job);
      (isSmall(job) ? this.smallQueue : this.largeQueue).push(job);
      this.dispatch();
    });
  }

  private watchAbort(signal: AbortSignal, job: Job): void {
    let watch = this.abortWatches.get(signal);
    if (!watch) {
      const jobs = new Set<Job>();
      const listener = (): void => {
        this.abortWatches.delete(signal);
        for (const pending of [...jobs]) this.abortJob(pending);
      };
      watch = { jobs, listener };
      this.abortWatches.set(signal, watch);
      signal.addEventListener('abort', listener, { once: true });
    }
    watch.jobs.add(job);
  }

  private unwatchAbort(job: Job): void {
    const watch = job.signal && this.abortWatches.get(job.signal);
    if (!watch) return;
    watch.jobs.delete(job);
    if (watch.jobs.size > 0) return;
    this.abortWatches.delete(job.signal!);
    job.signal!.removeEventListener('abort', watch.listener);
  }

  private get queued(): number {
    return this.smallQueue.length + this.largeQueue.length;
  }

  /**
   * Starts queued large jobs while there is a free slot; small ones wait for the next slice on this
   * thread or, while the disk is cold, have their reads started while fewer than COLD_READS_IN_FLIGHT are.
   */
  private dispatch(): void {
    if (this.closed) return;
    while (this.largeQueue.length > 0 && this.runningCount - this.runningSmall < this.size) this.start(this.largeQueue.shift()!);
    if (this.smallQueue.length > 0) {
      if (this.clock() < this.coldUntil) {
        while (this.smallQueue.length > 0 && this.runningSmall < COLD_READS_IN_FLIGHT) this.startSmall(this.takeLowestInode());
      } else if (!this.sliceScheduled) {
        this.sliceScheduled = true;
        setImmediate(() => this.runSlice());
      }
    }
    while (this.roomWaiters.length > 0 && this.queued < this.maxQueued) this.roomWaiters.shift()!();
  }

  /** Hashes queued small files here, in order, for SLICE_MS at most, then lets the event loop run. */
  private runSlice(): void {
    this.sliceScheduled = false;
    if (this.closed) return;
    const until = this.clock() + SLICE_MS;
    while (this.smallQueue.length > 0) {
      const job = this.smallQueue.shift()!;
      const timing = { clock: this.clock, readMs: 0 };
      let slow = false;
      try {
        const result = hashSmallFileSync(job.path, job.blockSize, SMALL_FILE_BYTES, timing);
        slow = timing.readMs > COLD_READ_MS + (result?.size ?? 0) / COLD_READ_BYTES_PER_MS;
        if (result) this.settle(job, result);
        else {
          job.expectedBytes = undefined; // grew past small since its lstat: streamed on the thread pool instead
          this.largeQueue.push(job);
        }
      } catch (err) {
        this.settle(job, err instanceof FerryError ? err : new FerryError('IO', String(err), { cause: err }));
      }
      const now = this.clock();
      this.slowBits = ((this.slowBits << 1) | (slow ? 1 : 0)) & ((1 << COLD_WINDOW) - 1);
      if (slow && bitCount(this.slowBits) >= COLD_OF_LAST) {
        this.slowBits = 0;
        this.coldUntil = now + COLD_MS;
        break;
      }
      if (now >= until) break;
    }
    this.dispatch();
  }

  /**
   * The queued small file of the lowest inode: the reads of a cold disk go in inode order (on ext4 and
   * most others the order of the files' data on the disk, files written together lie together)
   * rather than the directory's hash order, which sends the disk back and forth within a directory.
   */
  private takeLowestInode(): Job {
    const queue = this.smallQueue;
    let lowest = 0;
    for (let i = 1; i < queue.length; i++) if (queue[i]!.inode < queue[lowest]!.inode) lowest = i;
    return lowest === 0 ? queue.shift()! : queue.splice(lowest, 1)[0]!;
  }

  /** A small file on a cold disk: its read on the thread pool, the rest here (hashSmallFileAhead). */
  private startSmall(job: Job): void {
    this.runningCount++;
    this.runningSmall++;
    this.peak = Math.max(this.peak, this.runningCount);
    this.peakSmall = Math.max(this.peakSmall, this.runningSmall);
    hashSmallFileAhead(
      job.path,
      job.blockSize,
      SMALL_FILE_BYTES,
      (err, result) => {
        this.runningCount--;
        this.runningSmall--;
        if (err) this.settle(job, err);
        else if (result) this.settle(job, result);
        else if (!job.settled && !this.closed) {
          job.expectedBytes = undefined; // grew past small since its lstat: streamed instead
          this.largeQueue.push(job);
        } else this.settle(job, new FerryError('CLOSED', 'hash pool closed'));
        if (this.runningSmall === 0 && this.smallDrained) this.smallDrained();
        this.dispatch();
      },
      this.read,
    );
  }

  private start(job: Job): void {
    this.runningCount++;
    this.peak = Math.max(this.peak, this.runningCount);
    // The job's own signal, or the pool's on close (AbortSignal.any costs more than hashing a small file).
    const stop = this.stopRuns.signal;
    const own = job.signal;
    const signal: AbortCheck = own ? { get aborted() { return own.aborted || stop.aborted; }, get reason() { return own.reason ?? stop.reason; } } : stop;
    const progress: BlockProgress | undefined =
      job.progress &&
      ((first, blocks) => {
        if (job.settled) return;
        try {
          job.progress!(first, blocks);
        } catch (err) {
          this.logger.warn('hash progress listener failed', { err: err instanceof Error ? err : String(err) });
        }
      });
    const run = hashFileOnPool(job.path, job.blockSize, signal, job.range, progress)
      .then(
        (result) => this.settle(job, result),
        (err: unknown) => {
          const closed = this.stopRuns.signal.aborted && !job.signal?.aborted;
          const code = closed ? 'CLOSED' : (err as { code?: unknown }).code === 'ABORTED' ? 'ABORTED' : 'IO';
          this.settle(job, err instanceof FerryError && err.code === code ? err : new FerryError(code, err instanceof Error ? err.message : String(err), { cause: err }));
        },
      )
      .finally(() => {
        this.runs.delete(run);
        this.runningCount--;
        this.dispatch();
      });
    this.runs.add(run);
  }

  private abortJob(job: Job): void {
    const queue = isSmall(job) ? this.smallQueue : this.largeQueue;
    const queued = queue.indexOf(job);
    if (queued >= 0) queue.splice(queued, 1);
    // A running one sees its signal at its next read and ends; its slot stays taken until then.
    this.settle(job, aborted());
    this.dispatch();
  }

  private settle(job: Job, outcome: HashResult | Error): void {
    if (job.settled) return;
    job.settled = true;
    this.unwatchAbort(job);
    if (outcome instanceof Error) job.reject(outcome);
    else job.resolve(outcome);
  }
}
