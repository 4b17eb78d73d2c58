// `make bench`: runs the benchmarks, prints a table and writes JSON to bench/results/.
// Sizes: BENCH_LARGE_MIB (default 1024) and BENCH_SMALL_FILES (default 100000) for quick runs.

import { mkdir, writeFile, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../test/helpers/daemon.js';
import { table, type MemoryPeaks } from './lib.js';
import { benchLargeFile, benchSmallFiles } from './scan.js';

const largeMiB = Number(process.env.BENCH_LARGE_MIB ?? 1024);
const smallFiles = Number(process.env.BENCH_SMALL_FILES ?? 100_000);
const RSS_LIMIT_MIB = 80;

const work = await tempDir('bench');
try {
  const large = await benchLargeFile(work, largeMiB * 1024 * 1024);
  const small10k = await benchSmallFiles(work, Math.min(10_000, smallFiles), 4096);
  const smallMany = smallFiles > 10_000 ? await benchSmallFiles(work, smallFiles, 4096) : null;

  const rows: (string | number)[][] = [
    ['benchmark', 'files', 'MiB', 's', 'MB/s', 'files/s', 'RSS peak (anon + LMDB map) MiB', 'limit / ratio'],
  ];
  const memory = (m: MemoryPeaks): string => `${m.hwmMiB.toFixed(0)} (${m.anonMiB.toFixed(0)} + ${m.fileMiB.toFixed(0)})`;
  rows.push([
    'scan large', 1, largeMiB, large.ferry.seconds.toFixed(2), large.ferry.mbPerS.toFixed(0), '-',
    memory(large.ferry.memory), `openssl ${large.opensslMBps.toFixed(0)} MB/s, ratio ${(large.ferry.mbPerS / large.opensslMBps).toFixed(2)}`,
  ]);
  for (const s of [small10k, smallMany]) {
    if (!s) continue;
    rows.push([
      `scan ${s.name}`, s.files, (s.bytes / 1048576).toFixed(0), s.seconds.toFixed(2), s.mbPerS.toFixed(0),
      s.filesPerS.toFixed(0), memory(s.memory), `RSS goal ${RSS_LIMIT_MIB} MiB`,
    ]);
  }
  console.log(`Ferry scan benchmarks (${cpus().length} cores, page cache ${large.ferry.cache})`);
  console.log(table(rows));

  const results = resolve(fileURLToPath(import.meta.url), '../../../bench/results');
  await mkdir(results, { recursive: true });
  const file = join(results, 'scan.json');
  await writeFile(file, JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, large, small10k, smallMany }, null, 2) + '\n');
  console.log(`written ${file}`);
} finally {
  await rm(work, { recursive: true, force: true });
}
