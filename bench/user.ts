// The user's method (issue 29), one for Ferry and Syncthing: both tools' folders are shared and connected while EMPTY;
// the dataset is prepared outside the folder on the same file system, read once (page cache settled), then MOVED (one
// rename) into the sender's folder; the clock stops when the receiver's tree lists every file at its final name and
// size, seen by the same outside watcher for both tools (inotifywait on B's tree, confirmed by one walk; no tool's
// status in the timing); the contents are compared untimed afterwards (both trees hashed). Also the initial scan of
// a folder added with its files present (issue 26), for both tools in the same run.

import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { datasets, type DatasetSizes } from './datasets.js';
import { FerryPair } from './ferry-pair.js';
import { cpuSeconds, median, run, seconds, settlePageCache, sleepMs, until, writeSmallFiles } from './lib.js';
import type { Pair } from './pair.js';
import { formatBreakdown, smapsBreakdown, type SmapsBreakdown } from './smaps.js';
import { SyncthingPair } from './syncthing-pair.js';
import type { Tool } from './sync.js';

const MIB = 1024 * 1024;
/** Inside each tool's folder the dataset arrives as this one directory. */
const MOVED = 'data';
const READY_MS = 5 * 60_000;

export type UserDatasetName = 'large' | 'small' | 'mixed' | 'scale' | 'real';

export interface UserDataset {
  name: UserDatasetName;
  generate(dir: string): Promise<void>;
}

export interface UserSizes extends DatasetSizes {
  scaleFiles: number;
  /** System directories copied (cp -a, symlinks kept) into the `real` tree. */
  realDirs: string[];
}

export function userSizesFromEnv(base: DatasetSizes, env = process.env): UserSizes {
  return {
    ...base,
    scaleFiles: Number(env.BENCH_SCALE_FILES ?? 100_000),
    realDirs: (env.BENCH_REAL_DIRS ?? '/usr/share/doc,/usr/share/zoneinfo,/usr/share/locale,/usr/lib/python3,/usr/lib/x86_64-linux-gnu/perl-base')
      .split(',')
      .filter(Boolean),
  };
}

export function userDatasets(sizes: UserSizes): UserDataset[] {
  return [
    ...datasets(sizes).map((d) => ({ name: d.name, generate: d.generate })),
    { name: 'scale', generate: async (dir) => writeSmallFiles(dir, sizes.scaleFiles, 1024) },
    {
      name: 'real',
      generate: async (dir) => {
        for (const src of sizes.realDirs) {
          const into = join(dir, src.replace(/^\/+/, '').replace(/\//g, '_'));
          await mkdir(dir, { recursive: true });
          // --no-preserve=ownership: the copy is this user's; symlinks are copied as symlinks.
          await run('cp', ['-a', '--no-preserve=ownership', src, into]).catch((err: Error) => {
            // Unreadable entries are left out; what was copied is the dataset.
            console.log(`  real tree: cp -a ${src}: ${err.message.split('\n').slice(0, 3).join(' ')}`);
          });
        }
      },
    },
  ];
}

interface Entry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  /** Files: SHA-256 of the content; symlinks: the target. */
  digest?: string;
}

async function fileHash(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MIB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const TOOL_NAME = /^(\.ferry|\.stfolder|\.stversions|\.stignore)$|^\.syncthing\.|^~syncthing~/;

/** Every entry under `root` by relative path; `hash`: file contents hashed (which also reads them into the page cache). */
export async function manifest(root: string, hash: boolean): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const dirent of await readdir(dir, { withFileTypes: true })) {
      if (TOOL_NAME.test(dirent.name)) continue;
      const path = rel ? `${rel}/${dirent.name}` : dirent.name;
      const full = join(dir, dirent.name);
      if (dirent.isDirectory()) {
        out.set(path, { type: 'dir', size: 0 });
        await walk(full, path);
      } else if (dirent.isSymbolicLink()) out.set(path, { type: 'symlink', size: 0, digest: await readlink(full) });
      else if (dirent.isFile()) {
        const size = (await lstat(full)).size;
        out.set(path, { type: 'file', size, ...(hash ? { digest: await fileHash(full).catch(() => 'unreadable') } : {}) });
      } else out.set(path, { type: 'other', size: 0 });
    }
  };
  await walk(root, '');
  return out;
}

