// One daemon (A) alone, first scan of a tree: its anonymous memory over the scan, split into the malloc arena
// ([heap] in smaps) and the other anonymous mappings (V8's pages, other arenas), sampled every SCAN_ANON_EVERY_MS.
// Usage: node build/bench/scan-anon.js TREE FILES OUT.json  (FERRY_MEMORY_TRACE=DIR adds the daemon's own V8 peaks).

import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ControlClient } from '../src/cli/client.js';
import type { StatusReport } from '../src/web/daemon-api.js';
import { DaemonProcess } from '../test/helpers/daemon.js';

interface Sample {
  s: number;
  files: number;
  anonMiB: number;
  heapMiB: number;
  otherAnonMiB: number;
}

async function smaps(pid: number): Promise<{ anonMiB: number; heapMiB: number }> {
  const text = await readFile(`/proc/${pid}/smaps`, 'utf8');
  let anon = 0;
  let heap = 0;
  let inHeap = false;
  for (const line of text.split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      inHeap = line.endsWith('[heap]');
      continue;
    }
    if (line.startsWith('Anonymous:')) {
      const kib = Number(line.split(/\s+/)[1]);
      anon += kib;
      if (inHeap) heap += kib;
    }
  }
  return { anonMiB: anon / 1024, heapMiB: heap / 1024 };
}

async function main(): Promise<void> {
  const [tree, filesArg, out] = process.argv.slice(2);
  if (!tree || !filesArg || !out) throw new Error('usage: scan-anon TREE FILES OUT.json');
  const files = Number(filesArg);
  const home = `${out}.home`;
  await rm(home, { recursive: true, force: true });
  const nodeFlags = process.env.SCAN_ANON_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [];
  const daemon = new DaemonProcess(home, ['--log-level', 'warn'], {}, nodeFlags);
  const samples: Sample[] = [];
  try {
    await daemon.ready(10 * 60_000);
    const client = new ControlClient(home);
    const pid = daemon.child.pid!;
    const start = Date.now();
    await client.call('POST', '/folders', { path: tree });
    const every = Number(process.env.SCAN_ANON_EVERY_MS ?? 500);
    let peak: Sample | undefined;
    let lastLog = 0;
    const snapAt = (process.env.SCAN_ANON_SNAPSHOT_AT ?? '').split(',').filter(Boolean).map(Number);
    for (;;) {
      const folder = (await client.call<StatusReport>('GET', '/status').catch(() => undefined))?.folders[0];
      if (!folder) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      const mem = await smaps(pid);
      const sample: Sample = {
        s: (Date.now() - start) / 1000,
        files: folder?.localFiles ?? 0,
        anonMiB: +mem.anonMiB.toFixed(2),
        heapMiB: +mem.heapMiB.toFixed(2),
        otherAnonMiB: +(mem.anonMiB - mem.heapMiB).toFixed(2),
      };
      samples.push(sample);
      if (!peak || sample.anonMiB > peak.anonMiB) peak = sample;
      if (snapAt.length > 0 && sample.files >= snapAt[0]!) {
        snapAt.shift();
        process.kill(pid, 'SIGUSR2');
      }
      if (sample.s - lastLog >= 30) {
        lastLog = sample.s;
        console.log(JSON.stringify(sample), `peak ${peak.anonMiB}`);
      }
      if (folder && folder.state !== 'scanning' && folder.localFiles === files + 1) break;
      await new Promise((resolve) => setTimeout(resolve, every));
    }
    const scanSeconds = (Date.now() - start) / 1000;
    const maxHeap = Math.max(...samples.map((x) => x.heapMiB));
    const maxOther = Math.max(...samples.map((x) => x.otherAnonMiB));
    const result = { tree, files, scanSeconds, peak, maxHeapMiB: maxHeap, maxOtherAnonMiB: maxOther, load: (await readFile('/proc/loadavg', 'utf8')).trim(), samples };
    await writeFile(out, JSON.stringify(result, null, 1));
    console.log(`scan ${scanSeconds.toFixed(1)} s, anon peak ${peak?.anonMiB} MiB ([heap] then ${peak?.heapMiB}), max [heap] ${maxHeap}, max other ${maxOther}; load ${result.load}`);
  } finally {
    await daemon.stop();
    await rm(join(home), { recursive: true, force: true });
  }
}

await main();
