// Test helpers for the index: temporary stores, record builders and a brute-force recount of a folder.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { open } from 'lmdb';
import { folderRange } from '../../../src/index/keys.js';
import { decodeRecord } from '../../../src/index/record-codec.js';
import { compareVersions, type FileRecord } from '../../../src/index/records.js';
import { IndexStore, type IndexStoreOptions } from '../../../src/index/store.js';
import type { FolderCounts, FolderIndex, NewFileRecord } from '../../../src/index/types.js';

export const FOLDER_A = 'a'.repeat(40);
export const FOLDER_B = 'b'.repeat(40);

export async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-index-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An open store in a fresh directory, closed and deleted when the test ends. */
export async function tempStore(
  t: { after(fn: () => Promise<void>): void },
  options: Partial<IndexStoreOptions> = {},
): Promise<{ store: IndexStore; dir: string }> {
  const dir = await tempDir(t);
  const store = new IndexStore({ path: path.join(dir, 'index'), ...options });
  t.after(() => store.close());
  await store.open();
  return { store, dir: path.join(dir, 'index') };
}

export function hash(n: number): Uint8Array {
  const bytes = new Uint8Array(32);
  new DataView(bytes.buffer).setUint32(0, n);
  bytes[31] = 0xaa;
  return bytes;
}

export function file(p: string, fields: Partial<NewFileRecord> = {}): NewFileRecord {
  return {
    path: p,
    type: 'file',
    size: 10,
    mode: 0o644,
    mtimeMs: 1_700_000_000_000,
    inode: 42,
    version: { DEV1: 1 },
    modifiedBy: 'DEV1',
    blockSize: 131072,
    blocks: [hash(1)],
    deleted: false,
    ...fields,
  };
}

export function paths(records: Iterable<FileRecord>): string[] {
  return [...records].map((r) => r.path);
}

/** Counts computed the slow way, from every local and global record of the folder (independently of src/). */
export function recount(index: FolderIndex): FolderCounts {
  const counts: FolderCounts = { localFiles: 0, localBytes: 0, globalFiles: 0, globalBytes: 0, needFiles: 0, needBytes: 0 };
  const live = (r: FileRecord | undefined): r is FileRecord => r !== undefined && !r.deleted && r.type !== 'dir';
  for (const local of index.localRecords()) {
    if (!live(local)) continue;
    counts.localFiles += 1;
    counts.localBytes += local.size;
  }
  for (const global of index.globalRecords()) {
    if (!live(global)) continue;
    counts.globalFiles += 1;
    counts.globalBytes += global.size;
    const local = index.getLocal(global.path);
    const order = local ? compareVersions(global.version, local.version) : 'newer';
    if (order === 'newer' || order === 'concurrent') {
      counts.needFiles += 1;
      counts.needBytes += global.size;
    }
  }
  return counts;
}

/**
 * Reads the closed environment at `dir` directly and reports where the sequence log and the local
 * records disagree (a stale or missing log entry, a sequence beyond the folder's counter).
 */
export async function sequenceProblems(dir: string, folderId: string): Promise<string[]> {
  const env = open({ path: dir, maxDbs: 32 });
  try {
    const local = env.openDB({ name: 'local', useRecords: false } as { name: string });
    const sequence = env.openDB({ name: 'sequence', useRecords: false } as { name: string });
    const counters = env.openDB({ name: 'counters', useRecords: false } as { name: string });
    // Per-folder keys start with the folder's short prefix (schema 3).
    const prefix = env.openDB({ name: 'meta', useRecords: false } as { name: string }).get(['folderPrefix', folderId]) as string | undefined;
    if (prefix === undefined) return [`no key prefix for folder ${folderId}`];
    const range = folderRange(prefix);
    const problems: string[] = [];
    const logged = new Map<string, number>();
    for (const { key, value } of sequence.getRange(range)) {
      const seq = (key as [string, number])[1];
      const stored: unknown = local.get([prefix, value]);
      const record = stored === undefined ? undefined : decodeRecord(value as string, stored);
      if (!record || record.sequence !== seq) problems.push(`stale log entry ${seq} → ${String(value)}`);
      if (logged.has(value as string)) problems.push(`path logged twice: ${String(value)}`);
      logged.set(value as string, seq);
    }
    const last = (counters.get(folderId) as { sequence?: number } | undefined)?.sequence ?? 0;
    let records = 0;
    for (const { key, value } of local.getRange(range)) {
      records++;
      const record = decodeRecord((key as [string, string])[1], value);
      if (logged.get(record.path) !== record.sequence) problems.push(`record not in the log: ${record.path}`);
      if (record.sequence > last) problems.push(`sequence ${record.sequence} beyond the counter ${last}`);
    }
    if (records !== logged.size) problems.push(`log has ${logged.size} entries for ${records} records`);
    return problems;
  } finally {
    await env.close();
  }
}
