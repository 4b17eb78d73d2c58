// HashPool: worker threads that hash files in parallel so a multi-core NAS uses its cores and the event loop never stalls.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { FerryError } from '../errors.js';
import { Resource } from '../util/resource.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { BlockProgress, HashRange, HashResult } from './hasher.js';
import type { HashWorkerProgress, HashWorkerReply, HashWorkerRequest } from './hash-worker.js';

export interface HashPoolOptions {
  /** Worker threads. @default os.availableParallelism() */
  workers?: number;
  /** Jobs waiting for a worker before hash() itself waits for room. @default 32 × workers */
  maxQueued?: number;
  /** A worker idle this long is stopped (a thread costs several MiB); the next job starts one. @default 10 s */
  idleMs?: number;
  logger?: Logger;
}

interface Job {
  id: number;
  path: string;
  blockSize: number;
  /** The size the caller expects (from its lstat): small files travel to a worker in batches. */
  expectedBytes: number | undefined;
  /** Part of the file only (see hashInParts). */
  range: HashRange | undefined;
  /** Told of block hashes as they become known (indexes within the part). */
  progress: BlockProgress | undefined;
  signal?: AbortSignal;
  resolve: (result: HashResult) => void;
  reject: (err: Error) => void;
  settled: boolean;
}

interface Slot {
  /** Started on demand, stopped when idle. */
  worker: Worker | null;
  /** Jobs sent to the worker and not answered yet (an aborted one stays until the worker replies). */
  jobs: Map<number, Job>;
  idleTimer: NodeJS.Timeout | null;
}

/**
 * Files at most this large go to a worker up to BATCH_JOBS at a time, in one message each way:
 * a message costs a thread wake-up each way, more than hashing a file of a few KiB.
 */
const BATCH_FILE_BYTES = 256 * 1024;
const BATCH_JOBS = 32;
/** Files at least this large are hashed in parts, one per worker. */
const SPLIT_FILE_BYTES = 64 * 1024 * 1024;

const WORKER_URL = new URL('./hash-worker.js', import.meta.url);
/** The single-file build (packaging/build) defines this as the worker's bundled source, since it has no files beside it. */
declare const FERRY_HASH_WORKER_SOURCE: string | undefined;
const BUNDLED_WORKER = typeof FERRY_HASH_WORKER_SOURCE === 'string' ? FERRY_HASH_WORKER_SOURCE : null;
/** Hashing works on external buffers: a small JS heap per worker is plenty. */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 24 };

function aborted(): FerryError {
  return new FerryError('ABORTED', 'hash aborted');
}

function isSmall(job: Job): boolean {
  return job.expectedBytes !== undefined && job.expectedBytes <= BATCH_FILE_BYTES;
}

export class HashPool extends Resource {
  readonly size: number;
  private readonly maxQueued: number;
  private readonly logger: Logger;
  private readonly idleMs: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly roomWaiters: Array<() => void> = [];
  /**
   * One abort listener per signal, whatever the number of its jobs: a scan has hundreds of files
   * queued under the folder's one signal, and a listener each set off MaxListenersExceededWarning.
   */
  private readonly abortWatches = new Map<AbortSignal, { jobs: Set<Job>; listener: () => void }>();
  private nextId = 1;

  constructor(options: HashPoolOptions = {}) {
    super();
    this.size = Math.max(1, options.workers ?? availableParallelism());
    this.maxQueued = Math.max(1, options.maxQueued ?? this.size * BATCH_JOBS);
    this.logger = options.logger ?? silentLogger;
    this.idleMs = options.idleMs ?? 10_000;
  }

  protected async _open(): Promise<void> {
    for (let i = 0; i < this.size; i++) this.slots.push({ worker: null, jobs: new Map(), idleTimer: null });
  }

  /** Worker threads running now (they start with work and stop when idle). */
  get runningWorkers(): number {
    return this.slots.filter((slot) => slot.worker).length;
  }

  protected async _close(): Promise<void> {
    const closedError = new FerryError('CLOSED', 'hash pool closed');
    for (const job of this.queue.splice(0)) this.settle(job, closedError);
    for (const slot of this.slots) for (const job of slot.jobs.values()) this.settle(job, closedError);
    for (const wake of this.roomWaiters.splice(0)) wake();
    await Promise.all(this.slots.splice(0).map((slot) => this.stopWorker(slot)));
  }

  /**
   * Hashes a file in a worker; waits for room when the queue is full. Rejects with ABORTED or
   * CLOSED. `expectedBytes` (the size the caller saw) lets small files share a worker message.
   * `progress` is told of block hashes (file block indexes) as they become known, before the result.
   */
  async hash(absPath: string, blockSize: number, signal?: AbortSignal, expectedBytes?: number, progress?: BlockProgress): Promise<HashResult> {
    if (expectedBytes !== undefined && expectedBytes >= SPLIT_FILE_BYTES && this.size > 1) {
      return this.hashInParts(absPath, blockSize, expectedBytes, signal, progress);
    }
    return this.enqueue(absPath, blockSize, signal, expectedBytes, undefined, progress);
  }

