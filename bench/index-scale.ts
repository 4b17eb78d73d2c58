// `make bench BENCH=index`: one folder of many small files in one process (a SharedFolder as the daemon runs it):
// first scan, full rescans (wall and CPU), memory of the mapped index (RSS, PSS, mappings of data.mdb), and
// local edit latency (watcher → scan → index) for a batch of edits across the tree.
// Sizes by environment: BENCH_INDEX_FILES (100000), BENCH_INDEX_RESCANS (3), BENCH_INDEX_EDITS (100);
// BENCH_INDEX_TREE=dir keeps the generated tree there for the next run; BENCH_INDEX_PROFILE=file.cpuprofile profiles the rescans.

import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FOLDER_MARKER, SharedFolder } from '../src/daemon/folder.js';
import { IndexStore } from '../src/index/store.js';
import { FolderKeys } from '../src/keys/index.js';
import { HashPool, type ScanResult } from '../src/scan/index.js';
import { silentLogger } from '../src/util/log.js';
import { median, percentile } from './lib.js';

const MIB = 1024 * 1024;

export interface IndexScaleResult {
  files: number;
  firstScan: { seconds: number; cpuSeconds: number };
  rescans: Array<{ seconds: number; cpuSeconds: number; visited: number }>;
  memory: { rssMiB: number; pssMiB: number; hwmMiB: number; anonMiB: number; mdbMappings: number; mdbRssMiB: number; mdbFileMiB: number };
  edits?: { count: number; p50: number; p95: number; last: number; visited: number; cpuSeconds: number; fullRescans: number };
}

async function memoryFigures(mdbPath: string): Promise<IndexScaleResult['memory']> {
  const rollup = await readFile('/proc/self/smaps_rollup', 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN);
  const status = await readFile('/proc/self/status', 'utf8');
  const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  const anon = Number(/^RssAnon:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  // Resident pages of the index file summed over its mappings (each mapping counts its own).
  const smaps = (await readFile('/proc/self/smaps', 'utf8')).split('\n');
  let mappings = 0;
  let mdbRss = 0;
  let inMdb = false;
  for (const line of smaps) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      inMdb = line.endsWith(mdbPath);
      if (inMdb) mappings++;
    } else if (inMdb && line.startsWith('Rss:')) mdbRss += Number(/(\d+)/.exec(line)![1]);
  }
  return {
    rssMiB: kib('Rss') / 1024,
    pssMiB: kib('Pss') / 1024,
    hwmMiB: hwm / 1024,
    anonMiB: anon / 1024,
    mdbMappings: mappings,
    mdbRssMiB: mdbRss / 1024,
    mdbFileMiB: (await stat(mdbPath)).size / MIB,
  };
}

/** The tree of `files` files of 1 KiB as writeSmallFiles makes it (kept between runs), with the folder marker. */
export async function ensureTree(root: string, files: number, log: (line: string) => void): Promise<void> {
  const marker = join(root, FOLDER_MARKER);
  try {
    if ((await stat(marker)).isDirectory() && (await readFile(join(root, '.bench-files'), 'utf8')) === String(files)) return;
  } catch {
    // not generated yet
  }
  await rm(root, { recursive: true, force: true });
  await mkdir(marker, { recursive: true });
  log(`writing ${files} files of 1 KiB to ${root}`);
  writeTree(root, files);
  await writeFile(join(root, '.bench-files'), String(files));
}

/**
 * The files of writeSmallFiles (bench/lib.ts: 100 per folder, 10 folders per parent, 1 KiB each, the index in the first
 * 4 bytes), written with synchronous calls: no thread-pool round trip per file, so 1,000,000 files take minutes, not tens.
 */
function writeTree(root: string, files: number): void {
  const content = Buffer.alloc(1024);
  for (let i = 0; i < files; i++) {
    const dir = join(root, `g${Math.floor(i / 1000)}`, `d${Math.floor(i / 100) % 10}`);
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    content.writeUInt32LE(i, 0);
    writeFileSync(join(dir, `f${i}.dat`), content);
  }
}

/** Paths of `count` files spread evenly over a tree of writeSmallFiles. */
export function spreadPaths(files: number, count: number): string[] {
  const step = Math.max(1, Math.floor(files / count));
  return Array.from({ length: Math.min(count, files) }, (_, k) => {
    const i = k * step;
    return `g${Math.floor(i / 1000)}/d${Math.floor(i / 100) % 10}/f${i}.dat`;
  });
}

/** Writes the edited files back as writeSmallFiles made them. */
export async function restoreFiles(root: string, paths: string[]): Promise<void> {
  const original = Buffer.alloc(1024);
  for (const path of paths) {
    original.writeUInt32LE(Number(/f(\d+)\.dat$/.exec(path)![1]), 0);
    await writeFile(join(root, path), original);
  }
}

function cpuSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

