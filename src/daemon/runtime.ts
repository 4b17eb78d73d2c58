// How the daemon's Node process should be started and its V8 heap tuned: low memory on small NAS
// boxes, without full collections that cost more than they free.

import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';

/**
 * V8's young generation grows to 3 × 16 MiB under allocation bursts (a scan of many small files);
 * small semi-spaces keep the daemon's heap near its live size. 1 MiB meant a ~1 ms scavenge per MiB
 * allocated: syncing 5,000 small files cost 0.66 s of collection on the receiver against 0.36 s
 * with 4 MiB (and 0.25 s with V8's default 16). 2 MiB, once a receiver no longer took a fresh
 * buffer per TLS record (src/protocol/connection.ts): the `large` pair's anonymous peak 175 -> 161
 * MiB, `small` and `mixed` unchanged, no more CPU (bench/results/user-memory.md). V8 reads this
 * only at start-up, so launchers pass it: bin/ferry, `make run`, the packages' service scripts and
 * the tests' daemons.
 */
export const DAEMON_V8_FLAGS = ['--max-semi-space-size=2'] as const;

/**
 * Bytecode a function runs (V8's interrupt budget, in bytes of bytecode executed) before V8 considers it
 * for TurboFan: 4 × V8 11's 66 KiB. A daemon starts cold, and in its first sync TurboFan compiled ~280
 * functions on the receiver (`--trace-opt`, `mixed`): 0.77 s of the compiler threads' CPU plus 0.14 s
 * on the main thread of B's 5.0 s, 0.56 s of A's 3.3 s (perf, 999 Hz). Most of them run a few thousand
 * times in a session and never pay that back; the truly hot ones (framing, hashing loops, the index's
 * encoders) still reach TurboFan within the first seconds. `mixed`, Ferry only, 4 sessions alternating
 * with the default (load 15-25): CPU A+B 6.51-7.49 s against 7.48-8.58 s (bench/results/user-speed-session9.md).
 */
export const TURBOFAN_INTERRUPT_BUDGET = 4 * 66 * 1024;

/**
 * Whether this V8 tiers as measured above: V8 11 and older (Node 20 and 21) go from Sparkplug straight
 * to TurboFan by the interrupt budget. V8 12 and later (Node 22 and up, the packages' Node 24) have
 * Maglev, a cheap mid tier, between them, TurboFan only after 3,000 calls, and no `--interrupt-budget`
 * at all (Node 24 refuses it on its command line and prints an error for it at run time): left alone.
 */
export function tiersByInterruptBudget(v8Version: string = process.versions.v8): boolean {
  return Number(v8Version.split('.')[0]) <= 11;
}

/**
 * Sets the daemon's tiering flag (TURBOFAN_INTERRUPT_BUDGET) while it runs, before its modules load, on
 * a V8 that tiers by that budget (tiersByInterruptBudget): V8 reads the budget whenever it resets a
 * function's counter (`--trace-opt`, `mixed`'s 200 documents: the receiver queued 9 functions for
 * TurboFan after start-up with it set here, 7 with it on node's command line, 36 without). Not in
 * DAEMON_V8_FLAGS: the packages' Node 24 would refuse to start. One given on node's command line (an
 * operator's or a benchmark's choice) wins. Returns whether it set the flag.
 */
export function applyTieringFlags(
  execArgv: readonly string[] = process.execArgv,
  setFlags: (flags: string) => void = setFlagsFromString,
  v8Version: string = process.versions.v8,
): boolean {
  if (!tiersByInterruptBudget(v8Version)) return false;
  if (execArgv.some((arg) => /^--interrupt[-_]budget=/.test(arg))) return false;
  setFlags(`--interrupt-budget=${TURBOFAN_INTERRUPT_BUDGET}`);
  return true;
}

