// The local files one fetch copies blocks from: each opened once (never through a symlink at the last component), at most MAX_SOURCE_FILES at a time, closed only when no read uses it.

import { join } from 'node:path';
import type { BufferPool } from '../util/buffer-pool.js';
import { closeQuietly, openFd, READ_NO_FOLLOW, readExactly } from '../util/fd.js';

/** Local files kept open at once while copying blocks from them. */
const MAX_SOURCE_FILES = 16;

interface Source {
  fd: Promise<number>;
  users: number;
  closing: boolean;
}

/** Opened by the fetch that reads them; close() when it ends (files still being read close after their read). */
export class SourceFiles {
  private readonly sources = new Map<string, Source>();

  constructor(
    private readonly root: string,
    private readonly buffers: BufferPool,
    /** Where a local file moved to by the puller is now (its blocks are still indexed under the old path). */
    private readonly relocated?: (path: string) => string | undefined,
  ) {}

  /** `length` bytes at `position` of the folder's file `path`; undefined when it cannot be read (moved, changed, gone). */
  async read(path: string, position: number, length: number): Promise<Buffer | undefined> {
    // A second try opens the file again: one moved by the puller may have been renamed into place
    // between looking up where it is and opening it.
    for (let attempt = 0; attempt < 2; attempt++) {
      const source = this.open(path);
      source.users++;
      try {
        return await readExactly(await source.fd, length, position, this.buffers);
      } catch {
        if (this.sources.get(path) === source) {
          this.sources.delete(path);
          source.closing = true;
        }
      } finally {
        source.users--;
        if (source.closing && source.users === 0) void source.fd.then(closeQuietly, () => undefined);
      }
    }
    return undefined; // moved or changed since it was indexed: fetch from a peer instead
  }

  /**
   * Forgets the files blocks were copied from; each is closed once no read uses it (a descriptor
   * closed under a read could be reused by another open and be read in its place).
   */
  close(): void {
    for (const source of this.sources.values()) {
      source.closing = true;
      if (source.users === 0) void source.fd.then(closeQuietly, () => undefined);
    }
    this.sources.clear();
  }

  private open(path: string): Source {
    let source = this.sources.get(path);
    if (!source) {
      if (this.sources.size >= MAX_SOURCE_FILES) this.close();
      // Never opened through a symlink at the last component; the hash check covers the rest.
      const fd = openFd(this.relocated?.(path) ?? join(this.root, path), READ_NO_FOLLOW);
      fd.catch(() => undefined); // awaited by the readers; a failure is theirs to handle
      source = { fd, users: 0, closing: false };
      this.sources.set(path, source);
    }
    return source;
  }
}