export async function benchIndexScale(options: { files: number; rescans: number; edits: number; tree?: string; log?: (line: string) => void }): Promise<IndexScaleResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const work = join(tmpdir(), `ferry-bench-index-${process.pid}`);
  const root = options.tree ?? join(work, 'tree');
  const home = join(work, 'home');
  await mkdir(home, { recursive: true });
  try {
    await ensureTree(root, options.files, log);

    const store = new IndexStore({ path: join(home, 'index') });
    await store.open();
    const pool = new HashPool();
    await pool.open();
    const keys = FolderKeys.generate();
    const index = store.folder(keys.folderIdHex);
    const scans: Array<{ subtrees: readonly string[]; result: ScanResult }> = [];
    let waiter: { done: () => boolean; resolve: () => void } | null = null;
    const until = (done: () => boolean): Promise<void> =>
      done() ? Promise.resolve() : new Promise((resolve) => (waiter = { done, resolve }));
    const folder = new SharedFolder({
      config: { id: keys.folderIdHex, path: root, access: 'rw', key: 'bench', addedAtMs: Date.now(), paused: false },
      keys,
      index,
      pool,
      device: { id: 'BENCHDEVICE1'.padEnd(52, 'A'), shortId: 'BENCHDEVICE1' },
      logger: silentLogger,
      rescanIntervalMs: 24 * 3_600_000,
      unwatchedRescanIntervalMs: 24 * 3_600_000,
      archiveDays: 1,
      peerSource: () => undefined,
      onScanned: (subtrees, result) => {
        scans.push({ subtrees, result });
        if (waiter?.done()) {
          waiter.resolve();
          waiter = null;
        }
      },
    });
    let start = process.hrtime.bigint();
    let cpu = process.cpuUsage();
    await folder.open();
    await until(() => scans.some((scan) => scan.subtrees.includes('')));
    const firstScan = { seconds: Number(process.hrtime.bigint() - start) / 1e9, cpuSeconds: cpuSince(cpu) };
    log(`first scan: ${firstScan.seconds.toFixed(2)} s, CPU ${firstScan.cpuSeconds.toFixed(2)} s, ${index.counts().localFiles} files`);

    const rescans: IndexScaleResult['rescans'] = [];
    const profile = process.env.BENCH_INDEX_PROFILE;
    const session = profile ? new Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    for (let i = 0; i < options.rescans; i++) {
      scans.length = 0;
      start = process.hrtime.bigint();
      cpu = process.cpuUsage();
      await folder.requestScan('');
      const rescan = { seconds: Number(process.hrtime.bigint() - start) / 1e9, cpuSeconds: cpuSince(cpu), visited: scans[0]?.result.scanned ?? 0 };
      rescans.push(rescan);
      log(`rescan ${i + 1}: ${rescan.seconds.toFixed(2)} s, CPU ${rescan.cpuSeconds.toFixed(2)} s, visited ${rescan.visited}`);
    }
    if (session) {
      const { profile: taken } = await session.post('Profiler.stop');
      await writeFile(profile!, JSON.stringify(taken));
      session.disconnect();
    }
    const memory = await memoryFigures(join(home, 'index', 'data.mdb'));
    log(
      `memory: RSS ${memory.rssMiB.toFixed(0)} MiB, PSS ${memory.pssMiB.toFixed(0)} MiB, VmHWM ${memory.hwmMiB.toFixed(0)} MiB, anonymous ${memory.anonMiB.toFixed(0)} MiB; ` +
        `data.mdb ${memory.mdbFileMiB.toFixed(0)} MiB in ${memory.mdbMappings} mapping(s), ${memory.mdbRssMiB.toFixed(0)} MiB resident`,
    );

    let edits: IndexScaleResult['edits'];
    if (options.edits > 0) {
      scans.length = 0;
      const edited = spreadPaths(options.files, options.edits);
      const content = (path: string): string => `${path} edited ${Date.now()}`;
      const written = new Map<string, number>();
      const latencies = new Map<string, number>();
      const check = (): boolean => {
        const now = performance.now();
        for (const [path, at] of written) {
          if (latencies.has(path)) continue;
          const record = index.getLocal(path);
          if (record && record.size !== 1024) latencies.set(path, (now - at) / 1000);
        }
        return latencies.size === edited.length;
      };
      cpu = process.cpuUsage();
      for (const path of edited) {
        await writeFile(join(root, path), content(path));
        written.set(path, performance.now());
      }
      await until(check);
      const samples = [...latencies.values()];
      edits = {
        count: edited.length,
        p50: median(samples),
        p95: percentile(samples, 95),
        last: Math.max(...samples),
        visited: scans.reduce((sum, scan) => sum + scan.result.scanned, 0),
        cpuSeconds: cpuSince(cpu),
        fullRescans: scans.filter((scan) => scan.subtrees.includes('')).length,
      };
      log(
        `${edits.count} edits until indexed: p50 ${edits.p50.toFixed(2)} s, p95 ${edits.p95.toFixed(2)} s, last ${edits.last.toFixed(2)} s; ` +
          `CPU ${edits.cpuSeconds.toFixed(2)} s, visited ${edits.visited} entries in ${scans.length} scans (${edits.fullRescans} of the whole folder)`,
      );
      await restoreFiles(root, edited); // as generated, for the next run
    }
    await folder.close();
    await pool.close();
    await store.close();
    return { files: options.files, firstScan, rescans, memory, ...(edits ? { edits } : {}) };
  } finally {
    await rm(work, { recursive: true, force: true }); // the tree too, unless BENCH_INDEX_TREE keeps it elsewhere
  }
}