/**
 * libuv's thread pool, which runs the daemon's file system calls: 8 threads, not libuv's 4. A
 * receiver of many small files waits on each file's durable write, and with 4 threads only 4 wait
 * at once, so each journal commit of the disk (which serves every write waiting on it) carried
 * fewer files. Alternating runs of 20,000 × 4 KiB on disk: 12.4–14.1 s with 4 threads, 11.9–13.0 s
 * with 8, 12.0–13.7 s with 16; `mixed` 4.0–4.4 s with 4, 3.9–4.05 s with 8; less CPU with 8 in both.
 * libuv reads the variable once, when its pool starts: the single executables' entry sets it (a
 * value already set wins), and the other launchers pass it (bin/ferry, the tests' daemons).
 *
 * glibc's malloc arenas: 2, not 8 per core. Each thread that allocates (the 8 above, V8's, the hash
 * workers') may get an arena of its own, and memory freed in one stays there for that arena: a
 * sender's anonymous memory outside V8 (TLS buffers, workers) at its peak was 36-44 MiB with the
 * default and 29-31 with 2 (`large`, `mixed`, Ferry-only runs; A+B 161 -> 154 and 182 -> 156 MiB
 * with workers stopping sooner), no more CPU. glibc reads it when the process starts, so only the
 * launchers can set it (bin/ferry, packaging/nas/ferry-launch, the tests' daemons); the single
 * executables' own entry is too late for it.
 *
 * glibc's mmap threshold: fixed at 1 MiB + 4 KiB. Left alone, glibc raises it to the size of each
 * large block freed (up to 32 MiB), and buffers of several MiB then come from the main arena's
 * heap, where a free below the top is never given back: at the peak of `mixed` each daemon held
 * 28-30 MiB of that heap (/proc/PID/smaps). Ferry-only runs, alternating (bench/results/
 * user-memory-anon.notes.md): `mixed` A+B 152-169 -> 144-164 MiB, `large` 139-154 -> 132-143. At
 * 128 KiB (glibc's starting value) memory was the same but each block hashed cost a mapping of its
 * own (WebCrypto copies the block): hashing CPU +20 %, the `large` sender +0.3 s of 1.7; at 1 MiB
 * + 4 KiB hashing costs what it did. Read at start-up like the arenas: launchers set it.
 *
 * glibc's trim threshold: 4 MiB, not 128 KiB. A fixed mmap threshold also fixes the trim threshold at
 * its default, so every free that left 128 KiB at the top of a heap gave it back to the kernel, and
 * the next block-sized buffer took it again a page fault at a time: a `large` receiver made 4,530
 * brk calls for 1 GiB (strace -c), 1.2-2.1 s of system time on its main thread. With 4 MiB kept,
 * alternating Ferry-only runs (issue 29, session 11): `large` 5.3-7.6 s -> 4.2-4.7 s, the receiver's
 * CPU 4.0-6.5 -> 2.8-3.2 s; `mixed` 5.6-6.2 -> 4.9-5.5 s; anon peak A+B `large` unchanged
 * (103-119 -> 115-117 MiB), `mixed` 130-139 -> 142-145 MiB (up to 4 MiB per arena stays).
 */
export const DAEMON_ENV = { UV_THREADPOOL_SIZE: '8', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '1052672', MALLOC_TRIM_THRESHOLD_: '4194304' } as const;

/** Sets DAEMON_ENV's variables that `env` does not have yet. */
export function applyDaemonEnv(env: NodeJS.ProcessEnv = process.env): void {
  for (const [name, value] of Object.entries(DAEMON_ENV)) env[name] ??= value;
}

/**
 * The old generation may grow by this much beyond what survived the last full collection before
 * the next one starts.
 *
 * Why a floor in bytes: V8 counts ArrayBuffer memory allocated since the last full collection
 * against that room. A receiver got one fresh 16 KiB buffer per TLS record; with 20 MiB of room
 * (2 × a 16 MiB heap) the room ran out first, and a 1 GiB transfer cost the receiver 45 full
 * collections and 1.4 s of V8's marking threads (perf, `--trace-gc`); 36 MiB of room took 2. Since
 * sockets read into one buffer of their own (src/protocol/connection.ts) those buffers are gone,
 * and 36 MiB of room was mostly garbage at the peak: the daemons of a 5,000-file sync held 48 MiB
 * of old generation for 20 MiB live. 16 MiB of room (tried with a 50 % floor, below): their
 * anonymous peaks 196-202 -> 169-171 MiB (A+B), `mixed` 192-198 -> 186-200, CPU +0.1-0.3 s of 6.
 */
export const MIN_OLD_GENERATION_ROOM = 16 * 1024 * 1024;

/**
 * Heaps large enough for the floor grow by half their survivors. A daemon's heap holds nothing per file (a receiver's
 * live heap at 1,000,000 files is its heap at 100,000 plus its directory watches), so its room stays the floor's
 * 16 MiB at any folder size, and its peak follows the live size plus that room instead of twice the live size. With
 * 100 % the two daemons of a 1,000,000-file sync in 256 MiB cgroups peaked at 77 and 78 MiB of anonymous memory, with
 * 50 % at 70 and 72; at 100,000 files 66 and 70-72 against 60-61 and 61; `mixed` (Ferry only, 3 sessions each,
 * alternating) 141 -> 135 MiB A+B, and neither `mixed`, `large` nor a 100,000-file scan used more CPU beyond the
 * machine's noise (bench/results/edits-cgroup-session10.md). Left alone, V8 lets the old generation grow to up to
 * 4× the survivors while collections are cheap, and a stream of records is cheap to collect: the daemons of a
 * 20,000-file sync peaked at 150 and 133 MiB of anonymous memory, against about 100 and 80 MiB with twice (bench/).
 * 4× is also the most the floor asks of a tiny heap.
 */
