// The one home of the "is the folder's volume there?" rule: a folder's root must exist and hold its
// marker, Ferry's own `.ferry/` directory (made when the folder is shared or joined). A USB disk
// unplugged or a share unmounted leaves the path missing, or an empty directory of the parent
// filesystem: scanning that would turn every file into a deletion, pulling into it would fill the
// wrong disk. The scanner, the puller and the folder check it and stop with a clear status.

import { lstat, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors.js';
import { FERRY_DIR } from './ignore.js';

/** The folder's marker directory: its presence proves the folder's volume is mounted. */
export const FOLDER_MARKER = FERRY_DIR;

/**
 * Why the folder at `root` cannot be used now ("folder path missing", "folder marker missing"), or
 * undefined when its root is a directory holding the marker. Follows a root that is itself a symlink
 * (the user may share one); the marker must be a real directory.
 */
export async function volumeProblem(root: string): Promise<FerryError | undefined> {
  try {
    if (!(await stat(root)).isDirectory()) return new FerryError('FOLDER_NOT_DIRECTORY', `folder path missing: ${root} is not a directory (is the volume mounted?)`);
  } catch (err) {
    return new FerryError('FOLDER_NOT_FOUND', `folder path missing: ${root} is not there (is the volume mounted?)`, { cause: err });
  }
  try {
    if ((await lstat(join(root, FOLDER_MARKER))).isDirectory()) return undefined;
  } catch (err) {
    return new FerryError('FOLDER_NOT_FOUND', `folder marker missing: ${root}/${FOLDER_MARKER}/ is not there (is the volume mounted?); nothing is scanned, pulled or deleted until it is back`, { cause: err });
  }
  return new FerryError('FOLDER_NOT_FOUND', `folder marker missing: ${root}/${FOLDER_MARKER} is not a directory`);
}

/** Throws volumeProblem's error, if any. */
export async function requireVolume(root: string): Promise<void> {
  const problem = await volumeProblem(root);
  if (problem) throw problem;
}
