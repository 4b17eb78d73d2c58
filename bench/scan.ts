// Scan benchmarks: hash and index one large file, and many small files, in a real daemon.

import { rm, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../src/cli/client.js';
import type { KeysReport, StatusReport } from '../src/web/daemon-api.js';
import { DaemonProcess, tempDir, waitFor } from '../test/helpers/daemon.js';
import { run, sampleProcess, seconds, settlePageCache, writeRandomFile, writeSmallFiles, type MemoryPeaks } from './lib.js';

export interface ScanResult {
  name: string;
  files: number;
  bytes: number;
  seconds: number;
  mbPerS: number;
  filesPerS: number;
  memory: MemoryPeaks;
  cache: string;
}

/** Shares `folder` in a fresh daemon and times until every file is indexed. */
async function timeScan(name: string, folder: string, files: number, bytes: number): Promise<ScanResult> {
  const base = await tempDir(`bench-${name}`);
  const daemon = new DaemonProcess(join(base, 'home'), [], {});
  try {
    await daemon.ready();
    const client = new ControlClient(daemon.home);
    const cache = await settlePageCache();
    const memory = sampleProcess(daemon.child.pid!);
    const start = process.hrtime.bigint();
    await client.call<KeysReport>('POST', '/folders', { path: folder });
    await waitFor(async () => {
      const f = (await client.call<StatusReport>('GET', '/status')).folders[0];
      return f && f.state === 'idle' && f.localFiles === files && f.localBytes === bytes;
    }, `${name} to be indexed`, 30 * 60_000);
    const elapsed = seconds(start);
    return {
      name, files, bytes, seconds: elapsed, mbPerS: bytes / 1e6 / elapsed, filesPerS: files / elapsed, memory: await memory.stop(), cache,
    };
  } finally {
    await daemon.stop();
    await rm(base, { recursive: true, force: true });
  }
}

export async function benchLargeFile(work: string, sizeBytes: number): Promise<{ ferry: ScanResult; opensslMBps: number }> {
  const dir = join(work, 'large');
  await mkdir(dir, { recursive: true });
  await writeRandomFile(join(dir, 'large.bin'), sizeBytes);
  await settlePageCache();
  const start = process.hrtime.bigint();
  await run('openssl', ['dgst', '-sha256', join(dir, 'large.bin')]);
  const opensslMBps = sizeBytes / 1e6 / seconds(start);
  const result = await timeScan('large', dir, 1, sizeBytes);
  await rm(dir, { recursive: true, force: true });
  return { ferry: result, opensslMBps };
}

export async function benchSmallFiles(work: string, count: number, size: number): Promise<ScanResult> {
  const dir = join(work, `small-${count}`);
  await writeSmallFiles(dir, count, size);
  const result = await timeScan(`small-${count}`, dir, count, count * size);
  await rm(dir, { recursive: true, force: true });
  return result;
}

/**
 * BENCH=scan-tree BENCH_SCAN_TREE=<dir> [BENCH_SCAN_COLD=1]: the Scanner alone (LMDB IndexStore, HashPool, no daemon) on an
 * existing tree, left unchanged: a first scan into an empty index, then a rescan; wall and CPU seconds of this process,
 * transactions. Per-change figures without the daemon's other work (bench/results/scan-100k.md).
 */
export async function benchScanTree(tree: string): Promise<void> {
  const { mkdtemp, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { Scanner } = await import('../src/scan/scanner.js');
  const { HashPool } = await import('../src/scan/hash-pool.js');
  const { IndexStore } = await import('../src/index/store.js');
  const home = await mkdtemp(join(tmpdir(), 'ferry-bench-scan-tree-'));
  const store = new IndexStore({ path: home });
  await store.open();
  const pool = new HashPool();
  await pool.open();
  try {
    let transactions = 0;
    const scanner = new Scanner({ root: tree, index: store.folder('ab'.repeat(20)), deviceShortId: 'BENCH', pool, onCommitted: () => transactions++ });
    if (process.env.BENCH_SCAN_COLD) {
      await run('sync');
      await writeFile('/proc/sys/vm/drop_caches', '3\n');
    }
    const timed = async (): Promise<{ seconds: number; cpu: number; scanned: number; changed: number }> => {
      const cpu = process.cpuUsage();
      const start = process.hrtime.bigint();
      const result = await scanner.scan();
      const used = process.cpuUsage(cpu);
      return { seconds: seconds(start), cpu: (used.user + used.system) / 1e6, scanned: result.scanned, changed: result.changed };
    };
    const first = { ...(await timed()), transactions };
    const rescan = await timed();
    console.log(JSON.stringify({ first, rescan }));
  } finally {
    await pool.close();
    await store.close();
    await rm(home, { recursive: true, force: true });
  }
}
