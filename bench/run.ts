// `make bench [BENCH=scan|sync|all|index|edits]`: runs the benchmarks, prints tables, writes JSON (and the sync chart) to bench/results/.
// Sizes for quick runs: BENCH_LARGE_MIB (1024), BENCH_SMALL_FILES (scan, 100000), BENCH_SYNC_SMALL_FILES (20000),
// BENCH_MIXED_MIB (500), BENCH_LATENCY_EDITS (20); BENCH_TOOLS=ferry,syncthing; BENCH_DATASETS=large,small,mixed,delta,rename,latency;
// BENCH=transport (bench/transport.ts: BENCH_TRANSPORT_MIB, BENCH_TRANSPORT_ROUNDS), BENCH=reach (bench/reach.ts, root: BENCH_REACH_ROUNDS, BENCH_REACH_ROWS), BENCH=link (bench/link.ts, root: BENCH_LINK_ROUNDS,
// BENCH_LINK_SECONDS, BENCH_LINK_MBIT, BENCH_LINK_RTT_MS, BENCH_LINK_LOSS, BENCH_LINK_QUEUE_MS); BENCH=index (bench/index-scale.ts) and BENCH=edits (two daemons, bench/edit-latency.ts): BENCH_INDEX_FILES (100000),
// BENCH_INDEX_RESCANS (3), BENCH_INDEX_EDITS (100), BENCH_INDEX_TREE; BENCH=edits also EDIT_FILES (sizes in one run, e.g.
// 1000,1000000), EDIT_TREES (a kept dir for the trees) and EDIT_MEMORY_MAX_MIB (each daemon in a memory cgroup), see bench/edit-latency.ts;
// BENCH_ROUNDS (1): sessions per tool and dataset, the tools taking turns going first; the tables show medians.

import { mkdir, writeFile, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../test/helpers/daemon.js';
import { barChart } from './chart.js';
import { sizesFromEnv } from './datasets.js';
import { median, table, type MemoryPeaks } from './lib.js';
import { cryptoLimits } from './limits.js';
import { benchEditLatency } from './edit-latency.js';
import { benchIndexScale } from './index-scale.js';
import { benchLargeFile, benchSmallFiles } from './scan.js';
import { benchSync, type SessionResult, type Tool } from './sync.js';
import { syncthingVersion } from './syncthing-pair.js';

const RSS_LIMIT_MIB = 80;
const MIB = 1024 * 1024;
const which = process.env.BENCH ?? 'all';
const results = resolve(fileURLToPath(import.meta.url), '../../../bench/results');

async function scanBenchmarks(work: string): Promise<void> {
  const largeMiB = Number(process.env.BENCH_LARGE_MIB ?? 1024);
  const smallFiles = Number(process.env.BENCH_SMALL_FILES ?? 100_000);
  const large = await benchLargeFile(work, largeMiB * MIB);
  const small10k = await benchSmallFiles(work, Math.min(10_000, smallFiles), 4096);
  const smallMany = smallFiles > 10_000 ? await benchSmallFiles(work, smallFiles, 4096) : null;

  const rows: (string | number)[][] = [
    ['benchmark', 'files', 'MiB', 's', 'MB/s', 'files/s', 'RSS peak (anon + file-backed) MiB', 'limit / ratio'],
  ];
  const memory = (m: MemoryPeaks): string => `${m.hwmMiB.toFixed(0)} (${m.anonMiB.toFixed(0)} + ${m.fileMiB.toFixed(0)})`;
  rows.push([
    'scan large', 1, largeMiB, large.ferry.seconds.toFixed(2), large.ferry.mbPerS.toFixed(0), '-',
    memory(large.ferry.memory), `openssl ${large.opensslMBps.toFixed(0)} MB/s, ratio ${(large.ferry.mbPerS / large.opensslMBps).toFixed(2)}`,
  ]);
  for (const s of [small10k, smallMany]) {
    if (!s) continue;
    rows.push([
      `scan ${s.name}`, s.files, (s.bytes / MIB).toFixed(0), s.seconds.toFixed(2), s.mbPerS.toFixed(0),
      s.filesPerS.toFixed(0), memory(s.memory), `RSS goal ${RSS_LIMIT_MIB} MiB`,
    ]);
  }
  console.log(`Ferry scan benchmarks (${cpus().length} cores, page cache ${large.ferry.cache})`);
  console.log(table(rows));
  const file = join(results, 'scan.json');
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, large, small10k, smallMany }, null, 2) + '\n');
  console.log(`written ${file}`);
}