export interface TreeDiff {
  entries: number;
  missing: { file: number; dir: number; symlink: number; other: number };
  differing: number;
  extra: number;
  /** The first few differences, for the report. */
  examples: string[];
}

export function compareTrees(source: Map<string, Entry>, copy: Map<string, Entry>): TreeDiff {
  const diff: TreeDiff = { entries: source.size, missing: { file: 0, dir: 0, symlink: 0, other: 0 }, differing: 0, extra: 0, examples: [] };
  const note = (line: string): void => void (diff.examples.length < 10 && diff.examples.push(line));
  for (const [path, want] of source) {
    const got = copy.get(path);
    if (!got) {
      diff.missing[want.type]++;
      note(`missing ${want.type} ${path}`);
    } else if (got.type !== want.type || got.size !== want.size || got.digest !== want.digest) {
      diff.differing++;
      note(`differs ${path}: ${want.type} ${want.size} / ${got.type} ${got.size}`);
    }
  }
  for (const path of copy.keys()) {
    if (!source.has(path)) {
      diff.extra++;
      note(`extra ${path}`);
    }
  }
  return diff;
}

/** Peaks of memory summed over each side's processes, sampled together; CPU per side. */
export interface SideMemory {
  anonMiB: number;
  rssMiB: number;
}

interface GroupSampler {
  cpu(): Promise<{ a: number; b: number }>;
  stop(): Promise<{ a: SideMemory; b: SideMemory; total: SideMemory }>;
  /** BENCH_SMAPS=1: each process's mappings (bench/smaps.ts) at its first sample and at its highest anonymous memory. */
  smaps(): string[];
}

function statusKb(status: string, field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
}

function sampleGroups(groups: { a: number[]; b: number[] }, everyMs = 100): GroupSampler {
  const peaks = { a: { anonMiB: 0, rssMiB: 0 }, b: { anonMiB: 0, rssMiB: 0 }, total: { anonMiB: 0, rssMiB: 0 } };
  const cpuOf = async (pids: number[]): Promise<number> => {
    let sum = 0;
    for (const pid of pids) sum += (await cpuSeconds(pid)) || 0;
    return sum;
  };
  const cpuStart = Promise.all([cpuOf(groups.a), cpuOf(groups.b)]);
  const mappings = new Map<number, { first: SmapsBreakdown; firstKiB: number; peak: SmapsBreakdown; anonKiB: number; rssPeak?: SmapsBreakdown; rssKiB: number }>();
  const withSmaps = Boolean(process.env.BENCH_SMAPS);
  const side = async (pids: number[]): Promise<SideMemory> => {
    const now = { anonMiB: 0, rssMiB: 0 };
    for (const pid of pids) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
      const anonKiB = statusKb(status, 'RssAnon');
      const rssKiB = statusKb(status, 'VmRSS');
      const seen = mappings.get(pid);
      if (withSmaps && (!seen || anonKiB >= seen.anonKiB + 1024)) {
        const b = await smapsBreakdown(pid);
        mappings.set(pid, { first: seen?.first ?? b, firstKiB: seen?.firstKiB ?? anonKiB, peak: b, anonKiB,
          ...(seen && rssKiB < seen.rssKiB ? { rssPeak: seen.rssPeak, rssKiB: seen.rssKiB } : { rssPeak: b, rssKiB }) });
      } else if (withSmaps && seen && rssKiB >= seen.rssKiB + 1024) {
        // The file-backed pages (the LMDB map, code touched late) can peak after the anonymous memory does.
        seen.rssPeak = await smapsBreakdown(pid);
        seen.rssKiB = rssKiB;
      }
      now.anonMiB += anonKiB / 1024;
      now.rssMiB += statusKb(status, 'VmRSS') / 1024;
    }
    return now;
  };
  let busy = false;
  const sample = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    const [a, b] = await Promise.all([side(groups.a), side(groups.b)]);
    for (const [peak, now] of [
      [peaks.a, a],
      [peaks.b, b],
      [peaks.total, { anonMiB: a.anonMiB + b.anonMiB, rssMiB: a.rssMiB + b.rssMiB }],
    ] as const) {
      peak.anonMiB = Math.max(peak.anonMiB, now.anonMiB);
      peak.rssMiB = Math.max(peak.rssMiB, now.rssMiB);
    }
    busy = false;
  };
  const timer = setInterval(() => void sample(), everyMs);
  return {
    async cpu() {
      const [a0, b0] = await cpuStart;
      return { a: (await cpuOf(groups.a)) - a0, b: (await cpuOf(groups.b)) - b0 };
    },
    async stop() {
      clearInterval(timer);
      busy = false;
      await sample();
      return peaks;
    },
    smaps() {
      return [...mappings].map(([pid, m]) => {
        const side = groups.a.includes(pid) ? 'A' : 'B';
        const rss = m.rssPeak ? `\n      at ${(m.rssKiB / 1024).toFixed(1)} MiB RSS: ${formatBreakdown(m.rssPeak)}` : '';
        return `${side} ${pid} first at ${(m.firstKiB / 1024).toFixed(1)} MiB anon: ${formatBreakdown(m.first)}\n      at ${(m.anonKiB / 1024).toFixed(1)} MiB anon: ${formatBreakdown(m.peak)}${rss}`;
      });
    },
  };
}

