// Sync benchmarks: the same datasets through two Ferry daemons and two Syncthing instances, timed from a cold start to a verified copy.

import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { changeMiddle, datasets, LARGE_FILE, verifyCopy, type Dataset, type DatasetSizes } from './datasets.js';
import { FerryPair } from './ferry-pair.js';
import { median, percentile, seconds, settlePageCache, sleepMs, until, type MemoryPeaks } from './lib.js';
import { copySeconds } from './limits.js';
import type { Pair } from './pair.js';
import { SyncthingPair } from './syncthing-pair.js';

export type Tool = 'ferry' | 'syncthing';

const MIB = 1024 * 1024;
/** Bytes overwritten in the middle of the large file for `delta`. */
export const DELTA_BYTES = MIB;
const SYNC_TIMEOUT_MS = 30 * 60_000;
const STEP_TIMEOUT_MS = 5 * 60_000;

export interface SessionResult {
  tool: Tool;
  dataset: Dataset['name'];
  /** Which round (0-based) of BENCH_ROUNDS this session ran in. */
  round: number;
  files: number;
  bytes: number;
  /** Cold start to a complete copy, the sender's scan included. */
  seconds: number;
  /** Peaks over the whole session (sync and, for `large`, delta, rename and latency). */
  memory: { a: MemoryPeaks; b: MemoryPeaks };
  /** CPU seconds each side used from t0 until the copy was complete (all threads, user + system). */
  cpu?: { a: number; b: number };
  delta?: { seconds: number; bytesSent: number };
  rename?: { seconds: number; bytesSent: number };
  latency?: { p50: number; p95: number; samples: number[] };
}

export interface SyncOptions {
  sizes: DatasetSizes;
  tools: Tool[];
  only: Set<string>;
  latencyEdits: number;
  /** Sessions per tool and dataset; the tools take turns going first, round after round. */
  rounds: number;
  log: (line: string) => void;
}

function makePair(tool: Tool, base: string): Pair & { logs(): string } {
  return tool === 'ferry' ? new FerryPair(base) : new SyncthingPair(base);
}

/** Settled page cache and a short pause, so no run pays for the previous one's deletions. */
async function settle(): Promise<void> {
  await settlePageCache();
  await sleepMs(1000);
}

async function fileIs(path: string, check: (s: { size: number; mtimeMs: number }) => boolean): Promise<boolean> {
  try {
    return check(await stat(path));
  } catch {
    return false;
  }
}

async function gone(path: string): Promise<boolean> {
  return !(await fileIs(path, () => true));
}

async function deltaStep(pair: Pair, source: string, target: string, dataset: Dataset, seed: string): Promise<{ seconds: number; bytesSent: number }> {
  await settle();
  const before = await pair.bytesSent();
  const start = process.hrtime.bigint();
  const { mtimeMs } = await changeMiddle(join(source, LARGE_FILE), DELTA_BYTES, seed);
  await pair.rescan();
  await until(
    async () =>
      (await fileIs(join(target, LARGE_FILE), (s) => s.mtimeMs === mtimeMs && s.size === dataset.bytes)) &&
      (await pair.complete(dataset)),
    'the changed file on the peer',
    STEP_TIMEOUT_MS,
  );
  const elapsed = seconds(start);
  const bytesSent = (await pair.bytesSent()) - before;
  await verifyCopy(source, target);
  return { seconds: elapsed, bytesSent };
}

const RENAMED = 'renamed.bin';

async function renameStep(pair: Pair, source: string, target: string, dataset: Dataset): Promise<{ seconds: number; bytesSent: number }> {
  await settle();
  const before = await pair.bytesSent();
  const start = process.hrtime.bigint();
  await rename(join(source, LARGE_FILE), join(source, RENAMED));
  await pair.rescan();
  await until(
    async () =>
      (await fileIs(join(target, RENAMED), (s) => s.size === dataset.bytes)) &&
      (await gone(join(target, LARGE_FILE))) &&
      (await pair.complete(dataset)),
    'the renamed file on the peer',
    STEP_TIMEOUT_MS,
  );
  const elapsed = seconds(start);
  const bytesSent = (await pair.bytesSent()) - before;
  await verifyCopy(source, target);
  return { seconds: elapsed, bytesSent };
}

/** Small edits one after another, each waited for on the peer (found by the watchers, no rescan asked). */
async function latencyStep(source: string, target: string, edits: number): Promise<{ p50: number; p95: number; samples: number[] }> {
  const samples: number[] = [];
  for (let i = 0; i < edits; i++) {
    const content = `edit ${i} at ${Date.now()}\n`.repeat(1 + (i % 7));
    const start = process.hrtime.bigint();
    await writeFile(join(source, 'notes.txt'), content);
    await until(async () => (await readFile(join(target, 'notes.txt'), 'utf8').catch(() => '')) === content, `edit ${i} on the peer`, STEP_TIMEOUT_MS, 5);
    samples.push(seconds(start));
    await sleepMs(200);
  }
  return { p50: percentile(samples, 50), p95: percentile(samples, 95), samples };
}