  /**
   * One large file hashed by every worker at once, each reading its own part: a lone 1 GiB file
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
  ): Promise<HashResult> {
    if (!this.opened) throw new FerryError('CLOSED', 'hash pool is not open');
    while (this.queue.length >= this.maxQueued) {
      if (signal?.aborted) throw aborted();
      await new Promise<void>((wake) => this.roomWaiters.push(wake));
      if (!this.opened) throw new FerryError('CLOSED', 'hash pool closed');
    }
    if (signal?.aborted) throw aborted();
    return new Promise<HashResult>((resolve, reject) => {
      const job: Job = { id: this.nextId++, path: absPath, blockSize, expectedBytes, range, progress, signal, resolve, reject, settled: false };
      if (signal) this.watchAbort(signal, job);
      this.queue.push(job);
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

  private startWorker(slot: Slot): Worker {
    const worker = BUNDLED_WORKER
      ? new Worker(BUNDLED_WORKER, { eval: true, resourceLimits: WORKER_LIMITS })
      : new Worker(WORKER_URL, { resourceLimits: WORKER_LIMITS });
    worker.on('message', (reply: HashWorkerReply | HashWorkerProgress) => ('progress' in reply ? this.onProgress(slot, reply) : this.onReply(slot, reply)));
    worker.on('error', (err) => this.onWorkerDied(slot, worker, err));
    worker.on('exit', (code) => this.onWorkerDied(slot, worker, new Error(`hash worker exited with code ${code}`)));
    slot.worker = worker;
    return worker;
  }

  private async stopWorker(slot: Slot): Promise<void> {
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = null;
    const worker = slot.worker;
    slot.worker = null; // before terminate(), so its 'exit' is not taken for a death
    await worker?.terminate();
  }

  private dispatch(): void {
    const free = this.slots.filter((slot) => slot.jobs.size === 0);
    for (const [i, slot] of free.entries()) {
      if (this.queue.length === 0) {
        if (slot.worker && !slot.idleTimer) {
          slot.idleTimer = setTimeout(() => void this.stopWorker(slot), this.idleMs);
          slot.idleTimer.unref();
        }
        continue;
      }
      if (slot.idleTimer) clearTimeout(slot.idleTimer);
      slot.idleTimer = null;
      // Small files are shared out evenly among the free workers, BATCH_JOBS at most each.
      const share = Math.min(BATCH_JOBS, Math.ceil(this.queue.length / (free.length - i)));
      const jobs = [this.queue.shift()!];
      while (jobs.length < share && isSmall(jobs[0]!) && this.queue[0] && isSmall(this.queue[0])) jobs.push(this.queue.shift()!);
      for (const job of jobs) slot.jobs.set(job.id, job);
      const request: HashWorkerRequest = {
        jobs: jobs.map(({ id, path, blockSize, range, progress }) => ({ id, path, blockSize, ...(range ? { range } : {}), ...(progress ? { progress: true } : {}) })),
      };
      (slot.worker ?? this.startWorker(slot)).postMessage(request);
    }
    while (this.roomWaiters.length > 0 && this.queue.length < this.maxQueued) this.roomWaiters.shift()!();
  }

  private abortJob(job: Job): void {
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    else {
      const slot = this.slots.find((s) => s.jobs.has(job.id));
      // The worker stays busy until it acknowledges the cancel, so it never runs two jobs at once.
      slot?.worker?.postMessage({ cancel: job.id } satisfies HashWorkerRequest);
    }
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

  private onProgress(slot: Slot, { progress }: HashWorkerProgress): void {
    const job = slot.jobs.get(progress.id);
    if (!job || job.settled || !job.progress) return;
    const blocks: Buffer[] = [];
    for (let offset = 0; offset < progress.hashes.byteLength; offset += 32) blocks.push(Buffer.from(progress.hashes, offset, 32));
    try {
      job.progress(progress.first, blocks);
    } catch (err) {
      this.logger.warn('hash progress listener failed', { err: err instanceof Error ? err : String(err) });
    }
  }

  private onReply(slot: Slot, { replies }: HashWorkerReply): void {
    for (const reply of replies) {
      const job = slot.jobs.get(reply.id);
      if (!job) continue;
      slot.jobs.delete(reply.id);
      if (reply.ok) {
        const blocks: Buffer[] = [];
        for (let offset = 0; offset < reply.hashes.byteLength; offset += 32) {
          blocks.push(Buffer.from(reply.hashes, offset, 32));
        }
        const { size, mtimeMs, inode, mode, changedDuringHash, fileSize } = reply;
        this.settle(job, { size, mtimeMs, inode, mode, changedDuringHash, blocks, ...(fileSize !== undefined ? { fileSize } : {}) });
      } else {
        const code = reply.code === 'ABORTED' ? 'ABORTED' : 'IO';
        this.settle(job, new FerryError(code, reply.message));
      }
    }
    if (slot.jobs.size === 0) this.dispatch();
  }

  private onWorkerDied(slot: Slot, worker: Worker, err: Error): void {
    if (slot.worker !== worker) return; // stopped on purpose, or already replaced
    this.logger.error('hash worker died', { err });
    slot.worker = null;
    for (const job of slot.jobs.values()) this.settle(job, new FerryError('INTERNAL', 'hash worker died', { cause: err }));
    slot.jobs.clear();
    void worker.terminate();
    if (!this.closed) this.dispatch(); // the next job starts a new worker
  }
}