/**
 * Watches `root` with inotifywait (recursive) and resolves when every file of `want` (relative path → size) is there
 * at its final name and size; then one walk confirms it (a miss sends it back to waiting). New directories are read
 * once when they appear (files moved in before their watch was added); if no file completes for `stallMs`, a walk
 * catches what events missed, and after `giveUpMs` without progress it resolves incomplete.
 */
export class ArrivalWatcher {
  private child!: ChildProcess;
  private readonly done = new Set<string>();
  private lastProgress = process.hrtime.bigint();
  private finishedAt: bigint | undefined;
  private stopping = false;
  private resolveFinished!: () => void;
  readonly finished = new Promise<void>((r) => (this.resolveFinished = r));
  events = 0;

  constructor(
    private readonly root: string,
    private readonly want: Map<string, number>,
    private readonly stallMs = 5_000,
    private readonly giveUpMs = 120_000,
  ) {}

  async start(): Promise<void> {
    this.child = spawn('inotifywait', ['-m', '-r', '-e', 'close_write,moved_to,create', '--format', '%e %w%f', this.root], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      this.child.once('error', reject);
      this.child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('Watches established')) resolve();
      });
      this.child.once('exit', (code) => reject(new Error(`inotifywait exited ${code}: ${err}`)));
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => void this.onEvent(line));
    this.child.once('exit', (code, signal) => {
      if (!this.stopping) console.log(`  inotifywait on ${this.root} ended (${signal ?? code}): arrivals are now seen by a walk every ${this.stallMs / 1000} s`);
    });
    void this.stallLoop();
  }

  pid(): number {
    return this.child.pid!;
  }

  /** Seconds from `start` to the moment the last file arrived (as confirmed), and how many arrived. */
  result(start: bigint): { seconds: number; arrived: number; complete: boolean } {
    const end = this.finishedAt ?? this.lastProgress;
    return { seconds: Number(end - start) / 1e9, arrived: this.done.size, complete: this.finishedAt !== undefined };
  }

  private rel(path: string): string {
    return path.slice(this.root.length + 1);
  }

  private async check(rel: string): Promise<void> {
    const size = this.want.get(rel);
    if (size === undefined || this.done.has(rel)) return;
    const s = await lstat(join(this.root, rel)).catch(() => undefined);
    if (!s || !s.isFile() || s.size !== size) return;
    this.done.add(rel);
    this.lastProgress = process.hrtime.bigint();
    if (this.done.size === this.want.size) await this.confirm(this.lastProgress);
  }

  private async readDir(rel: string): Promise<void> {
    const names = await readdir(join(this.root, rel)).catch(() => [] as string[]);
    for (const name of names) {
      const child = rel ? `${rel}/${name}` : name;
      if (this.want.has(child)) await this.check(child);
      else {
        const s = await lstat(join(this.root, child)).catch(() => undefined);
        if (s?.isDirectory()) await this.readDir(child);
      }
    }
  }

  private async onEvent(line: string): Promise<void> {
    this.events++;
    const space = line.indexOf(' ');
    const events = line.slice(0, space);
    const rel = this.rel(line.slice(space + 1));
    if (events.includes('ISDIR')) await this.readDir(rel);
    else await this.check(rel);
  }

  /** One walk: every wanted file at its size. */
  private async confirm(at: bigint): Promise<void> {
    if (this.finishedAt !== undefined) return;
    for (const [rel, size] of this.want) {
      const s = await lstat(join(this.root, rel)).catch(() => undefined);
      if (!s || !s.isFile() || s.size !== size) {
        this.done.delete(rel);
        return;
      }
    }
    this.finishedAt = at;
    this.resolveFinished();
  }

  /** Catches what events missed; also the only check left if inotifywait dies (killed, out of watches), so a session never hangs. */
  private async stallLoop(): Promise<void> {
    while (this.finishedAt === undefined && !this.stopping) {
      await sleepMs(this.stallMs);
      if (this.finishedAt !== undefined || this.stopping) return;
      const quietMs = Number(process.hrtime.bigint() - this.lastProgress) / 1e6;
      const watching = this.child.exitCode === null && this.child.signalCode === null;
      if (watching && quietMs < this.stallMs) continue;
      await this.readDir('');
      if (Number(process.hrtime.bigint() - this.lastProgress) / 1e6 > this.giveUpMs) {
        this.resolveFinished();
        return;
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      await exited;
    }
  }
}