/** One tool's sessions of one dataset as one result: the median of each figure, the highest memory peaks. */
function summary(runs: SessionResult[]): SessionResult | undefined {
  const [first] = runs;
  if (!first) return undefined;
  const mid = (pick: (run: SessionResult) => number | undefined): number => median(runs.map(pick).filter((x): x is number => x !== undefined));
  const peaks = (side: 'a' | 'b'): MemoryPeaks => ({
    hwmMiB: Math.max(...runs.map((r) => r.memory[side].hwmMiB)),
    anonMiB: Math.max(...runs.map((r) => r.memory[side].anonMiB)),
    fileMiB: Math.max(...runs.map((r) => r.memory[side].fileMiB)),
  });
  return {
    ...first,
    seconds: mid((r) => r.seconds),
    memory: { a: peaks('a'), b: peaks('b') },
    ...(first.cpu ? { cpu: { a: mid((r) => r.cpu?.a), b: mid((r) => r.cpu?.b) } } : {}),
    ...(first.delta ? { delta: { seconds: mid((r) => r.delta?.seconds), bytesSent: mid((r) => r.delta?.bytesSent) } } : {}),
    ...(first.rename ? { rename: { seconds: mid((r) => r.rename?.seconds), bytesSent: mid((r) => r.rename?.bytesSent) } } : {}),
    ...(first.latency
      ? { latency: { p50: mid((r) => r.latency?.p50), p95: mid((r) => r.latency?.p95), samples: runs.flatMap((r) => r.latency?.samples ?? []) } }
      : {}),
  };
}

const cpu = (c: { a: number; b: number } | undefined): string => (c ? `${c.a.toFixed(2)} / ${c.b.toFixed(2)}` : '-');
const rss = (m: { a: MemoryPeaks; b: MemoryPeaks } | undefined): string =>
  m ? `${m.a.hwmMiB.toFixed(0)} / ${m.b.hwmMiB.toFixed(0)}` : '-';
const ratio = (x: number | undefined, y: number | undefined): string => (x !== undefined && y ? (x / y).toFixed(2) : '-');

