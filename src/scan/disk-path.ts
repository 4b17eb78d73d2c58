// Maps folder-relative NFC paths (as indexed) to the names actually on disk, which may be NFD (macOS clients, SMB).

import { opendir } from 'node:fs/promises';
import { join } from 'node:path';

/** Relative path as indexed: NFC, '/'-separated (the walker only ever produces '/' on POSIX). */
export function toIndexPath(diskRelPath: string): string {
  return diskRelPath.normalize('NFC');
}

function needsNormalisationLookup(name: string): boolean {
  return name !== name.normalize('NFD');
}

async function findNameInDir(absDir: string, nfcName: string): Promise<string | undefined> {
  let dir;
  try {
    dir = await opendir(absDir);
  } catch {
    return undefined;
  }
  try {
    for await (const entry of dir) {
      if (entry.name.normalize('NFC') === nfcName) return entry.name;
    }
  } catch {
    // dir closes itself on error or early exit of for-await
  }
  return undefined;
}

/**
 * The on-disk relative path for an indexed (NFC) path: the path itself when it exists, otherwise each
 * component whose NFC form could be spelled differently is looked up in its parent directory.
 * Returns undefined when no such entry exists. Only composed characters cost a directory listing.
 */
export async function resolveDiskPath(
  root: string,
  indexPath: string,
  exists: (absPath: string) => Promise<boolean>,
): Promise<string | undefined> {
  if (indexPath === '') return '';
  if (await exists(join(root, indexPath))) return indexPath;
  if (!needsNormalisationLookup(indexPath)) return undefined;
  let diskRel = '';
  for (const part of indexPath.split('/')) {
    const candidate = diskRel === '' ? part : `${diskRel}/${part}`;
    if (await exists(join(root, candidate))) {
      diskRel = candidate;
      continue;
    }
    if (!needsNormalisationLookup(part)) return undefined;
    const found = await findNameInDir(join(root, diskRel), part);
    if (found === undefined) return undefined;
    diskRel = diskRel === '' ? found : `${diskRel}/${found}`;
  }
  return diskRel;
}