export interface UserSession {
  tool: Tool;
  dataset: UserDatasetName;
  round: number;
  files: number;
  bytes: number;
  /** Move into A's folder → every file at its final name and size in B's tree. */
  seconds: number;
  complete: boolean;
  arrived: number;
  cpu: { a: number; b: number };
  memory: { a: SideMemory; b: SideMemory; total: SideMemory };
  /** The outside check's own cost over the timed window: inotifywait's CPU and this process's. */
  watcherCpu: { inotifywait: number; bench: number; events: number };
  diff: TreeDiff;
}

function makePair(tool: Tool, base: string): Pair & { logs(): string } {
  return tool === 'ferry' ? new FerryPair(base) : new SyncthingPair(base);
}

async function userSession(tool: Tool, dataset: UserDataset, round: number, source: string, work: string, log: (l: string) => void): Promise<UserSession> {
  const base = join(work, `user-${tool}-${dataset.name}-${round}`);
  const folderA = join(base, 'folder-a');
  const folderB = join(base, 'folder-b');
  const staging = join(base, 'staging');
  await mkdir(folderA, { recursive: true });
  await mkdir(folderB, { recursive: true });
  const pair = makePair(tool, base);
  try {
    await pair.start();
    await pair.beginSync(folderA, folderB);
    await until(() => pair.readyEmpty(), `${tool}: empty folder shared and connected`, READY_MS, 100);
    // The dataset outside the folder, on the same file system; synced, then read once (hashed: the expected contents).
    await run('cp', ['-a', source, staging]);
    await run('sync');
    const expected = await manifest(staging, true);
    const want = new Map<string, number>();
    let bytes = 0;
    for (const [path, e] of expected) {
      if (e.type !== 'file') continue;
      want.set(`${MOVED}/${path}`, e.size);
      bytes += e.size;
    }
    const watcher = new ArrivalWatcher(folderB, want);
    await watcher.start();
    try {
      const sampler = sampleGroups(pair.processes());
      const traces = await straceSides(pair.processes(), `${tool}-${dataset.name}-${round}`);
      const threads0 = process.env.BENCH_THREADS ? await threadTimes(pair.processes()) : undefined;
      const waits = process.env.BENCH_WAITS ? sampleWaits(pair.processes()) : undefined;
      const watcherCpu0 = await cpuSeconds(watcher.pid());
      const bench0 = process.cpuUsage();
      const start = process.hrtime.bigint();
      const startEpochMs = Date.now();
      await rename(staging, join(folderA, MOVED));
      await watcher.finished;
      const timed = watcher.result(start);
      await traces.stop();
      if (waits) {
        // Epoch times (as strace -ttt prints them) of the move and of the last file's arrival, to align traces with.
        log(`  timeline: moved at ${(startEpochMs / 1000).toFixed(6)}, last file at ${(startEpochMs / 1000 + timed.seconds).toFixed(6)}`);
        log(`  waits: ${formatWaits(await waits.stop(), timed.seconds)}`);
      }
      if (threads0) log(`  threads (user/sys s): ${threadDelta(threads0, await threadTimes(pair.processes()))}`);
      const bench1 = process.cpuUsage(bench0);
      const watcherCpu = { inotifywait: (await cpuSeconds(watcher.pid())) - watcherCpu0, bench: (bench1.user + bench1.system) / 1e6, events: watcher.events };
      const cpu = await sampler.cpu();
      const memory = await sampler.stop();
      for (const line of sampler.smaps()) log(`    smaps ${line}`);
      await watcher.stop();
      if (process.env.BENCH_LOG_DIR && pair instanceof FerryPair) {
        await mkdir(process.env.BENCH_LOG_DIR, { recursive: true });
        const logs = pair.fullLogs();
        for (const side of ['a', 'b'] as const) await writeFile(join(process.env.BENCH_LOG_DIR, `${tool}-${dataset.name}-${round}-${side}.log`), logs[side]);
      }
      // Untimed: both trees hashed and compared.
      const copy = await manifest(join(folderB, MOVED), true);
      const diff = compareTrees(expected, copy);
      log(
        `  ${tool} ${dataset.name}: ${timed.seconds.toFixed(2)} s${timed.complete ? '' : ` INCOMPLETE (${timed.arrived} of ${want.size} files)`}` +
          ` (CPU A ${cpu.a.toFixed(2)} s, B ${cpu.b.toFixed(2)} s; anon peak A+B ${memory.total.anonMiB.toFixed(0)} MiB, RSS ${memory.total.rssMiB.toFixed(0)} MiB;` +
          ` watcher CPU ${watcherCpu.inotifywait.toFixed(2)} + ${watcherCpu.bench.toFixed(2)} s, ${watcherCpu.events} events)` +
          (diff.examples.length ? `\n    differences: missing ${JSON.stringify(diff.missing)}, differing ${diff.differing}, extra ${diff.extra}: ${diff.examples.slice(0, 4).join('; ')}` : ''),
      );
      return {
        tool, dataset: dataset.name, round, files: want.size, bytes, seconds: timed.seconds, complete: timed.complete, arrived: timed.arrived,
        cpu, memory, watcherCpu, diff,
      };
    } finally {
      await watcher.stop();
    }
  } catch (err) {
    log(`  ${tool} ${dataset.name} failed: ${(err as Error).message}\n${pair.logs()}`);
    throw err;
  } finally {
    await pair.stop();
  }
}

