// Sync benchmark datasets (generated, deterministic) and the check that a copy is complete and identical.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { writeRandomFile, writeSmallFiles } from './lib.js';

const MIB = 1024 * 1024;

export interface Dataset {
  name: 'large' | 'small' | 'mixed';
  /** Files (not directories) and their bytes, as a complete copy holds them. */
  files: number;
  bytes: number;
  /** Writes the dataset into an empty directory. */
  generate(dir: string): Promise<void>;
}

export interface DatasetSizes {
  largeMiB: number;
  smallFiles: number;
  smallFileBytes: number;
  mixedMiB: number;
}

export function sizesFromEnv(env = process.env): DatasetSizes {
  return {
    largeMiB: Number(env.BENCH_LARGE_MIB ?? 1024),
    smallFiles: Number(env.BENCH_SYNC_SMALL_FILES ?? 20_000),
    smallFileBytes: 4096,
    mixedMiB: Number(env.BENCH_MIXED_MIB ?? 500),
  };
}

export const LARGE_FILE = 'large.bin';

/**
 * Real-world sizes for a ~500 MiB folder (a NAS share of media and documents): a few videos, some
 * archives, many photos, documents, and a long tail of small files. Counts scale with the total.
 */
const MIXED_CLASSES = [
  { dir: 'video', count: 2, bytes: 100 * MIB },
  { dir: 'archives', count: 10, bytes: 10 * MIB },
  { dir: 'photos', count: 50, bytes: 3 * MIB },
  { dir: 'documents', count: 200, bytes: 200 * 1024 },
  { dir: 'notes', count: 1000, bytes: 10 * 1024 },
  { dir: 'config', count: 1000, bytes: 1024 },
] as const;

function mixedPlan(totalMiB: number, env = process.env): Array<{ dir: string; count: number; bytes: number }> {
  const scale = totalMiB / 500;
  // BENCH_MIXED_CLASSES (e.g. "photos,documents"): only those classes, for per-class profiles (bench/results/user-speed-session9.md).
  const only = env.BENCH_MIXED_CLASSES?.split(',').filter(Boolean);
  return MIXED_CLASSES.filter((c) => !only || only.includes(c.dir)).map((c) => ({ dir: c.dir, count: Math.max(1, Math.round(c.count * scale)), bytes: c.bytes }));
}

export function datasets(sizes: DatasetSizes): Dataset[] {
  const plan = mixedPlan(sizes.mixedMiB);
  return [
    {
      name: 'large',
      files: 1,
      bytes: sizes.largeMiB * MIB,
      generate: async (dir) => {
        await mkdir(dir, { recursive: true });
        await writeRandomFile(join(dir, LARGE_FILE), sizes.largeMiB * MIB, 'large');
      },
    },
    {
      name: 'small',
      files: sizes.smallFiles,
      bytes: sizes.smallFiles * sizes.smallFileBytes,
      generate: async (dir) => {
        await mkdir(dir, { recursive: true });
        await writeSmallFiles(dir, sizes.smallFiles, sizes.smallFileBytes);
      },
    },
    {
      name: 'mixed',
      files: plan.reduce((n, c) => n + c.count, 0),
      bytes: plan.reduce((n, c) => n + c.count * c.bytes, 0),
      generate: async (dir) => {
        for (const c of plan) {
          for (let i = 0; i < c.count; i++) {
            // Nested like a real share: up to 50 files per directory.
            const sub = join(dir, c.dir, `set-${Math.floor(i / 50)}`);
            if (i % 50 === 0) await mkdir(sub, { recursive: true });
            await writeRandomFile(join(sub, `${c.dir}-${i}.dat`), c.bytes, `${c.dir}-${i}`);
          }
        }
      },
    },
  ];
}

/** Overwrites `bytes` in the middle of a file (centred, so it straddles blocks) and gives it a new mtime. */
export async function changeMiddle(path: string, bytes: number, seed: string): Promise<{ mtimeMs: number }> {
  const { size } = await lstat(path);
  const offset = Math.max(0, Math.floor(size / 2 - bytes / 2));
  const { createCipheriv } = await import('node:crypto');
  const key = createHash('sha256').update(seed).digest();
  const data = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
  const handle = await open(path, 'r+');
  try {
    await handle.write(data, 0, data.length, offset);
  } finally {
    await handle.close();
  }
  const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 + 1000);
  await utimes(path, mtime, mtime);
  return { mtimeMs: mtime.getTime() };
}

/** Tool markers left out of comparisons. */
const TOOL_FILES = new Set(['.ferry', '.stfolder', '.stversions', '.stignore']);

interface Entry {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  size: number;
}

async function listTree(root: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const dirent of await readdir(dir, { withFileTypes: true })) {
      if (rel === '' && TOOL_FILES.has(dirent.name)) continue;
      if (dirent.name.startsWith('.syncthing.') || dirent.name.startsWith('~syncthing~')) continue;
      const path = rel ? `${rel}/${dirent.name}` : dirent.name;
      if (dirent.isDirectory()) {
        out.push({ path, type: 'dir', size: 0 });
        await walk(join(dir, dirent.name), path);
      } else if (dirent.isSymbolicLink()) out.push({ path, type: 'symlink', size: 0 });
      else out.push({ path, type: 'file', size: (await lstat(join(dir, dirent.name))).size });
    }
  };
  await walk(root, '');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function fileHash(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MIB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Throws unless `copy` holds exactly the entries and bytes of `source` (Ferry's and Syncthing's own files aside). */
export async function verifyCopy(source: string, copy: string): Promise<void> {
  const [a, b] = await Promise.all([listTree(source), listTree(copy)]);
  if (a.length !== b.length) throw new Error(`copy has ${b.length} entries, source ${a.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.path !== y.path || x.type !== y.type || x.size !== y.size) {
      throw new Error(`copy differs at ${x.path} (${x.type} ${x.size}) / ${y.path} (${y.type} ${y.size})`);
    }
    if (x.type === 'file' && (await fileHash(join(source, x.path))) !== (await fileHash(join(copy, y.path)))) {
      throw new Error(`content of ${x.path} differs`);
    }
  }
}
