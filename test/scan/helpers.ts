// Test helpers for scan/: temp folders, an in-memory FolderIndex (a fake of the LMDB one), and log capture.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../src/util/log.js';
import type { FileRecord, VersionVector } from '../../src/index/records.js';
import { INDEX_ID_BYTES, type BlockLocation, type FolderCounts, type FolderIndex, type LocalStat, type NeededPath, type NewFileRecord } from '../../src/index/types.js';

export async function makeTempDir(cleanups: Array<() => Promise<void>>, prefix = 'ferry-scan-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs registered cleanups in reverse order. */
export async function runCleanups(cleanups: Array<() => Promise<void>>): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ component: 'test', level: 'debug', sink: { write: (line) => lines.push(line) } });
  return { logger, lines };
}

/** A FolderIndex in memory, for scanner tests that do not need LMDB. Counts putLocal calls. */
export class MemoryFolderIndex implements FolderIndex {
  readonly folderId = 'f'.repeat(40);
  private readonly local = new Map<string, FileRecord>();
  private sequence = 0;
  putLocalCalls = 0;

  getLocal(path: string): FileRecord | undefined {
    return this.local.get(path);
  }

  getLocalStat(path: string): LocalStat | undefined {
    return this.local.get(path);
  }

  *localPaths(options: { under?: string } = {}): Iterable<string> {
    for (const record of this.localRecords(options)) yield record.path;
  }

  // The sync side of FolderIndex: the scanner never calls it.
  async offerGlobal(): Promise<FileRecord[]> {
    return [];
  }
  *needed(): Iterable<NeededPath> {}
  hasNeeded(): boolean {
    return false;
  }
  async putRemote(): Promise<void> {}
  remoteVersion(): VersionVector | undefined {
    return undefined;
  }
  devicesWith(): string[] {
    return [];
  }
  async clearRemote(): Promise<void> {}
  indexId(): Buffer {
    return Buffer.alloc(INDEX_ID_BYTES);
  }
  peerIndexId(): Buffer | undefined {
    return undefined;
  }

  async putLocal(records: NewFileRecord[]): Promise<FileRecord[]> {
    this.putLocalCalls++;
    return records.map((record) => {
      const stored: FileRecord = { ...record, sequence: ++this.sequence };
      this.local.set(record.path, stored);
      return stored;
    });
  }

  *localRecords(options: { under?: string } = {}): Iterable<FileRecord> {
    const under = options.under ?? '';
    // A sorted copy, so writes during the iteration do not disturb it (as an LMDB snapshot).
    const paths = [...this.local.keys()].sort();
    for (const path of paths) {
      if (under === '' || path === under || path.startsWith(under + '/')) yield this.local.get(path)!;
    }
  }

  *localSince(sequence: number): Iterable<FileRecord> {
    yield* [...this.local.values()].filter((r) => r.sequence > sequence).sort((a, b) => a.sequence - b.sequence);
  }

  localSequence(): number {
    return this.sequence;
  }

  getGlobal(path: string): FileRecord | undefined {
    return this.local.get(path);
  }

  async putGlobal(): Promise<void> {}

  globalRecords(options?: { under?: string }): Iterable<FileRecord> {
    return this.localRecords(options);
  }

  findBlock(): BlockLocation | undefined {
    return undefined;
  }

  peerSequence(): number {
    return 0;
  }

  async setPeerSequence(): Promise<void> {}

  counts(): FolderCounts {
    const live = [...this.local.values()].filter((r) => !r.deleted && r.type !== 'dir');
    const bytes = live.reduce((sum, r) => sum + r.size, 0);
    return { localFiles: live.length, localBytes: bytes, globalFiles: live.length, globalBytes: bytes, needFiles: 0, needBytes: 0 };
  }
}

/** A promise with its resolver, for waiting on callbacks. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