/** Where one side's threads spent the timed window, from sampling their states (see sampleWaits). */
export interface SideWaits {
  /** Samples taken (every thread of the side is read at each). */
  samples: number;
  /** Per thread group (main, libuv pool, hash workers, other): thread-samples running or runnable (R), in
   * uninterruptible sleep (D: disk, fsync), and sleeping (S: waiting for an event: the network, a timer, a lock). */
  states: Map<string, { R: number; D: number; S: number }>;
  /** Seconds the side's threads waited on a run queue for a CPU (sum of /proc/.../schedstat run_delay deltas), and ran. */
  runDelay: number;
  ran: number;
}

/** The thread group a thread's name puts it in. */
function threadGroup(name: string, main: boolean): string {
  if (main) return 'main';
  if (name.startsWith('libuv-worker')) return 'pool';
  if (name.startsWith('node') || name.startsWith('V8') || name.startsWith('DelayedTask')) return 'v8';
  return name.replace(/[0-9]+$/, '') || 'other';
}

/**
 * BENCH_WAITS: every `everyMs` each thread of each side is read (/proc/<pid>/task/<tid>/stat state and schedstat):
 * on a busy machine wall time is spent running (R, which includes waiting for a CPU: the run queue delay tells how much),
 * waiting for the disk (D) or sleeping on an event (S). Threads that start and end inside the window count from their start.
 */
