// Test helpers: describe a folder tree (types, sizes, modes, content hashes) to compare two devices' copies.

import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface TreeEntry {
  type: 'file' | 'dir' | 'symlink';
  mode?: number;
  sha256?: string;
  target?: string;
}

/** Every entry under root except Ferry's own `.ferry/`, keyed by NFC relative path. */
export async function describeTree(root: string, options: { modes?: boolean } = {}): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (rel === '' && entry.name === '.ferry') continue;
      const path = rel ? `${rel}/${entry.name.normalize('NFC')}` : entry.name.normalize('NFC');
      const full = join(dir, entry.name);
      const info = await lstat(full);
      if (info.isSymbolicLink()) out[path] = { type: 'symlink', target: await readlink(full) };
      else if (info.isDirectory()) {
        out[path] = { type: 'dir', ...(options.modes ? { mode: info.mode & 0o777 } : {}) };
        await walk(full, path);
      } else {
        out[path] = {
          type: 'file',
          sha256: createHash('sha256').update(await readFile(full)).digest('hex'),
          ...(options.modes ? { mode: info.mode & 0o777 } : {}),
        };
      }
    }
  };
  await walk(root, '');
  // Sorted, so two trees compare equal whatever order the directories were read in.
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