async function syncBenchmarks(work: string): Promise<void> {
  const sizes = sizesFromEnv();
  const version = await syncthingVersion();
  let tools = (process.env.BENCH_TOOLS ?? 'ferry,syncthing').split(',').filter(Boolean) as Tool[];
  if (!version && tools.includes('syncthing')) {
    console.log('syncthing is not installed (apt-get install syncthing): measuring Ferry alone');
    tools = tools.filter((t) => t !== 'syncthing');
  }
  const only = new Set((process.env.BENCH_DATASETS ?? 'large,small,mixed,delta,rename,latency').split(','));
  const limits = await cryptoLimits();
  const log = (line: string): void => console.log(line);
  log(`limits: SHA-256 ${limits.sha256MiBps.toFixed(0)} MiB/s, AES-256-GCM ${limits.aes256gcmMiBps.toFixed(0)} MiB/s (openssl speed, one thread)`);
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 1));
  const sync = await benchSync(work, { sizes, tools, only, latencyEdits: Number(process.env.BENCH_LATENCY_EDITS ?? 20), rounds, log });

  const get = (tool: Tool, dataset: string): SessionResult | undefined =>
    summary(sync.sessions.filter((s) => s.tool === tool && s.dataset === dataset));
  const rows: (string | number)[][] = [
    ['dataset', 'Ferry', 'Syncthing', 'ratio', 'limit', 'RSS peak A / B MiB: Ferry', 'Syncthing', 'CPU A / B s: Ferry', 'Syncthing'],
  ];
  for (const name of ['large', 'small', 'mixed'] as const) {
    const f = get('ferry', name);
    const s = get('syncthing', name);
    if (!f && !s) continue;
    let limit = `cp -r ${sync.copy[name]?.toFixed(2)} s`;
    if (name === 'large') limit += ` (floor: SHA-256 + cp ${(sizes.largeMiB / limits.sha256MiBps + sync.copy.large!).toFixed(2)} s)`;
    rows.push([`${name} (s)`, f?.seconds.toFixed(2) ?? '-', s?.seconds.toFixed(2) ?? '-', ratio(f?.seconds, s?.seconds), limit, rss(f?.memory), rss(s?.memory), cpu(f?.cpu), cpu(s?.cpu)]);
  }
  const f = get('ferry', 'large');
  const s = get('syncthing', 'large');
  const wire = (x?: { seconds: number; bytesSent: number }): string => (x ? `${x.seconds.toFixed(2)} s, ${(x.bytesSent / MIB).toFixed(2)} MiB` : '-');
  if (f?.delta || s?.delta) rows.push(['delta (time, sent)', wire(f?.delta), wire(s?.delta), ratio(f?.delta?.bytesSent, s?.delta?.bytesSent), '1.00 MiB changed', '', '', '', '']);
  if (f?.rename || s?.rename) rows.push(['rename (time, sent)', wire(f?.rename), wire(s?.rename), ratio(f?.rename?.bytesSent, s?.rename?.bytesSent), '0 MiB of content', '', '', '', '']);
  const lat = (x?: { p50: number; p95: number }): string => (x ? `${x.p50.toFixed(2)} / ${x.p95.toFixed(2)} s` : '-');
  if (f?.latency || s?.latency) rows.push(['latency p50 / p95', lat(f?.latency), lat(s?.latency), ratio(f?.latency?.p50, s?.latency?.p50), '-', '', '', '', '']);

  const over = rounds > 1 ? `; medians of ${rounds} rounds, peak RSS the highest` : '';
  console.log(`\nSync benchmarks, loopback (${cpus().length} cores; ${version ?? 'no Syncthing'}${over})`);
  console.log(table(rows));

  const stamp = { date: new Date().toISOString(), cores: cpus().length, syncthing: version, sizes, limits, copy: sync.copy, sessions: sync.sessions };
  const file = join(results, 'sync.json');
  await writeFile(file, JSON.stringify(stamp, null, 2) + '\n');
  const groups = (['large', 'small', 'mixed'] as const)
    .filter((name) => get('ferry', name) || get('syncthing', name))
    .map((name) => ({
      label: name,
      bars: [
        ...(['ferry', 'syncthing'] as const)
          .map((tool) => ({ tool, r: get(tool, name) }))
          .filter((x) => x.r)
          .map(({ tool, r }) => ({ name: tool === 'ferry' ? 'Ferry' : 'Syncthing', value: r!.seconds, text: `${r!.seconds.toFixed(2)} s` })),
        { name: 'cp -r', value: sync.copy[name] ?? 0, text: `${(sync.copy[name] ?? 0).toFixed(2)} s` },
      ],
    }));
  await writeFile(join(results, 'sync.svg'), barChart('Cold start to a verified copy, seconds (shorter is better)', groups));
  console.log(`written ${file} and sync.svg`);
}

async function indexBenchmark(): Promise<void> {
  const result = await benchIndexScale({
    files: Number(process.env.BENCH_INDEX_FILES ?? 100_000),
    rescans: Number(process.env.BENCH_INDEX_RESCANS ?? 3),
    edits: Number(process.env.BENCH_INDEX_EDITS ?? 100),
    ...(process.env.BENCH_INDEX_TREE ? { tree: process.env.BENCH_INDEX_TREE } : {}),
  });
  const file = join(results, 'index.json');
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, ...result }, null, 2) + '\n');
  console.log(`written ${file}`);
}

