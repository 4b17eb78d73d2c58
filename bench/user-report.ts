// BENCH=user: the old harness (cold start to a verified copy, tool status) and the user's method (bench/user.ts) in one
// run, side by side, with the machine's limits; results in bench/results/user.json and user.md.

import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { sizesFromEnv } from './datasets.js';
import { median, table } from './lib.js';
import { cryptoLimits } from './limits.js';
import { benchSync, type Tool } from './sync.js';
import { syncthingVersion } from './syncthing-pair.js';
import { benchUser, scanCachesFromEnv, userSizesFromEnv, userSummary, type ScanCache } from './user.js';

const MIB = 1024 * 1024;

export async function benchUserReport(work: string, results: string): Promise<void> {
  const log = (line: string): void => console.log(line);
  const version = await syncthingVersion();
  let tools = (process.env.BENCH_TOOLS ?? 'ferry,syncthing').split(',').filter(Boolean) as Tool[];
  if (!version) tools = tools.filter((t) => t !== 'syncthing');
  const sizes = userSizesFromEnv(sizesFromEnv());
  const only = new Set((process.env.BENCH_DATASETS ?? 'large,small,mixed,scale,real,scan').split(','));
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5));
  const bigRounds = Math.max(1, Number(process.env.BENCH_BIG_ROUNDS ?? 3));
  const oldRounds = Number(process.env.BENCH_OLD_ROUNDS ?? rounds);
  const limits = await cryptoLimits();
  log(`limits: SHA-256 ${limits.sha256MiBps.toFixed(0)} MiB/s, AES-256-GCM ${limits.aes256gcmMiBps.toFixed(0)} MiB/s (openssl speed, one thread)`);

  const user = await benchUser(work, { sizes, tools, only, rounds, bigRounds, scanFiles: Number(process.env.BENCH_SCAN_FILES ?? 100_000),
    scanCaches: scanCachesFromEnv(), ...(process.env.BENCH_SCAN_TREE ? { scanTree: process.env.BENCH_SCAN_TREE } : {}), log });
  const oldOnly = new Set([...only].filter((n) => ['large', 'small', 'mixed'].includes(n)));
  const old = oldRounds > 0 && oldOnly.size > 0 ? await benchSync(work, { sizes, tools, only: oldOnly, latencyEdits: 0, rounds: oldRounds, log }) : undefined;
  const oldSeconds = (tool: Tool, dataset: string): number | undefined => {
    const runs = old?.sessions.filter((s) => s.tool === tool && s.dataset === dataset).map((s) => s.seconds) ?? [];
    return runs.length ? median(runs) : undefined;
  };

  const f2 = (x: number | undefined, d = 2): string => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
  const ratio = (x: number | undefined, y: number | undefined): string => (x !== undefined && y ? (x / y).toFixed(2) : '-');
  const rows: (string | number)[][] = [
    ['dataset', 'files', 'MiB', 'user: Ferry s', 'Syncthing s', 'ratio', 'old harness: Ferry s', 'Syncthing s', 'ratio',
      'anon peak A+B MiB: Ferry', 'Syncthing', 'ratio', 'RSS peak A+B MiB: Ferry', 'Syncthing', 'ratio', 'CPU A / B s: Ferry', 'Syncthing', 'watcher CPU s', 'runs'],
  ];
  for (const name of ['large', 'small', 'mixed', 'scale', 'real']) {
    const f = userSummary(user.sessions, 'ferry', name);
    const s = userSummary(user.sessions, 'syncthing', name);
    if (!f && !s) continue;
    const any = user.sessions.find((x) => x.dataset === name)!;
    const incomplete = (x?: { incomplete: number }): string => (x?.incomplete ? ` (${x.incomplete} incomplete)` : '');
    rows.push([
      name, any.files, (any.bytes / MIB).toFixed(0),
      f2(f?.seconds) + incomplete(f), f2(s?.seconds) + incomplete(s), ratio(f?.seconds, s?.seconds),
      f2(oldSeconds('ferry', name)), f2(oldSeconds('syncthing', name)), ratio(oldSeconds('ferry', name), oldSeconds('syncthing', name)),
      f2(f?.anonTotal, 0), f2(s?.anonTotal, 0), ratio(f?.anonTotal, s?.anonTotal),
      f2(f?.rssTotal, 0), f2(s?.rssTotal, 0), ratio(f?.rssTotal, s?.rssTotal),
      f ? `${f2(f.cpuA)} / ${f2(f.cpuB)}` : '-', s ? `${f2(s.cpuA)} / ${f2(s.cpuB)}` : '-',
      `${f2(f?.watcherCpu)} / ${f2(s?.watcherCpu)}`, `${f?.runs ?? 0} / ${s?.runs ?? 0}`,
    ]);
  }
  const scansOf = (tool: Tool, cache: ScanCache) => user.scans.filter((x) => x.tool === tool && x.cache === cache);
  const scanMedian = (tool: Tool, cache: ScanCache, of: (x: (typeof user.scans)[number]) => number = (x) => x.seconds): number | undefined => {
    const runs = scansOf(tool, cache).map(of);
    return runs.length ? median(runs) : undefined;
  };
  const scanAnon = (tool: Tool, cache: ScanCache): number | undefined => {
    const runs = scansOf(tool, cache).map((x) => x.memory.a.anonMiB);
    return runs.length ? Math.max(...runs) : undefined;
  };
  /** The median of the rounds' own ratios (Ferry / Syncthing of the same round: the load they shared). */
  const scanRoundRatio = (cache: ScanCache): number | undefined => {
    const ratios = scansOf('ferry', cache).flatMap((f) => {
      const s = scansOf('syncthing', cache).find((x) => x.round === f.round);
      return s ? [f.seconds / s.seconds] : [];
    });
    return ratios.length ? median(ratios) : undefined;
  };
  const scanLoads = (cache: ScanCache): string => {
    const loads = user.scans.filter((x) => x.cache === cache).map((x) => x.load);
    return loads.length ? `median ${f2(median(loads), 1)} (${f2(Math.min(...loads), 1)}-${f2(Math.max(...loads), 1)})` : '-';
  };
  const scanLines = [...new Set(user.scans.map((x) => x.cache))].map(
    (cache) =>
      `- page cache ${cache}: Ferry ${f2(scanMedian('ferry', cache))} s (CPU ${f2(scanMedian('ferry', cache, (x) => x.cpuA), 1)} s), ` +
      `Syncthing ${f2(scanMedian('syncthing', cache))} s (CPU ${f2(scanMedian('syncthing', cache, (x) => x.cpuA), 1)} s), ` +
      `ratio ${ratio(scanMedian('ferry', cache), scanMedian('syncthing', cache))}; anon peak Ferry ${f2(scanAnon('ferry', cache), 0)} MiB, ` +
      `Syncthing ${f2(scanAnon('syncthing', cache), 0)} MiB; runs ${scansOf('ferry', cache).length} / ${scansOf('syncthing', cache).length}; ` +
      `ratio of each round's pair, median ${f2(scanRoundRatio(cache))}; load ${scanLoads(cache)}`,
  );
  const diffs = user.sessions
    .filter((s) => s.diff.examples.length > 0)
    .map((s) => `- ${s.tool} ${s.dataset} round ${s.round + 1}: of ${s.diff.entries} entries missing ${JSON.stringify(s.diff.missing)}, differing ${s.diff.differing}, extra ${s.diff.extra}; e.g. ${s.diff.examples.slice(0, 3).join('; ')}`);

  const heading = `${version ?? 'no Syncthing'}, ${cpus().length} cores, ${new Date().toISOString()}; medians (user method: ${rounds} rounds, scale/real/scan ${bigRounds}; old harness ${oldRounds}), tools alternating; memory: highest peak, summed over each tool's processes (Syncthing: monitor + worker)`;
  const md = [
    `# Ferry and Syncthing by one method (issue 29)`,
    ``,
    heading,
    ``,
    `Limits in the same run: SHA-256 ${limits.sha256MiBps.toFixed(0)} MiB/s, AES-256-GCM ${limits.aes256gcmMiBps.toFixed(0)} MiB/s (openssl speed, one thread)` +
      (old ? `; cp -r + sync: ${Object.entries(old.copy).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ')}` : ''),
    ``,
    `User method: the empty folders shared and connected first; the dataset copied beside A's folder, synced and read once, then moved in (one rename);`,
    `the clock stops when inotifywait on B's tree (confirmed by one walk) has seen every file at its final name and size. Old harness: a cold start`,
    `(folder added with the files present) until B's own status says complete.`,
    ``,
    ...(rows.length > 1 ? mdTable(rows) : [`(no sync dataset in this run)`]),
    ``,
    `Initial scan of ${process.env.BENCH_SCAN_FILES ?? 100_000} files of 1 KiB (folder added with the files present, until idle with all of them):`,
    ...(scanLines.length ? scanLines : ['- not run']),
    ``,
    diffs.length ? `Entries not carried (compared untimed, both trees hashed):\n${diffs.join('\n')}` : 'Every entry carried identically by both tools.',
    ``,
  ].join('\n');
  console.log(`\n${heading}\n${table(rows)}`);
  console.log(md.split('\n').slice(-6).join('\n'));
  const out = process.env.BENCH_USER_OUT ?? 'user';
  await writeFile(join(results, `${out}.md`), md);
  await writeFile(
    join(results, `${out}.json`),
    JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, syncthing: version, sizes, limits, rounds, bigRounds, user, old }, null, 2) + '\n',
  );
  console.log(`written ${join(results, out)}.json and .md`);
}

function mdTable(rows: (string | number)[][]): string[] {
  const [head, ...body] = rows;
  return [`| ${head!.join(' | ')} |`, `|${head!.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)];
}
