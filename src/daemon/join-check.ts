// Before a join: what the target directory already holds (files and bytes), counted with a bounded walk.

import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, ioError } from '../errors.js';
import { formatBytes } from '../util/format.js';
import type { JoinCheckReport } from '../web/daemon-api.js';
import { FOLDER_MARKER } from './folder.js';

/** Entries looked at before the count stops and says "at least" (a join needs only to know "not empty"). */
export const JOIN_CHECK_MAX_ENTRIES = 100_000;

/** Files and symlinks under `path` (Ferry's own .ferry/ aside; directories alone count for nothing), never following a link. */
export async function countExisting(path: string, maxEntries = JOIN_CHECK_MAX_ENTRIES): Promise<JoinCheckReport> {
  const report: JoinCheckReport = { path, exists: false, files: 0, bytes: 0, truncated: false };
  try {
    if (!(await lstat(path)).isDirectory()) return { ...report, exists: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return report;
    throw ioError(`cannot read ${path}`, err);
  }
  report.exists = true;
  let seen = 0;
  const pending = [path];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    let handle;
    try {
      handle = await opendir(dir);
    } catch {
      continue; // unreadable: what can be read is what a scan would find
    }
    for await (const entry of handle) {
      if (++seen > maxEntries) {
        report.truncated = true;
        return report; // leaving the loop closes the handle
      }
      if (dir === path && entry.name === FOLDER_MARKER) continue;
      const abs = join(dir, entry.name);
      if (entry.isDirectory()) pending.push(abs);
      else if (entry.isFile() || entry.isSymbolicLink()) {
        report.files++;
        if (entry.isFile()) report.bytes += await lstat(abs).then((s) => s.size, () => 0);
      }
    }
  }
  return report;
}

/** The refusal a join into a non-empty directory gets without `merge`: what is there and what a merge does. */
export function notEmptyError(check: JoinCheckReport): FerryError {
  const files = `${check.truncated ? 'at least ' : ''}${check.files} ${check.files === 1 ? 'file' : 'files'} (${formatBytes(check.bytes)})`;
  return new FerryError(
    'FOLDER_NOT_EMPTY',
    `${check.path} already holds ${files}. Joining merges them into the shared folder: files the peers do not have are sent to them, ` +
      'and where a file differs from the peers\' version the newer one keeps the name and the other becomes a conflict copy ' +
      '(name.conflict-DATE-DEVICE.ext) on every device. Join again with --merge to go ahead, or choose an empty directory.',
  );
}