function sampleWaits(groups: { a: number[]; b: number[] }, everyMs = 10): { stop(): Promise<{ a: SideWaits; b: SideWaits }> } {
  const sides = { a: newSideWaits(), b: newSideWaits() };
  const firstSched = new Map<string, [number, number]>();
  const lastSched = new Map<string, [number, number]>();
  let stopped = false;
  const sampleSide = async (pids: number[], into: SideWaits): Promise<void> => {
    into.samples++;
    for (const pid of pids) {
      for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
        const [stat, sched] = await Promise.all([
          readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => ''),
          readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => ''),
        ]);
        if (!stat) continue;
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        const group = threadGroup(name, tid === String(pid));
        const counts = into.states.get(group) ?? { R: 0, D: 0, S: 0 };
        if (state === 'R' || state === 'D') counts[state]++;
        else counts.S++;
        into.states.set(group, counts);
        const [ran, delay] = sched.split(' ').map(Number) as [number, number];
        const key = `${pid}/${tid}`;
        if (!firstSched.has(key)) firstSched.set(key, [ran, delay]);
        lastSched.set(key, [ran, delay]);
      }
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await Promise.all([sampleSide(groups.a, sides.a), sampleSide(groups.b, sides.b)]);
      await sleepMs(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      for (const [side, pids] of Object.entries(groups) as Array<['a' | 'b', number[]]>) {
        for (const [key, [ran, delay]] of lastSched) {
          if (!pids.some((pid) => key.startsWith(`${pid}/`))) continue;
          const [ran0, delay0] = firstSched.get(key)!;
          sides[side].ran += (ran - ran0) / 1e9;
          sides[side].runDelay += (delay - delay0) / 1e9;
        }
      }
      return sides;
    },
  };
}

function newSideWaits(): SideWaits {
  return { samples: 0, states: new Map(), runDelay: 0, ran: 0 };
}

/** Per side: seconds ran and waited for a CPU, and per thread group the mean threads running/runnable, in D and sleeping. */
function formatWaits(waits: { a: SideWaits; b: SideWaits }, seconds: number): string {
  return (Object.entries(waits) as Array<[string, SideWaits]>)
    .map(([side, w]) => {
      const groups = [...w.states]
        .sort()
        .map(([group, c]) => `${group} R ${(c.R / w.samples).toFixed(2)} D ${(c.D / w.samples).toFixed(2)} S ${(c.S / w.samples).toFixed(2)}`)
        .join(', ');
      return `${side.toUpperCase()}: ran ${w.ran.toFixed(2)} s, waited for a CPU ${w.runDelay.toFixed(2)} s (of ${seconds.toFixed(2)} s; ${w.samples} samples); ${groups}`;
    })
    .join('\n    ');
}

/** BENCH_THREADS: CPU seconds (user, system) per side and thread name, at a moment. */
async function threadTimes(groups: { a: number[]; b: number[] }): Promise<Map<string, [number, number]>> {
  const out = new Map<string, [number, number]>();
  for (const [side, pids] of Object.entries(groups)) {
    for (const pid of pids) {
      for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
        const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const key = `${side} ${tid === String(pid) ? 'main' : process.env.BENCH_THREADS === 'tid' ? `${name}-${tid}` : name}`;
        const [u, s] = out.get(key) ?? [0, 0];
        out.set(key, [u + Number(fields[11]) / 100, s + Number(fields[12]) / 100]);
      }
    }
  }
  return out;
}

function threadDelta(before: Map<string, [number, number]>, after: Map<string, [number, number]>): string {
  return [...after]
    .map(([key, [u, s]]) => [key, u - (before.get(key)?.[0] ?? 0), s - (before.get(key)?.[1] ?? 0)] as const)
    .filter(([, u, s]) => u + s > 0.005)
    .sort()
    .map(([key, u, s]) => `${key} ${u.toFixed(2)}/${s.toFixed(2)}`)
    .join(', ');
}

/**
 * BENCH_STRACE_DIR: `strace -c -f` attached to each side's processes over the timed window (system calls per file, issue
 * 29); the summaries go to DIR/<tool>-<dataset>-<round>-<side>.txt (BENCH_STRACE_ARGS replaces `-c`, e.g. `-e trace=openat`). The tracing slows the tools: those runs time nothing.
 */
