// `make bench BENCH=edits`: two Ferry daemons on loopback share one folder of many small files; once B holds it,
// a batch of edits (new content) and a batch of touches (mtime only) spread over the tree are made on A and timed
// until each is on B (the whole path: watcher → scan → index → announce → peer → fetch → install), with both daemons'
// CPU, their memory (RSS, anonymous, the cgroup's peak) and the size of both indexes.
// Sizes by environment: EDIT_FILES (a comma list, run in one go, e.g. 1000,1000000; default BENCH_INDEX_FILES or
// 100000), BENCH_INDEX_EDITS (100 edits and as many touches); EDIT_TREES=dir keeps each generated tree there
// (dir/tree-N, made once with a fast generator; B's copy goes to dir/copy-N) for the next run; EDIT_MEMORY_MAX_MIB=256 runs each daemon in its own memory cgroup (root; v2 or v1)
// with that limit, and reports its peak; EDIT_LOGS=dir writes both daemons' logs there; EDIT_KEEP_HOMES=dir moves both
// daemons' homes (index, keys) to dir/homes-N at the end (to restart A alone on its 1M index, e.g. under --cpu-prof);
// EDIT_OUT=name writes bench/results/name.json and name.md (default edits). A progress line every EDIT_PROGRESS_S (60) s.
// EDIT_SYNC_LIMIT_S=s: a sync not done after s seconds ends the size there with its partial figures (files on B, memory
// peaks, OOM kills; `partial` in the json) and no edits (for a 1M run in a memory cgroup that cannot finish in the time).
// EDIT_IDLE_S=s (60; 0: none): once B holds the folder, A's CPU over s seconds with nothing asking either daemon anything
// (issue 26: an idle daemon's CPU must not grow with the folder), per thread when a thread used more than 10 ms.

import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, rmdir, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient } from '../src/cli/client.js';
import type { StatusReport } from '../src/web/daemon-api.js';
import { FerryPair } from './ferry-pair.js';
import { cpuSeconds, median, percentile, sampleProcess, seconds, until, type ProcessSampler } from './lib.js';
import { ensureTree, restoreFiles, spreadPaths } from './index-scale.js';

const MIB = 1024 * 1024;

export interface DaemonFigures {
  rssMiB: number;
  anonMiB: number;
  /** Highest RssAnon sampled during the scan and sync. */
  anonPeakMiB: number;
  hwmMiB: number;
  /** The daemon's memory cgroup's peak (anonymous and page cache charged to it), when it ran in one. */
  cgroupPeakMiB?: number;
  /** The cgroup's OOM kills (v2 memory.events oom_kill; v1 oom_control oom_kill). */
  oomKills?: number;
  indexMiB: number;
  indexBytesPerFile: number;
  /** B only: its index after a restart, which repacks an index written about as much as it holds (src/index/repack.ts). */
  afterRestart?: { indexMiB: number; indexBytesPerFile: number; restartSeconds: number };
}

export interface BatchFigures {
  count: number;
  p50: number;
  p95: number;
  last: number;
  cpuA: number;
  cpuB: number;
  /** A's CPU seconds per change. */
  cpuPerChangeA: number;
}

export interface EditLatencyRun {
  files: number;
  scanSeconds: number;
  syncSeconds: number;
  memoryMaxMiB?: number;
  a: DaemonFigures;
  b: DaemonFigures;
  /** A's CPU seconds per second while idle after the sync (EDIT_IDLE_S), and its busiest threads' CPU seconds then. */
  idleA?: { seconds: number; cpuPerSecond: number; threads: Record<string, number> };
  /** Absent when the sync was cut short (EDIT_SYNC_LIMIT_S). */
  edits?: BatchFigures;
  touches?: BatchFigures;
  /** EDIT_SYNC_LIMIT_S ran out before B held the folder: how far it got. */
  partial?: { seconds: number; filesOnA: number; filesOnB: number };
}

/** One daemon's memory cgroup: v2 (memory.max, memory.peak) or v1 (memory.limit_in_bytes, memory.max_usage_in_bytes). */
class MemoryCgroup {
  private constructor(
    readonly dir: string,
    private readonly v2: boolean,
    /** The cgroup this process is in, to come back to. */
    private readonly home: string,
  ) {}

