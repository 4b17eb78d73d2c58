// Where a renamed single-block file's content is: among the local files whose deletion the puller has due.

import { hashKey } from '../index/keys.js';
import type { NeededPath } from '../index/types.js';

/**
 * Local files noted per pass at most. Beyond it a renamed single-block file is fetched again (one block, at most the
 * block size) instead of moved; the map costs ~150 bytes an entry.
 */
export const RENAME_SOURCES_MAX = 20_000;

/**
 * Single-block files are not in the index's block map (index/folder-index.ts addBlocks), so a rename (a new path and
 * a tombstone for the old one) of a small file is not found through findBlock. The puller notes, while it goes over
 * the needed paths, each local single-block file whose global record is a tombstone, by its block's hash: O(pending
 * deletions), never O(files). The mover (pull-file.ts moveRenamedSource) still checks that the holder's content and
 * version are what a move needs.
 */
export class RenameSources {
  private readonly byHash = new Map<string, string>();

  constructor(private readonly max = RENAME_SOURCES_MAX) {}

  get size(): number {
    return this.byHash.size;
  }

  /** One needed path: kept when its local file of one block is due for deletion. */
  note(need: NeededPath): void {
    const { global, local } = need;
    if (!global.deleted || !local || local.deleted || local.type !== 'file' || local.blocks.length !== 1 || local.size === 0) return;
    if (this.byHash.size >= this.max) return;
    this.byHash.set(hashKey(local.blocks[0]!), local.path);
  }

  /** A path noted with this block hash (the caller checks its record), or undefined. */
  find(hash: Uint8Array): string | undefined {
    return this.byHash.get(hashKey(hash));
  }

  clear(): void {
    this.byHash.clear();
  }
}