async function editBenchmark(): Promise<void> {
  const sizes = (process.env.EDIT_FILES ?? process.env.BENCH_INDEX_FILES ?? '100000').split(',').map(Number);
  const memoryMaxMiB = Number(process.env.EDIT_MEMORY_MAX_MIB ?? 0);
  const runs = await benchEditLatency({
    sizes,
    edits: Number(process.env.BENCH_INDEX_EDITS ?? 100),
    ...(process.env.EDIT_TREES ? { treeBase: process.env.EDIT_TREES } : {}),
    ...(memoryMaxMiB > 0 ? { memoryMaxMiB } : {}),
  });
  const rows: (string | number)[][] = [
    ['files', 'scan s', 'sync s', 'edits p50 / last s', 'CPU A ms/edit', 'touches p50 / last s', 'CPU A ms/touch', 'anon peak A / B MiB', 'cgroup peak A / B MiB', 'index KB/file A / B', 'B repacked KB/file', 'idle CPU A s/s'],
  ];
  const two = (x: number | undefined, y: number | undefined, digits = 0): string => `${x?.toFixed(digits) ?? '-'} / ${y?.toFixed(digits) ?? '-'}`;
  for (const r of runs) {
    rows.push([
      r.files, r.scanSeconds.toFixed(1), r.partial ? `cut at ${r.partial.seconds.toFixed(0)} (B ${r.partial.filesOnB} files)` : r.syncSeconds.toFixed(1),
      two(r.edits?.p50, r.edits?.last, 2), r.edits ? (r.edits.cpuPerChangeA * 1000).toFixed(1) : '-',
      two(r.touches?.p50, r.touches?.last, 2), r.touches ? (r.touches.cpuPerChangeA * 1000).toFixed(1) : '-',
      two(r.a.anonPeakMiB, r.b.anonPeakMiB), two(r.a.cgroupPeakMiB, r.b.cgroupPeakMiB),
      two(r.a.indexBytesPerFile / 1024, r.b.indexBytesPerFile / 1024, 2),
      r.b.afterRestart ? (r.b.afterRestart.indexBytesPerFile / 1024).toFixed(2) : '-',
      r.idleA ? r.idleA.cpuPerSecond.toFixed(4) : '-',
    ]);
  }
  const title = `Edit latency, two Ferry daemons on loopback (${cpus().length} cores${memoryMaxMiB > 0 ? `; each daemon in a ${memoryMaxMiB} MiB memory cgroup` : ''})`;
  console.log(`\n${title}`);
  console.log(table(rows));
  const name = process.env.EDIT_OUT ?? 'edits';
  const file = join(results, `${name}.json`);
  const date = new Date().toISOString();
  await writeFile(file, JSON.stringify({ date, cores: cpus().length, ...(memoryMaxMiB > 0 ? { memoryMaxMiB } : {}), runs }, null, 2) + '\n');
  const md = (cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;
  await writeFile(
    join(results, `${name}.md`),
    [`# ${title}`, '', `${date}, \`EDIT_FILES=${sizes.join(',')}\`, ${Number(process.env.BENCH_INDEX_EDITS ?? 100)} edits and as many touches.`, '',
      md(rows[0]!), md(rows[0]!.map(() => '---')), ...rows.slice(1).map(md), ''].join('\n'),
  );
  console.log(`written ${file} and ${name}.md`);
}

await mkdir(results, { recursive: true });
const work = await tempDir('bench');
try {
  if (which === 'scan' || which === 'all') await scanBenchmarks(work);
  if (which === 'sync' || which === 'all') await syncBenchmarks(work);
  // Not part of `all`: one large tree in this process, for the index and rescan figures of the scale issue.
  if (which === 'index') await indexBenchmark();
  if (which === 'edits') await editBenchmark();
  if (which === 'scan-tree') await (await import('./scan.js')).benchScanTree(process.env.BENCH_SCAN_TREE ?? '.');
  // One method for both tools (bench/user.ts), beside the old harness: BENCH_ROUNDS (5), BENCH_BIG_ROUNDS (3, scale/real/scan),
  // BENCH_OLD_ROUNDS, BENCH_DATASETS=large,small,mixed,scale,real,scan, BENCH_SCALE_FILES, BENCH_SCAN_FILES, BENCH_REAL_DIRS, BENCH_USER_OUT (user);
  // the scan comparison alone: BENCH_DATASETS=scan, BENCH_SCAN_CACHE=cold|warm|both, BENCH_SCAN_TREE (an existing tree of BENCH_SCAN_FILES files).
  if (which === 'user') await (await import('./user-report.js')).benchUserReport(work, results);
  // The transport alone (µTP against TCP on loopback; bench/transport.ts) and over an emulated slow, lossy link (root; bench/link.ts).
  if (which === 'transport') await import('./transport.js');
  if (which === 'link') await (await import('./link.js')).benchLink();
  // Time to connect and to sync 10 MiB per topology of the netlab matrix, and the relay's CPU per GiB (root; bench/reach.ts).
  if (which === 'reach') await (await import('./reach.js')).benchReach();
} finally {
  await rm(work, { recursive: true, force: true });
}