  static async create(name: string, maxMiB: number): Promise<MemoryCgroup> {
    const own = await readFile('/proc/self/cgroup', 'utf8');
    const v2Path = /^0::(.*)$/m.exec(own)?.[1];
    const v1Path = /^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$/m.exec(own)?.[1];
    let cgroup: MemoryCgroup;
    if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
      // v2: a sibling of our own cgroup (a process may not sit in an inner node that has controllers on).
      const home = join('/sys/fs/cgroup', v2Path ?? '/');
      cgroup = new MemoryCgroup(join(home, '..', name), true, home);
    } else if (v1Path !== undefined && existsSync('/sys/fs/cgroup/memory')) {
      const home = join('/sys/fs/cgroup/memory', v1Path);
      cgroup = new MemoryCgroup(join(home, name), false, home);
    } else {
      throw new Error('no memory cgroup hierarchy (cgroup v2 or v1 memory) to run the daemons in');
    }
    await mkdir(cgroup.dir, { recursive: true });
    const bytes = String(maxMiB * MIB);
    if (cgroup.v2) {
      await writeFile(join(cgroup.dir, 'memory.max'), bytes);
      await writeFile(join(cgroup.dir, 'memory.swap.max'), '0').catch(() => undefined);
    } else {
      await writeFile(join(cgroup.dir, 'memory.limit_in_bytes'), bytes);
      await writeFile(join(cgroup.dir, 'memory.memsw.limit_in_bytes'), bytes).catch(() => undefined);
    }
    return cgroup;
  }

  /**
   * Runs `spawn` with this process inside the cgroup, so the child starts there (and every page it touches is charged
   * to it), then moves this process back where it was.
   */
  async spawnInside(spawn: () => void): Promise<void> {
    await writeFile(join(this.dir, 'cgroup.procs'), String(process.pid));
    try {
      spawn();
    } finally {
      await writeFile(join(this.home, 'cgroup.procs'), String(process.pid));
    }
  }

  async peakMiB(): Promise<number> {
    const text = await readFile(join(this.dir, this.v2 ? 'memory.peak' : 'memory.max_usage_in_bytes'), 'utf8').catch(() => 'NaN');
    return Number(text.trim()) / MIB;
  }

  async oomKills(): Promise<number> {
    const text = await readFile(join(this.dir, this.v2 ? 'memory.events' : 'memory.oom_control'), 'utf8').catch(() => '');
    return Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? 0);
  }

  async remove(): Promise<void> {
    await rmdir(this.dir).catch(() => undefined); // an empty cgroup (its processes gone)
  }
}

async function processMemory(pid: number): Promise<{ rssMiB: number; anonMiB: number; hwmMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, anonMiB: kib('RssAnon') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

/** One line of where both daemons are: folder state and counts, anonymous memory, the cgroup's peak. */
async function progressLine(
  pair: FerryPair,
  pids: { a: number; b: number },
  cgroups: { a?: MemoryCgroup; b?: MemoryCgroup },
  samplers?: { a: ProcessSampler; b: ProcessSampler },
): Promise<string> {
  const one = async (side: 'a' | 'b'): Promise<string> => {
    const folder = await folderStatus(pair.homes()[side]).catch(() => undefined);
    const memory = await processMemory(pids[side]).catch(() => undefined);
    const anonPeak = samplers ? ` (peak ${samplers[side].peaks().anonMiB.toFixed(0)})` : '';
    const cgroup = cgroups[side];
    const peak = cgroup ? ` cgroup peak ${(await cgroup.peakMiB()).toFixed(0)} MiB, OOM kills ${await cgroup.oomKills()}` : '';
    return `${side.toUpperCase()} ${folder?.state ?? '-'} ${folder?.localFiles ?? '-'} files (need ${folder?.needFiles ?? '-'}), anon ${memory?.anonMiB.toFixed(0) ?? '-'}${anonPeak} MiB${peak}`;
  };
  return `${await one('a')}; ${await one('b')}`;
}

/** Times `changes` (path → a change made on A, and a check that B has it) from when each was made until B has it. */
async function timeBatch(
  pair: FerryPair,
  what: string,
  changes: Array<{ path: string; make: () => Promise<void>; arrived: () => Promise<boolean> }>,
): Promise<BatchFigures> {
  const sampler = pair.sample();
  const made = new Map<string, bigint>();
  for (const change of changes) {
    await change.make();
    made.set(change.path, process.hrtime.bigint());
  }
  const latencies = new Map<string, number>();
  await until(
    async () => {
      for (const change of changes) {
        if (latencies.has(change.path)) continue;
        if (await change.arrived().catch(() => false)) latencies.set(change.path, seconds(made.get(change.path)!));
      }
      return latencies.size === changes.length;
    },
    `${changes.length} ${what} on B`,
    10 * 60_000,
    20,
  );
  const cpu = await sampler.cpuSeconds();
  await sampler.stop();
  const samples = [...latencies.values()];
  return {
    count: samples.length,
    p50: median(samples),
    p95: percentile(samples, 95),
    last: Math.max(...samples),
    cpuA: cpu.a,
    cpuB: cpu.b,
    cpuPerChangeA: cpu.a / samples.length,
  };
}

/** CPU seconds of each thread of `pid` (name and thread ID as the key). */
async function threadCpu(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (name) out.set(`${name}/${tid}`, threadSeconds(stat));
  }
  return out;
}

function threadSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A's CPU over `seconds` while nothing asks it anything (a fixed window: what is measured is the quiet itself). */
async function measureIdle(pid: number, idleSeconds: number): Promise<EditLatencyRun['idleA']> {
  if (!(idleSeconds > 0)) return undefined;
  const before = await threadCpu(pid);
  const start = await cpuSeconds(pid);
  await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
  const used = (await cpuSeconds(pid)) - start;
  const threads: Record<string, number> = {};
  for (const [name, cpu] of await threadCpu(pid)) {
    const delta = cpu - (before.get(name) ?? 0);
    if (delta > 0.01) threads[name] = +delta.toFixed(2);
  }
  return { seconds: idleSeconds, cpuPerSecond: used / idleSeconds, threads };
}

async function folderStatus(home: string): Promise<StatusReport['folders'][number] | undefined> {
  return (await new ControlClient(home).call<StatusReport>('GET', '/status')).folders[0];
}

/** One size: a fresh pair syncs the tree, then edits and touches are timed. */
async function runOnce(options: { files: number; edits: number; treeBase?: string; memoryMaxMiB?: number; log: (line: string) => void }): Promise<EditLatencyRun> {
  const { files, log } = options;
  const work = join(tmpdir(), `ferry-bench-edits-${process.pid}-${files}`);
  const source = options.treeBase ? join(options.treeBase, `tree-${files}`) : join(work, 'tree');
  const target = options.treeBase ? join(options.treeBase, `copy-${files}`) : join(work, 'copy');
  await mkdir(work, { recursive: true });
  await ensureTree(source, files, log);
  await rm(target, { recursive: true, force: true });
  const totals = { files: files + 1, bytes: files * 1024 + String(files).length };
  const pair = new FerryPair(join(work, 'pair'));
  const spread = spreadPaths(files, options.edits * 2);
  const edited = spread.filter((_, i) => i % 2 === 0);
  const touched = spread.filter((_, i) => i % 2 === 1);
  const cgroups: { a?: MemoryCgroup; b?: MemoryCgroup } = {};
  let samplers: { a: ProcessSampler; b: ProcessSampler } | undefined;
  try {
    if (options.memoryMaxMiB) {
      cgroups.a = await MemoryCgroup.create(`ferry-bench-${process.pid}-a`, options.memoryMaxMiB);
      cgroups.b = await MemoryCgroup.create(`ferry-bench-${process.pid}-b`, options.memoryMaxMiB);
    }
    await pair.start(async (side, spawn) => (cgroups[side] ? cgroups[side].spawnInside(spawn) : spawn()));
    const pids = pair.pids();
    samplers = { a: sampleProcess(pids.a, 200), b: sampleProcess(pids.b, 200) };
    const start = process.hrtime.bigint();
    await pair.beginSync(source, target);
    let scanSeconds = NaN;
    const progressEvery = Number(process.env.EDIT_PROGRESS_S ?? 60) * 1000;
    let progressAt = Date.now() + progressEvery;
    const limitSeconds = Number(process.env.EDIT_SYNC_LIMIT_S ?? 0);
    let cut = false;
    await until(
      async () => {
        if (Date.now() >= progressAt) {
          progressAt = Date.now() + progressEvery;
          log(`${files} files, ${seconds(start).toFixed(0)} s: ${await progressLine(pair, pids, cgroups, samplers!)}`);
        }
        if (limitSeconds > 0 && seconds(start) > limitSeconds) return (cut = true);
        if (Number.isNaN(scanSeconds)) {
          const a = await folderStatus(pair.homes().a);
          if (a && a.localFiles === totals.files && a.state !== 'scanning') scanSeconds = seconds(start);
        }
        return pair.complete(totals);
      },
      `B to hold ${totals.files} files`,
      4 * 60 * 60_000,
      1000,
    );
    const syncSeconds = seconds(start);
    const peaks = { a: await samplers.a.stop(), b: await samplers.b.stop() };
    const figures = async (side: 'a' | 'b'): Promise<DaemonFigures> => {
      const memory = await processMemory(pids[side]);
      const indexBytes = (await stat(join(pair.homes()[side], 'index', 'data.mdb'))).size;
      const cgroup = cgroups[side];
      return {
        ...memory,
        anonPeakMiB: Math.max(peaks[side].anonMiB, memory.anonMiB),
        ...(cgroup ? { cgroupPeakMiB: await cgroup.peakMiB(), oomKills: await cgroup.oomKills() } : {}),
        indexMiB: indexBytes / MIB,
        indexBytesPerFile: indexBytes / totals.files,
      };
    };
    const a = await figures('a');
    const b = await figures('b');
    const side = (name: string, d: DaemonFigures): string =>
      `${name}: RSS ${d.rssMiB.toFixed(0)} MiB, anonymous ${d.anonMiB.toFixed(0)} (peak ${d.anonPeakMiB.toFixed(0)}) MiB` +
      (d.cgroupPeakMiB !== undefined ? `, cgroup peak ${d.cgroupPeakMiB.toFixed(0)} MiB, OOM kills ${d.oomKills}` : '') +
      `, index ${d.indexMiB.toFixed(1)} MiB (${(d.indexBytesPerFile / 1024).toFixed(2)} KB/file)`;
    if (cut) {
      const partial = {
        seconds: syncSeconds,
        // A daemon thrashing in its cgroup may not answer: 0 then, the figures above still stand.
        filesOnA: (await folderStatus(pair.homes().a).catch(() => undefined))?.localFiles ?? 0,
        filesOnB: (await folderStatus(pair.homes().b).catch(() => undefined))?.localFiles ?? 0,
      };
      log(`${files} files: sync cut at ${syncSeconds.toFixed(0)} s (EDIT_SYNC_LIMIT_S), A ${partial.filesOnA} files, B ${partial.filesOnB}; scan on A ${scanSeconds.toFixed(1)} s; ${side('A', a)}; ${side('B', b)}`);
      return { files, scanSeconds, syncSeconds: NaN, ...(options.memoryMaxMiB ? { memoryMaxMiB: options.memoryMaxMiB } : {}), a, b, partial };
    }
    const idleA = await measureIdle(pids.a, Number(process.env.EDIT_IDLE_S ?? 60));
    if (idleA) log(`${files} files: A idle ${idleA.seconds} s: ${idleA.cpuPerSecond.toFixed(4)} CPU-s/s ${JSON.stringify(idleA.threads)}`);
    // B restarts: the index its initial sync wrote is repacked at the open; timed until B is connected and complete.
    const restartAt = process.hrtime.bigint();
    await pair.restartB(async (side, spawn) => (cgroups[side] ? cgroups[side].spawnInside(spawn) : spawn()));
    pids.b = pair.pids().b;
    await until(
      async () => {
        if (Date.now() >= progressAt) {
          progressAt = Date.now() + progressEvery;
          log(`${files} files, B restarted ${seconds(restartAt).toFixed(0)} s ago: ${await progressLine(pair, pids, cgroups)}`);
        }
        return pair.complete(totals);
      },
      `B to hold ${totals.files} files after its restart`,
      60 * 60_000,
      1000,
    );
    const restartSeconds = seconds(restartAt);
    const repacked = (await stat(join(pair.homes().b, 'index', 'data.mdb'))).size;
    b.afterRestart = { indexMiB: repacked / MIB, indexBytesPerFile: repacked / totals.files, restartSeconds };
    log(`${files} files: scan on A ${scanSeconds.toFixed(1)} s, sync ${syncSeconds.toFixed(1)} s; ${side('A', a)}; ${side('B', b)}`);
    log(`${files} files: B restarted in ${restartSeconds.toFixed(1)} s, index ${b.afterRestart.indexMiB.toFixed(1)} MiB (${(b.afterRestart.indexBytesPerFile / 1024).toFixed(2)} KB/file)`);

    const stamp = Date.now();
    const edits = await timeBatch(
      pair,
      'edits',
      edited.map((path, i) => {
        const content = `edit ${i} of ${path} at ${stamp}\n`;
        return {
          path,
          make: () => writeFile(join(source, path), content),
          arrived: async () => (await readFile(join(target, path), 'utf8')) === content,
        };
      }),
    );
    // Whole seconds, a day ahead of the files' own: what every file system and the index keep exactly.
    const touchSeconds = Math.floor(stamp / 1000) + 86_400;
    const touches = await timeBatch(
      pair,
      'touches',
      touched.map((path, i) => ({
        path,
        make: () => utimes(join(source, path), touchSeconds + i, touchSeconds + i),
        arrived: async () => Math.floor((await stat(join(target, path))).mtimeMs / 1000) === touchSeconds + i,
      })),
    );
    const batch = (name: string, x: BatchFigures): string =>
      `${x.count} ${name} until on B: p50 ${x.p50.toFixed(2)} s, p95 ${x.p95.toFixed(2)} s, last ${x.last.toFixed(2)} s; ` +
      `CPU A ${x.cpuA.toFixed(2)} s (${(x.cpuPerChangeA * 1000).toFixed(1)} ms each), B ${x.cpuB.toFixed(2)} s`;
    log(`${files} files: ${batch('edits', edits)}`);
    log(`${files} files: ${batch('touches', touches)}`);
    return { files, scanSeconds, syncSeconds, ...(options.memoryMaxMiB ? { memoryMaxMiB: options.memoryMaxMiB } : {}), a, b, ...(idleA ? { idleA } : {}), edits, touches };
  } catch (err) {
    log(pair.logs());
    throw err;
  } finally {
    await samplers?.a.stop();
    await samplers?.b.stop();
    await pair.stop();
    if (process.env.EDIT_LOGS) {
      // Both daemons' logs (BENCH_FERRY_LOG=debug for the detail); B's since its restart.
      const logs = pair.fullLogs();
      await writeFile(join(process.env.EDIT_LOGS, `daemon-a-${files}.log`), logs.a);
      await writeFile(join(process.env.EDIT_LOGS, `daemon-b-${files}.log`), logs.b);
    }
    if (process.env.EDIT_KEEP_HOMES) {
      const keep = join(process.env.EDIT_KEEP_HOMES, `homes-${files}`);
      await rm(keep, { recursive: true, force: true });
      await mkdir(process.env.EDIT_KEEP_HOMES, { recursive: true });
      await rename(join(work, 'pair'), keep).catch((err: unknown) => log(`cannot keep the homes: ${String(err)}`));
    }
    await cgroups.a?.remove();
    await cgroups.b?.remove();
    await restoreFiles(source, edited);
    await restoreFiles(source, touched);
    await rm(target, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true }); // the tree too, unless EDIT_TREES keeps it elsewhere
  }
}

export async function benchEditLatency(options: {
  sizes: number[];
  edits: number;
  treeBase?: string;
  memoryMaxMiB?: number;
  log?: (line: string) => void;
}): Promise<EditLatencyRun[]> {
  const log = options.log ?? ((line: string) => console.log(line));
  const runs: EditLatencyRun[] = [];
  for (const files of options.sizes) {
    runs.push(await runOnce({ files, edits: options.edits, log, ...(options.treeBase ? { treeBase: options.treeBase } : {}), ...(options.memoryMaxMiB ? { memoryMaxMiB: options.memoryMaxMiB } : {}) }));
  }
  return runs;
}
