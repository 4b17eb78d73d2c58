// `make bench BENCH=edits`: two Ferry daemons on loopback share one folder of many small files; once B holds it,
// a batch of edits spread over the tree is written on A and timed until each is on B (the whole path: watcher →
// scan → index → announce → peer → fetch → install), with both daemons' CPU and A's memory (RSS, PSS, mappings).
// Sizes by environment: BENCH_INDEX_FILES (100000), BENCH_INDEX_EDITS (100); BENCH_INDEX_TREE=dir keeps the tree.

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryPair } from './ferry-pair.js';
import { median, percentile, seconds, until } from './lib.js';
import { ensureTree, restoreFiles, spreadPaths } from './index-scale.js';

export interface EditLatencyResult {
  files: number;
  syncSeconds: number;
  daemonA: { rssMiB: number; pssMiB: number; hwmMiB: number; anonMiB: number; mdbMappings: number };
  edits: { count: number; p50: number; p95: number; last: number; cpuA: number; cpuB: number };
}

async function daemonMemory(pid: number): Promise<EditLatencyResult['daemonA']> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kib = (text: string, field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const maps = await readFile(`/proc/${pid}/maps`, 'utf8');
  return {
    rssMiB: kib(rollup, 'Rss') / 1024,
    pssMiB: kib(rollup, 'Pss') / 1024,
    hwmMiB: kib(status, 'VmHWM') / 1024,
    anonMiB: kib(status, 'RssAnon') / 1024,
    mdbMappings: maps.split('\n').filter((line) => line.endsWith('/data.mdb')).length,
  };
}

export async function benchEditLatency(options: { files: number; edits: number; tree?: string; log?: (line: string) => void }): Promise<EditLatencyResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const work = join(tmpdir(), `ferry-bench-edits-${process.pid}`);
  const source = options.tree ?? join(work, 'tree');
  const target = join(work, 'copy');
  await mkdir(work, { recursive: true });
  await ensureTree(source, options.files, log);
  const totals = { files: options.files + 1, bytes: options.files * 1024 + String(options.files).length };
  const pair = new FerryPair(join(work, 'pair'));
  const edited = spreadPaths(options.files, options.edits);
  try {
    await pair.start();
    const start = process.hrtime.bigint();
    await pair.beginSync(source, target);
    await until(() => pair.complete(totals), `B to hold ${totals.files} files`, 60 * 60_000, 500);
    const syncSeconds = seconds(start);
    const daemonA = await daemonMemory(pair.pids().a);
    log(
      `sync of ${totals.files} files: ${syncSeconds.toFixed(1)} s; daemon A: RSS ${daemonA.rssMiB.toFixed(0)} MiB, ` +
        `PSS ${daemonA.pssMiB.toFixed(0)} MiB, VmHWM ${daemonA.hwmMiB.toFixed(0)} MiB, anonymous ${daemonA.anonMiB.toFixed(0)} MiB, data.mdb in ${daemonA.mdbMappings} mapping(s)`,
    );

    const sampler = pair.sample();
    const contents = new Map(edited.map((path, i) => [path, `edit ${i} of ${path} at ${Date.now()}\n`]));
    const written = new Map<string, bigint>();
    for (const [path, content] of contents) {
      await writeFile(join(source, path), content);
      written.set(path, process.hrtime.bigint());
    }
    const latencies = new Map<string, number>();
    await until(
      async () => {
        for (const [path, content] of contents) {
          if (latencies.has(path)) continue;
          if ((await readFile(join(target, path), 'utf8').catch(() => '')) === content) latencies.set(path, seconds(written.get(path)!));
        }
        return latencies.size === contents.size;
      },
      `${contents.size} edits on B`,
      10 * 60_000,
      20,
    );
    const cpu = await sampler.cpuSeconds();
    await sampler.stop();
    const samples = [...latencies.values()];
    const edits = { count: samples.length, p50: median(samples), p95: percentile(samples, 95), last: Math.max(...samples), cpuA: cpu.a, cpuB: cpu.b };
    log(
      `${edits.count} edits until on B: p50 ${edits.p50.toFixed(2)} s, p95 ${edits.p95.toFixed(2)} s, last ${edits.last.toFixed(2)} s; ` +
        `CPU A ${edits.cpuA.toFixed(2)} s, B ${edits.cpuB.toFixed(2)} s`,
    );
    return { files: options.files, syncSeconds, daemonA, edits };
  } catch (err) {
    log(pair.logs());
    throw err;
  } finally {
    await pair.stop();
    await restoreFiles(source, edited);
    await rm(work, { recursive: true, force: true }); // the tree too, unless BENCH_INDEX_TREE keeps it elsewhere
  }
}
