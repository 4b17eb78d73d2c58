// Selective sync: the subtrees of a folder this device does not take, kept in this device's folder
// settings (never synced). The puller neither fetches nor deletes inside them, the scanner neither
// walks them nor makes tombstones there; what the device has there it keeps announcing.

import { FerryError } from '../errors.js';
import type { FolderIndex } from '../index/types.js';
import { IgnoreRules, insideSubtrees } from '../scan/ignore.js';
import { walk } from '../scan/walker.js';
import { throwIfAborted } from '../util/abort.js';

/** Excluded subtrees kept per folder: a selection is a handful of directories, never a file list. */
export const MAX_EXCLUDED_SUBTREES = 1000;
/** Local entries in unselected subtrees listed (the count goes on). */
export const MAX_LOCAL_UNSELECTED_LISTED = 100;
/** Reason reported for a local entry inside an unselected subtree (failed items, source LOCAL_UNSELECTED_SOURCE). */
export const LOCAL_UNSELECTED_REASON = "local in unselected: created here inside a subtree this device does not sync; kept, not sent ('ferry select --include' syncs it)";
export const LOCAL_UNSELECTED_SOURCE = 'unselected';

/** A folder-relative subtree as stored: '/'-separated, no leading or trailing slash, no '.' or '..'. */
export function normaliseSubtree(path: string): string {
  if (typeof path !== 'string') throw new FerryError('USAGE', 'a subtree must be a folder-relative path');
  const clean = path.normalize('NFC').replace(/\\/g, '/').replace(/^\/+|\/+$/g, '').replace(/\/{2,}/g, '/');
  if (clean === '') throw new FerryError('USAGE', 'the folder root cannot be excluded (pause the folder instead)');
  if (clean.length > 4096 || clean.split('/').some((part) => part === '.' || part === '..' || part === '')) {
    throw new FerryError('USAGE', `not a folder-relative path: '${path.slice(0, 200)}'`);
  }
  if (clean === '.ferry' || clean.startsWith('.ferry/')) throw new FerryError('USAGE', "'.ferry' is Ferry's own directory and never synced");
  return clean;
}

/**
 * The selection after excluding or including one subtree. Excluding a subtree drops the excluded
 * subtrees inside it; including one drops it and everything excluded below it (an exclusion above
 * it stays: the caller says so).
 */
export function changeSelection(excluded: readonly string[], change: { exclude?: string; include?: string }): string[] {
  let next = [...excluded];
  if (change.exclude !== undefined) {
    const subtree = normaliseSubtree(change.exclude);
    if (!insideSubtrees(subtree, next)) next = [...next.filter((p) => !insideSubtrees(p, [subtree])), subtree];
  }
  if (change.include !== undefined) {
    const subtree = normaliseSubtree(change.include);
    next = next.filter((p) => !insideSubtrees(p, [subtree]));
  }
  if (next.length > MAX_EXCLUDED_SUBTREES) throw new FerryError('USAGE', `at most ${MAX_EXCLUDED_SUBTREES} excluded subtrees per folder`);
  return next.sort();
}

/** The excluded subtree (if any) that still holds a path after an include: the include did not reach it. */
export function stillExcludedBy(excluded: readonly string[], path: string): string | undefined {
  return excluded.find((subtree) => path === subtree || path.startsWith(subtree + '/'));
}

export interface LocalUnselected {
  /** Entries on disk inside unselected subtrees that the index does not hold as they are. */
  count: number;
  /** The first MAX_LOCAL_UNSELECTED_LISTED of them, in walk order. */
  paths: string[];
}

/**
 * Walks the unselected subtrees on disk: files and symlinks there that this device's index does not
 * hold as they are (created or changed here while unselected) are listed. Nothing is changed.
 */
export async function findLocalUnselected(root: string, index: FolderIndex, excluded: readonly string[], signal?: AbortSignal): Promise<LocalUnselected> {
  const found: LocalUnselected = { count: 0, paths: [] };
  if (excluded.length === 0) return found;
  const ignore = await IgnoreRules.load(root).catch(() => IgnoreRules.builtIn());
  for (const under of excluded) {
    for await (const entry of walk(root, { ignore, under, signal, onError: () => undefined, onRefused: () => undefined })) {
      throwIfAborted(signal);
      if (entry.type === 'dir') continue;
      const local = index.getLocalStat(entry.path);
      const known =
        local !== undefined &&
        !local.deleted &&
        local.type === entry.type &&
        (entry.type === 'symlink' ? local.linkTarget === entry.linkTarget : local.size === entry.size && local.mtimeMs === entry.mtimeMs);
      if (known) continue;
      found.count++;
      if (found.paths.length < MAX_LOCAL_UNSELECTED_LISTED) found.paths.push(entry.path);
    }
  }
  return found;
}
