// `ferry conflicts FOLDER [--json]` lists a folder's current conflicts; `ferry resolve FOLDER PATH --keep …` settles one.

import { existsSync } from 'node:fs';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { FerryError } from '../errors.js';
import { formatBytes, printable } from '../util/format.js';
import type { ConflictKeep, ConflictListing, ConflictResolutionReport, ConflictVersionReport } from '../web/daemon-api.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';
import { folderArgument } from './folder-commands.js';

export const CONFLICTS_USAGE = 'ferry conflicts FOLDER [--json] [--home DIR]';
export const RESOLVE_USAGE = 'ferry resolve FOLDER PATH --keep original|copy|both [--name NEW-PATH] [--home DIR]';

/** Pages asked of the daemon at once (its own limit per page). */
const PAGE = 500;

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

function who(version: ConflictVersionReport): string {
  return version.deviceName ? `${printable(version.deviceName)} (${version.device})` : version.device;
}

export async function conflicts(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 1, max: 1 }, CONFLICTS_USAGE);
  const client = new ControlClient(home);
  const folder = encodeURIComponent(folderArgument(positionals[0]!));
  const first = await client.call<ConflictListing>('GET', `/folders/${folder}/conflicts?limit=${PAGE}`);
  const all = [...first.conflicts];
  while (all.length < first.total) {
    const next = await client.call<ConflictListing>('GET', `/folders/${folder}/conflicts?limit=${PAGE}&offset=${all.length}`);
    if (next.conflicts.length === 0) break;
    all.push(...next.conflicts);
  }
  if (values.json) {
    io.out(`${JSON.stringify({ folderId: first.folderId, total: all.length, conflicts: all })}\n`);
    return 0;
  }
  if (all.length === 0) {
    io.out('no conflicts\n');
    return 0;
  }
  io.out(`${all.length} ${all.length === 1 ? 'conflict' : 'conflicts'}:\n`);
  for (const c of all) {
    io.out(`\n${printable(c.path)}\n`);
    io.out(`  original  ${formatBytes(c.original.size).padEnd(10)} ${when(c.original.mtimeMs)}  by ${who(c.original)}\n`);
    io.out(`  copy      ${formatBytes(c.copy.size).padEnd(10)} ${when(c.copy.mtimeMs)}  by ${who(c.copy)}   ${printable(c.copyPath)}\n`);
  }
  io.out(`\nresolve one with: ${RESOLVE_USAGE.replace(' [--home DIR]', '')}\n`);
  return 0;
}

export async function resolve(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { keep: { type: 'string' }, name: { type: 'string' } }, { min: 2, max: 2 }, RESOLVE_USAGE);
  const keep = values.keep;
  if (keep !== 'original' && keep !== 'copy' && keep !== 'both') {
    throw new FerryError('USAGE', `--keep takes original, copy or both\nusage: ${RESOLVE_USAGE}`);
  }
  const name = typeof values.name === 'string' ? values.name : undefined;
  if (name !== undefined && keep !== 'both') throw new FerryError('USAGE', `--name goes with --keep both\nusage: ${RESOLVE_USAGE}`);
  const folder = encodeURIComponent(folderArgument(positionals[0]!));
  // A path that names a file from here (tab completion inside the folder) goes absolute; the daemon takes it relative to the folder.
  const given = positionals[1]!;
  const path = !isAbsolute(given) && existsSync(resolvePath(given)) ? resolvePath(given) : given;
  const done = await new ControlClient(home).call<ConflictResolutionReport>('POST', `/folders/${folder}/conflicts/resolve`, {
    path,
    keep: keep satisfies ConflictKeep,
    ...(name !== undefined ? { name } : {}),
  });
  const original = printable(done.path);
  if (done.keep === 'original') io.out(`kept the original ${original}; the copy went to the archive\n`);
  else if (done.keep === 'copy') io.out(`kept the copy as ${original}; the original went to the archive\n`);
  else io.out(`kept both: ${original}, and the copy as ${printable(done.renamedTo ?? '')}\n`);
  return 0;
}
