// Temp files left by a killed process (SIGKILL, power loss): at folder start, Ferry's own temps that no needed version will reuse are removed.

import { lstat, readdir, realpath, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FERRY_DIR } from '../scan/ignore.js';
import type { FolderIndex } from '../index/types.js';
import type { Logger } from '../util/log.js';
import { tempName } from './paths.js';

/** Exactly the names tempName() makes: nothing else is ever removed. */
const TEMP_NAME = /^\.ferry-tmp-[0-9a-f]{24}$/;

/**
 * Walks the folder (real directories only, never through a symlink) for temp files named as
 * tempName() makes them and last modified before `startedAtMs` (this process's start: none of
 * ours). A temp of a version still needed is kept, as the puller resumes it; the rest are removed
 * and counted. Run before the puller starts. Errors are logged, never thrown.
 */
export async function sweepOrphanTemps(root: string, index: FolderIndex, startedAtMs: number, logger: Logger): Promise<number> {
  const keep = new Set<string>();
  for (const { global } of index.needed()) {
    if (!global.deleted && global.type === 'file') keep.add(join(root, dirname(global.path), tempName(global.path, global.version)));
  }
  let removed = 0;
  const rootReal = await realpath(root).catch(() => undefined);
  if (!rootReal) return 0;
  const walk = async (dir: string, real: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const abs = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (dir === root && entry.name === FERRY_DIR) continue;
        await walk(abs, join(real, entry.name));
        continue;
      }
      if (!entry.isFile() || !TEMP_NAME.test(entry.name) || keep.has(abs)) continue;
      try {
        const stats = await lstat(abs);
        // Still in the directory we walked (not swapped for a symlink meanwhile), and not ours.
        if (!stats.isFile() || stats.mtimeMs >= startedAtMs || (await realpath(dir)) !== real) continue;
        await rm(abs, { force: true });
        removed++;
      } catch (err) {
        logger.debug('cannot remove an orphaned temp file', { path: abs, err: err as Error });
      }
    }
  };
  await walk(root, rootReal);
  if (removed > 0) logger.info('removed temp files left by an interrupted run', { files: removed });
  return removed;
}
