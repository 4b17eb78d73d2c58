// Benchmark helpers: timing, peak RSS and CPU time of a child process, dataset generation, page-cache settling.

import { execFile } from 'node:child_process';
import { open, readFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

export function seconds(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e9;
}

export interface MemoryPeaks {
  /** VmHWM: the kernel's peak resident set, file-backed pages (the LMDB map) included. */
  hwmMiB: number;
  /** Peak of RssAnon: the process's own memory (heaps, buffers), sampled. */
  anonMiB: number;
  /** Peak of RssFile: mapped files resident (LMDB's map, code); page cache the kernel can drop. */
  fileMiB: number;
}

function statusKb(status: string, field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
}

/** User + system CPU seconds a process (all its threads) has used so far; NaN once it is gone. */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state …: comm may hold spaces, so count fields after the last ')'; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return NaN;
  }
}

/** USER_HZ, which /proc reports CPU times in: 100 on Linux's supported architectures. */
const CLOCK_TICKS_PER_S = 100;

/** What sampleProcess() tracks of one process. */
export interface ProcessSampler {
  /** CPU seconds used since sampling began. */
  cpuSeconds(): Promise<number>;
  /** Stops sampling; returns the memory peaks. */
  stop(): Promise<MemoryPeaks>;
  /** The memory peaks so far. */
  peaks(): MemoryPeaks;
}

/** Samples a process's memory every `everyMs` until stop() is called, and its CPU time on demand. */
export function sampleProcess(pid: number, everyMs = 50): ProcessSampler {
  const peaks: MemoryPeaks = { hwmMiB: 0, anonMiB: 0, fileMiB: 0 };
  const cpuAtStart = cpuSeconds(pid);
  const sample = async (): Promise<void> => {
    try {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      peaks.hwmMiB = Math.max(peaks.hwmMiB, statusKb(status, 'VmHWM') / 1024);
      peaks.anonMiB = Math.max(peaks.anonMiB, statusKb(status, 'RssAnon') / 1024);
      peaks.fileMiB = Math.max(peaks.fileMiB, statusKb(status, 'RssFile') / 1024);
    } catch {
      // the process ended
    }
  };
  const timer = setInterval(() => void sample(), everyMs);
  return {
    async cpuSeconds() {
      return (await cpuSeconds(pid)) - (await cpuAtStart);
    },
    async stop() {
      clearInterval(timer);
      await sample();
      return peaks;
    },
    peaks: () => ({ ...peaks }),
  };
}

/** Sampling of both processes of a pair (see sampleProcess). */
export interface PairSampler {
  /** CPU seconds each process used since sampling began. */
  cpuSeconds(): Promise<{ a: number; b: number }>;
  /** Stops sampling; returns both processes' memory peaks. */
  stop(): Promise<{ a: MemoryPeaks; b: MemoryPeaks }>;
}

export function samplePair(pidA: number, pidB: number): PairSampler {
  const a = sampleProcess(pidA);
  const b = sampleProcess(pidB);
  return {
    cpuSeconds: async () => ({ a: await a.cpuSeconds(), b: await b.cpuSeconds() }),
    stop: async () => ({ a: await a.stop(), b: await b.stop() }),
  };
}

/** Writes `bytes` of incompressible data without holding it in memory; the same seed gives the same bytes. */
export async function writeRandomFile(path: string, bytes: number, seed: number | string = 1): Promise<void> {
  const { createCipheriv, createHash } = await import('node:crypto');
  const key = createHash('sha256').update(`ferry-bench-${seed}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(8 << 20);
  const file = await open(path, 'w');
  try {
    for (let left = bytes; left > 0; left -= zeros.length) {
      const chunk = cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
      await file.write(chunk);
    }
  } finally {
    await file.close();
  }
}

/** `count` small files of `size` bytes in nested folders (100 per folder, 10 folders per parent). */
export async function writeSmallFiles(root: string, count: number, size: number): Promise<void> {
  const content = Buffer.alloc(size);
  for (let i = 0; i < count; i++) {
    if (i % 100 === 0) await mkdir(join(root, `g${Math.floor(i / 1000)}`, `d${Math.floor(i / 100) % 10}`), { recursive: true });
    content.writeUInt32LE(i, 0);
    await writeFile(join(root, `g${Math.floor(i / 1000)}`, `d${Math.floor(i / 100) % 10}`, `f${i}.dat`), content);
  }
}

/** Flushes dirty pages and, as root, drops the page cache, so runs start from the same state. */
export async function settlePageCache(): Promise<'dropped' | 'synced'> {
  await run('sync');
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3\n');
    return 'dropped';
  } catch {
    return 'synced';
  }
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The p-th percentile (0..100) of a list of numbers, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `probe` every `everyMs` until it returns true; throws after `timeoutMs`. */
export async function until(probe: () => Promise<boolean> | boolean, what: string, timeoutMs: number, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await sleepMs(everyMs);
  }
}

export function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows.map((r) => r.map((cell, c) => String(cell).padEnd(widths[c]!)).join('  ')).join('\n');
}
