// The receiver's index writes alone, in this process (issue 26 item 5): does LMDB's native memory grow with the
// folder? B's pattern for a tree of 1 KiB files: the peer's index in batches of 1,000 (offerGlobal, putRemote and
// setPeerSequence issued together, as folder-links.ts does), and the files installed behind it in putLocal batches
// (INSTALL_BATCH, several in flight). Every REPORT_EVERY files: glibc's main arena ([heap] in smaps, where LMDB's
// dirty pages are malloc'd and kept on its free list until the environment closes), all anonymous memory, and V8's
// used heap after a full collection (run with --expose-gc).
// Usage: node --expose-gc build/bench/receiver-index-anon.js FILES [OUT.json]

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileRecord } from '../src/index/records.js';
import { IndexStore } from '../src/index/store.js';
import type { NewFileRecord } from '../src/index/types.js';

const REMOTE_BATCH = 1000;
const INSTALL_BATCH = Number(process.env.INSTALL_BATCH ?? 100);
const INSTALLS_IN_FLIGHT = 4;
const REPORT_EVERY = 50_000;
const FOLDER = 'a'.repeat(40);
const PEER = 'B'.repeat(52);
const AUTHOR = 'AAAAAAA';

interface Sample {
  files: number;
  mallocHeapMiB: number;
  anonMiB: number;
  v8UsedMiB: number;
}

async function sample(files: number): Promise<Sample> {
  (globalThis as { gc?: () => void }).gc?.();
  let heap = 0;
  let anon = 0;
  let inHeap = false;
  for (const line of (await readFile('/proc/self/smaps', 'utf8')).split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.endsWith('[heap]');
    else if (line.startsWith('Anonymous:')) {
      const kib = Number(line.split(/\s+/)[1]);
      anon += kib;
      if (inHeap) heap += kib;
    }
  }
  const mib = (kib: number): number => Math.round(kib / 102.4) / 10;
  return { files, mallocHeapMiB: mib(heap), anonMiB: mib(anon), v8UsedMiB: Math.round(process.memoryUsage().heapUsed / 104857.6) / 10 };
}

function hash(n: number): Uint8Array {
  const bytes = new Uint8Array(32);
  new DataView(bytes.buffer).setUint32(0, n);
  bytes[31] = 0xaa;
  return bytes;
}

/** The bench's tree (index-scale.ts writeTree): 100 files a directory, 10 directories a parent. */
function pathOf(i: number): string {
  return `g${Math.floor(i / 1000)}/d${Math.floor(i / 100) % 10}/f${i}.dat`;
}

function record(i: number): NewFileRecord {
  return {
    path: pathOf(i),
    type: 'file',
    size: 1024,
    mode: 0o644,
    mtimeMs: 1_700_000_000_000,
    inode: i + 1,
    version: { [AUTHOR]: 1 },
    modifiedBy: AUTHOR,
    blockSize: 131072,
    blocks: [hash(i)],
    deleted: false,
  };
}

async function main(): Promise<void> {
  const files = Number(process.argv[2] ?? 100_000);
  const out = process.argv[3];
  const dir = await mkdtemp(join(tmpdir(), 'ferry-receiver-index-'));
  const store = new IndexStore({ path: join(dir, 'index'), repack: false, backgroundRepack: false });
  await store.open();
  const samples: Sample[] = [await sample(0)];
  try {
    const index = store.folder(FOLDER);
    let installed = 0;
    for (let start = 0; start < files; start += REMOTE_BATCH) {
      const count = Math.min(REMOTE_BATCH, files - start);
      const remote: FileRecord[] = Array.from({ length: count }, (_, k) => ({ ...record(start + k), inode: 0, sequence: start + k + 1 }));
      await Promise.all([index.offerGlobal(remote), index.putRemote(PEER, remote), index.setPeerSequence(PEER, start + count)]);
      // The installs follow one remote batch behind, a few batches in flight.
      const inFlight: Promise<unknown>[] = [];
      while (installed + INSTALL_BATCH <= start) {
        const batch = Array.from({ length: INSTALL_BATCH }, (_, k) => record(installed + k));
        installed += INSTALL_BATCH;
        inFlight.push(index.putLocal(batch));
        if (inFlight.length >= INSTALLS_IN_FLIGHT) await inFlight.shift();
      }
      await Promise.all(inFlight);
      if ((start + count) % REPORT_EVERY === 0 || start + count === files) {
        const now = await sample(start + count);
        samples.push(now);
        console.log(JSON.stringify(now));
      }
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  if (out) await writeFile(out, JSON.stringify({ files, installBatch: INSTALL_BATCH, samples }, null, 1) + '\n');
}

await main();