async function straceSides(groups: { a: number[]; b: number[] }, label: string): Promise<{ stop(): Promise<void> }> {
  const dir = process.env.BENCH_STRACE_DIR;
  if (!dir) return { stop: async () => undefined };
  await mkdir(dir, { recursive: true });
  const children: ChildProcess[] = [];
  for (const [side, pids] of Object.entries(groups)) {
    const perf = process.env.BENCH_STRACE_TOOL === 'perf';
    const args = perf
      ? ['record', '-F', '999', '-g', '-o', join(dir, `${label}-${side}.perf`), '-p', pids.join(',')]
      : [...(process.env.BENCH_STRACE_ARGS ?? '-c').split(/\s+/).filter(Boolean), '-f', '-o', join(dir, `${label}-${side}.txt`), ...pids.flatMap((pid) => ['-p', String(pid)])];
    const child = spawn(perf ? 'perf' : 'strace', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    // Attached once strace has named every process (threads included with -f).
    await new Promise<void>((resolve, reject) => {
      let err = '';
      child.once('error', reject);
      if (perf) setTimeout(resolve, 500); // perf says nothing once attached
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        if (pids.every((pid) => err.includes(`Process ${pid} attached`))) resolve();
      });
      child.once('exit', (code) => reject(new Error(`strace exited ${code}: ${err}`)));
    });
  }
  return {
    async stop() {
      for (const child of children) {
        if (child.exitCode !== null) continue;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT');
        await exited;
      }
    },
  };
}

export interface ScanSession {
  tool: Tool;
  round: number;
  files: number;
  seconds: number;
  /** Page cache at the start: `cold` (dropped: a first share after boot), `warm` (the tree read just before: a rescan). */
  cache: ScanCache;
  /** CPU seconds of A's processes during the scan. */
  cpuA: number;
  memory: { a: SideMemory };
  /** One-minute load average of the machine when the scan began (the machine is shared). */
  load: number;
}

export type ScanCache = 'cold' | 'warm';

/** BENCH_SCAN_CACHE=cold|warm|both (default cold): how the page cache is settled before each initial scan. */
export function scanCachesFromEnv(env = process.env): ScanCache[] {
  const value = env.BENCH_SCAN_CACHE ?? 'cold';
  if (value === 'both') return ['cold', 'warm'];
  if (value === 'cold' || value === 'warm') return [value];
  throw new Error(`BENCH_SCAN_CACHE must be cold, warm or both, not ${value}`);
}

/**
 * Drops the page cache (cold) or, after a sync, reads every file of `folder` once (warm), the same for both tools.
 * The warm case does not drop the cache first (reading every file makes it warm either way): a drop costs every
 * other process on a shared machine its cache, so a run drops it once per cold scan only.
 */
async function settleForScan(cache: ScanCache, folder: string): Promise<void> {
  if (cache === 'cold') {
    await settlePageCache();
    return;
  }
  await run('sync');
  await run('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 cat > /dev/null', 'sh', folder]);
}

/** Initial scan: a folder added (on A alone) with `files` files present, timed until the tool reports it idle with all of them. */
async function scanSession(tool: Tool, round: number, cache: ScanCache, folder: string, files: number, work: string, log: (l: string) => void): Promise<ScanSession> {
  const base = join(work, `scan-${tool}-${round}-${cache}`);
  await mkdir(base, { recursive: true });
  const pair = makePair(tool, base);
  try {
    await pair.start();
    await settleForScan(cache, folder);
    await sleepMs(1000);
    const load = loadavg()[0]!;
    const sampler = sampleGroups(pair.processes());
    const start = process.hrtime.bigint();
    await pair.shareOnA(folder);
    await until(() => pair.scannedOnA(files), `${tool} to scan ${files} files`, 30 * 60_000, 100);
    const elapsed = seconds(start);
    const cpuA = (await sampler.cpu()).a;
    const memory = await sampler.stop();
    log(`  scan ${tool} (${cache}): ${elapsed.toFixed(2)} s, CPU A ${cpuA.toFixed(1)} s (anon peak A ${memory.a.anonMiB.toFixed(0)} MiB), load ${load.toFixed(1)}`);
    return { tool, round, files, seconds: elapsed, cache, cpuA, memory: { a: memory.a }, load };
  } finally {
    await pair.stop();
    await rm(join(folder, '.ferry'), { recursive: true, force: true });
    await rm(join(folder, '.stfolder'), { recursive: true, force: true });
    await rm(base, { recursive: true, force: true });
  }
}