function sessionBase(work: string, tool: Tool, dataset: Dataset, round: number): string {
  return join(work, `${tool}-${dataset.name}-${round}`);
}

async function session(tool: Tool, dataset: Dataset, round: number, source: string, work: string, options: SyncOptions): Promise<SessionResult> {
  const base = sessionBase(work, tool, dataset, round);
  const target = join(base, 'copy');
  await mkdir(base, { recursive: true });
  const pair = makePair(tool, base);
  try {
    await pair.start();
    await settle();
    const sampler = pair.sample();
    const start = process.hrtime.bigint();
    await pair.beginSync(source, target);
    await until(() => pair.complete(dataset), `${tool} to sync ${dataset.name}`, SYNC_TIMEOUT_MS, 50);
    const elapsed = seconds(start);
    const cpu = await sampler.cpuSeconds();
    options.log(`  ${tool} ${dataset.name}: ${elapsed.toFixed(2)} s (CPU A ${cpu.a.toFixed(2)} s, B ${cpu.b.toFixed(2)} s)`);
    await verifyCopy(source, target);
    const result: SessionResult = { tool, dataset: dataset.name, round, files: dataset.files, bytes: dataset.bytes, seconds: elapsed, cpu, memory: undefined as never };
    if (dataset.name === 'large') {
      if (options.only.has('delta')) {
        result.delta = await deltaStep(pair, source, target, dataset, `delta-${tool}-${round}`);
        options.log(`  ${tool} delta: ${result.delta.seconds.toFixed(2)} s, ${(result.delta.bytesSent / MIB).toFixed(2)} MiB sent`);
      }
      if (options.only.has('rename')) {
        result.rename = await renameStep(pair, source, target, dataset);
        options.log(`  ${tool} rename: ${result.rename.seconds.toFixed(2)} s, ${(result.rename.bytesSent / MIB).toFixed(2)} MiB sent`);
      }
      if (options.only.has('latency')) {
        result.latency = await latencyStep(source, target, options.latencyEdits);
        options.log(`  ${tool} latency: p50 ${result.latency.p50.toFixed(2)} s, p95 ${result.latency.p95.toFixed(2)} s`);
      }
    }
    result.memory = await sampler.stop();
    return result;
  } catch (err) {
    options.log(`  ${tool} ${dataset.name} failed: ${(err as Error).message}\n${pair.logs()}`);
    throw err;
  } finally {
    await pair.stop();
    // Leave the source as generated for the next tool.
    await rm(join(source, '.ferry'), { recursive: true, force: true });
    await rm(join(source, '.stfolder'), { recursive: true, force: true });
    await rm(join(source, 'notes.txt'), { force: true });
    await rename(join(source, RENAMED), join(source, LARGE_FILE)).catch(() => undefined);
  }
}

export interface SyncResults {
  sessions: SessionResult[];
  /** `cp -r` + sync of each dataset, seconds: the median over the rounds. */
  copy: Record<string, number>;
}

export async function benchSync(work: string, options: SyncOptions): Promise<SyncResults> {
  const results: SyncResults = { sessions: [], copy: {} };
  const wantsLarge = ['large', 'delta', 'rename', 'latency'].some((n) => options.only.has(n));
  for (const dataset of datasets(options.sizes)) {
    if (dataset.name === 'large' ? !wantsLarge : !options.only.has(dataset.name)) continue;
    const source = join(work, `source-${dataset.name}`);
    options.log(`generating ${dataset.name}: ${dataset.files} files, ${(dataset.bytes / MIB).toFixed(0)} MiB`);
    await dataset.generate(source);
    // Copies are removed only after the dataset's last timed run: on ext4 without a journal (this
    // VM's disk), creating files soon after many were deleted costs up to 0.5 ms of system time per
    // file (the inode allocator checks and skips recently freed inodes), which would charge one
    // tool for the deletions after another's run.
    const rounds = Array.from({ length: options.rounds }, (_, round) => round);
    const copies = [
      source,
      ...rounds.map((round) => join(work, `cp-target-${round}`)),
      ...rounds.flatMap((round) => options.tools.map((tool) => sessionBase(work, tool, dataset, round))),
    ];
    try {
      const copied: number[] = [];
      for (const round of rounds) {
        // This VM's speed drifts over minutes: the tools take turns going first, and medians are reported.
        if (options.rounds > 1) options.log(`  round ${round + 1} of ${options.rounds}`);
        copied.push(await copySeconds(source, join(work, `cp-target-${round}`)));
        options.log(`  cp -r ${dataset.name}: ${copied[copied.length - 1]!.toFixed(2)} s`);
        const order = round % 2 === 0 ? options.tools : [...options.tools].reverse();
        for (const tool of order) results.sessions.push(await session(tool, dataset, round, source, work, options));
      }
      results.copy[dataset.name] = median(copied);
    } finally {
      for (const copy of copies) await rm(copy, { recursive: true, force: true });
    }
  }
  return results;
}