const MIN_GROWING_PERCENT = 50;
const MAX_GROWING_PERCENT = 300;

/** V8's heap growing percent that leaves at least MIN_OLD_GENERATION_ROOM above `liveBytes`. */
export function growingPercentFor(liveBytes: number): number {
  const percent = Math.ceil((MIN_OLD_GENERATION_ROOM / Math.max(1, liveBytes)) * 100);
  return Math.min(MAX_GROWING_PERCENT, Math.max(MIN_GROWING_PERCENT, percent));
}

function isFullCollection(entry: { detail?: { kind?: number } }): boolean {
  return entry.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR;
}

export interface HeapTunerOptions {
  /** @default v8.setFlagsFromString */
  setFlags?: (flags: string) => void;
  /** Bytes in the heap after a full collection. @default v8.getHeapStatistics().used_heap_size */
  liveBytes?: () => number;
}

/**
 * Sets V8's heap growing percent after each full collection from the live size then. The flag is
 * not allowed in NODE_OPTIONS (which the service scripts use) and V8 reads it at each collection,
 * so the daemon sets it itself while it runs.
 */
export class HeapTuner {
  private readonly setFlags: (flags: string) => void;
  private readonly liveBytes: () => number;
  private observer: PerformanceObserver | null = null;
  private percent = 0;

  constructor(options: HeapTunerOptions = {}) {
    this.setFlags = options.setFlags ?? setFlagsFromString;
    this.liveBytes = options.liveBytes ?? (() => getHeapStatistics().used_heap_size);
  }

  start(): void {
    if (this.observer) return;
    this.afterFullCollection();
    this.observer = new PerformanceObserver((list) => {
      const full = list.getEntries().some((entry) => isFullCollection(entry as { detail?: { kind?: number } }));
      if (full) this.afterFullCollection();
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  /** Applies the growing percent for the heap's live size now (called after each full collection). */
  afterFullCollection(): void {
    const percent = growingPercentFor(this.liveBytes());
    if (percent === this.percent) return;
    this.percent = percent;
    this.setFlags(`--heap-growing-percent=${percent}`);
  }

  close(): void {
    this.observer?.disconnect();
    this.observer = null;
  }
}

/** One sample of where the process's memory is (MiB), as MemoryTrace writes it. */
export interface MemorySample {
  at: number;
  rssAnon: number;
  rssFile: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  /** V8's spaces: committed / used. */
  spaces: Record<string, [number, number]>;
  /** Anonymous memory outside V8's heap and its ArrayBuffers: malloc (glibc arenas), LMDB, OpenSSL, thread stacks. */
  native: number;
}

const MIB = 1024 * 1024;

function statusKib(status: string, field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
}

/** Where the process's memory is now (MiB). */
export function memorySample(readStatus: () => string): MemorySample {
  const status = readStatus();
  const usage = process.memoryUsage();
  const spaces: Record<string, [number, number]> = {};
  for (const space of getHeapSpaceStatistics()) {
    spaces[space.space_name] = [+(space.space_size / MIB).toFixed(2), +(space.space_used_size / MIB).toFixed(2)];
  }
  const rssAnon = statusKib(status, 'RssAnon') / 1024;
  return {
    at: Date.now(),
    rssAnon: +rssAnon.toFixed(2),
    rssFile: +(statusKib(status, 'RssFile') / 1024).toFixed(2),
    heapTotal: +(usage.heapTotal / MIB).toFixed(2),
    heapUsed: +(usage.heapUsed / MIB).toFixed(2),
    external: +(usage.external / MIB).toFixed(2),
    arrayBuffers: +(usage.arrayBuffers / MIB).toFixed(2),
    spaces,
    native: +(rssAnon - usage.heapTotal / MIB - usage.external / MIB).toFixed(2),
  };
}

/**
 * FERRY_MEMORY_TRACE=DIR: the daemon samples its memory every 50 ms and appends each new peak of
 * anonymous memory (1 MiB above the last one written) to DIR/memory-PID.jsonl, so a benchmark can
 * say where the peak went. Off unless the variable is set.
 */
export class MemoryTrace {
  private timer: NodeJS.Timeout | null = null;
  private peak = 0;

  constructor(
    private readonly dir: string,
    private readonly everyMs = 50,
  ) {}

  start(): void {
    if (this.timer) return;
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, `memory-${process.pid}.jsonl`);
    this.timer = setInterval(() => {
      const sample = memorySample(() => readFileSync('/proc/self/status', 'utf8'));
      if (sample.rssAnon < this.peak + 1) return;
      this.peak = sample.rssAnon;
      appendFileSync(file, JSON.stringify(sample) + '\n');
    }, this.everyMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
