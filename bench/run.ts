// `make bench [BENCH=scan|sync|all]`: runs the benchmarks, prints tables, writes JSON (and the sync chart) to bench/results/.
// Sizes for quick runs: BENCH_LARGE_MIB (1024), BENCH_SMALL_FILES (scan, 100000), BENCH_SYNC_SMALL_FILES (20000),
// BENCH_MIXED_MIB (500), BENCH_LATENCY_EDITS (20); BENCH_TOOLS=ferry,syncthing; BENCH_DATASETS=large,small,mixed,delta,rename,latency.

import { mkdir, writeFile, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../test/helpers/daemon.js';
import { barChart } from './chart.js';
import { sizesFromEnv } from './datasets.js';
import { table, type MemoryPeaks } from './lib.js';
import { cryptoLimits } from './limits.js';
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
  const sync = await benchSync(work, { sizes, tools, only, latencyEdits: Number(process.env.BENCH_LATENCY_EDITS ?? 20), log });

  const get = (tool: Tool, dataset: string): SessionResult | undefined =>
    sync.sessions.find((s) => s.tool === tool && s.dataset === dataset);
  const rows: (string | number)[][] = [
    ['dataset', 'Ferry', 'Syncthing', 'ratio', 'limit', 'RSS peak A / B MiB: Ferry', 'Syncthing'],
  ];
  for (const name of ['large', 'small', 'mixed'] as const) {
    const f = get('ferry', name);
    const s = get('syncthing', name);
    if (!f && !s) continue;
    let limit = `cp -r ${sync.copy[name]?.toFixed(2)} s`;
    if (name === 'large') limit += ` (floor: SHA-256 + cp ${(sizes.largeMiB / limits.sha256MiBps + sync.copy.large!).toFixed(2)} s)`;
    rows.push([`${name} (s)`, f?.seconds.toFixed(2) ?? '-', s?.seconds.toFixed(2) ?? '-', ratio(f?.seconds, s?.seconds), limit, rss(f?.memory), rss(s?.memory)]);
  }
  const f = get('ferry', 'large');
  const s = get('syncthing', 'large');
  const wire = (x?: { seconds: number; bytesSent: number }): string => (x ? `${x.seconds.toFixed(2)} s, ${(x.bytesSent / MIB).toFixed(2)} MiB` : '-');
  if (f?.delta || s?.delta) rows.push(['delta (time, sent)', wire(f?.delta), wire(s?.delta), ratio(f?.delta?.bytesSent, s?.delta?.bytesSent), '1.00 MiB changed', '', '']);
  if (f?.rename || s?.rename) rows.push(['rename (time, sent)', wire(f?.rename), wire(s?.rename), ratio(f?.rename?.bytesSent, s?.rename?.bytesSent), '0 MiB of content', '', '']);
  const lat = (x?: { p50: number; p95: number }): string => (x ? `${x.p50.toFixed(2)} / ${x.p95.toFixed(2)} s` : '-');
  if (f?.latency || s?.latency) rows.push(['latency p50 / p95', lat(f?.latency), lat(s?.latency), ratio(f?.latency?.p50, s?.latency?.p50), '-', '', '']);

  console.log(`\nSync benchmarks, loopback (${cpus().length} cores; ${version ?? 'no Syncthing'})`);
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

await mkdir(results, { recursive: true });
const work = await tempDir('bench');
try {
  if (which === 'scan' || which === 'all') await scanBenchmarks(work);
  if (which === 'sync' || which === 'all') await syncBenchmarks(work);
} finally {
  await rm(work, { recursive: true, force: true });
}