export interface UserOptions {
  sizes: UserSizes;
  tools: Tool[];
  only: Set<string>;
  rounds: number;
  /** Rounds for `scale` and `real` (and the scan comparison), when time is short. */
  bigRounds: number;
  scanFiles: number;
  /** Page cache before each scan (BENCH_SCAN_CACHE). @default ['cold'] */
  scanCaches?: ScanCache[];
  /** An existing tree of `scanFiles` files to scan (BENCH_SCAN_TREE; left unchanged) instead of one written here. */
  scanTree?: string;
  log: (line: string) => void;
}

export async function benchUser(work: string, options: UserOptions): Promise<{ sessions: UserSession[]; scans: ScanSession[] }> {
  const sessions: UserSession[] = [];
  const scans: ScanSession[] = [];
  for (const dataset of userDatasets(options.sizes)) {
    if (!options.only.has(dataset.name)) continue;
    const source = join(work, `user-source-${dataset.name}`);
    await dataset.generate(source);
    const rounds = dataset.name === 'scale' || dataset.name === 'real' ? options.bigRounds : options.rounds;
    options.log(`user method, ${dataset.name}: ${rounds} rounds`);
    try {
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? options.tools : [...options.tools].reverse();
        for (const tool of order) sessions.push(await userSession(tool, dataset, round, source, work, options.log));
      }
    } finally {
      // Removed after the dataset's last run (see benchSync: deletions slow the next creations on this disk).
      await rm(source, { recursive: true, force: true });
      for (const tool of options.tools) {
        for (let round = 0; round < rounds; round++) await rm(join(work, `user-${tool}-${dataset.name}-${round}`), { recursive: true, force: true });
      }
    }
  }
  if (options.only.has('scan') && options.scanFiles > 0) {
    const folder = options.scanTree ?? join(work, 'scan-source');
    if (!options.scanTree) await writeSmallFiles(folder, options.scanFiles, 1024);
    const caches = options.scanCaches ?? ['cold'];
    options.log(`scan comparison: ${options.scanFiles} files of 1 KiB, ${options.bigRounds} rounds, page cache ${caches.join(' and ')}`);
    try {
      for (let round = 0; round < options.bigRounds; round++) {
        const order = round % 2 === 0 ? options.tools : [...options.tools].reverse();
        for (const cache of caches) {
          for (const tool of order) scans.push(await scanSession(tool, round, cache, folder, options.scanFiles, work, options.log));
        }
      }
    } finally {
      if (!options.scanTree) await rm(folder, { recursive: true, force: true });
    }
  }
  return { sessions, scans };
}

/** Medians per tool and dataset (time, CPU), highest memory peaks. */
export function userSummary(sessions: UserSession[], tool: Tool, dataset: string):
  | { seconds: number; cpuA: number; cpuB: number; anonA: number; anonB: number; anonTotal: number; rssTotal: number; runs: number; incomplete: number; watcherCpu: number }
  | undefined {
  const runs = sessions.filter((s) => s.tool === tool && s.dataset === dataset);
  if (runs.length === 0) return undefined;
  return {
    seconds: median(runs.map((r) => r.seconds)),
    cpuA: median(runs.map((r) => r.cpu.a)),
    cpuB: median(runs.map((r) => r.cpu.b)),
    anonA: Math.max(...runs.map((r) => r.memory.a.anonMiB)),
    anonB: Math.max(...runs.map((r) => r.memory.b.anonMiB)),
    anonTotal: Math.max(...runs.map((r) => r.memory.total.anonMiB)),
    rssTotal: Math.max(...runs.map((r) => r.memory.total.rssMiB)),
    runs: runs.length,
    incomplete: runs.filter((r) => !r.complete).length,
    watcherCpu: median(runs.map((r) => r.watcherCpu.inotifywait + r.watcherCpu.bench)),
  };
}
