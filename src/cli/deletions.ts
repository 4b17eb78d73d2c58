// `ferry deletions FOLDER [--apply|--restore]`: a mass delete held by the guard; `ferry restore FOLDER --all|PREFIX`: bulk restore from the archive.

import { FerryError } from '../errors.js';
import type { BulkRestoreReport, FolderReport, StatusReport, VersionReport } from '../web/daemon-api.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';
import { folderArgument } from './folder-commands.js';

export const DELETIONS_USAGE = 'ferry deletions FOLDER [--apply | --restore] [--json] [--home DIR]';
export const RESTORE_USAGE = 'ferry restore FOLDER (--all | PATH-PREFIX | PATH --at TIME) [--home DIR]';

/** Names from peers are shown as text: no terminal control sequences. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '?');
}

function findFolder(report: StatusReport, folder: string): FolderReport | undefined {
  return report.folders.find((f) => f.id === folder.toLowerCase() || f.path === folder);
}

export async function deletions(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(
    argv,
    { apply: { type: 'boolean' }, restore: { type: 'boolean' }, json: { type: 'boolean' } },
    { min: 1, max: 1 },
    DELETIONS_USAGE,
  );
  if (values.apply && values.restore) throw new FerryError('USAGE', `--apply and --restore exclude each other\nusage: ${DELETIONS_USAGE}`);
  const client = new ControlClient(home);
  const folder = positionals[0]!;
  // The daemon resolves IDs and paths; an unknown folder fails there with a clear message.
  const id = encodeURIComponent(folderArgument(folder));
  if (values.apply) {
    const { applied } = await client.call<{ applied: number }>('POST', `/folders/${id}/deletions/apply`);
    io.out(applied > 0 ? `${applied} held deletions applied: the files go to the folder's archive\n` : 'no deletions are held\n');
    return 0;
  }
  if (values.restore) {
    const { restored } = await client.call<{ restored: number }>('POST', `/folders/${id}/deletions/restore`);
    io.out(restored > 0 ? `${restored} files kept: they come back on every peer\n` : 'no deletions are held\n');
    return 0;
  }
  const report = await client.call<StatusReport>('GET', '/status');
  const found = findFolder(report, decodeURIComponent(id));
  if (!found) throw new FerryError('FOLDER_UNKNOWN', `no shared folder '${folder}' on this device`);
  const held = found.heldDeletions;
  if (values.json) {
    io.out(`${JSON.stringify({ folderId: found.id, held: held ?? null })}\n`);
    return 0;
  }
  if (!held) {
    io.out('no deletions are held\n');
    return 0;
  }
  io.out(`${held.files} deletions held since ${new Date(held.sinceMs).toISOString()}: ${held.reason}\n`);
  io.out(`deleted by ${held.devices.map(printable).join(', ')}, e.g.\n`);
  for (const path of held.examples) io.out(`  ${printable(path)}\n`);
  io.out(`'ferry deletions ${folder} --apply' deletes them here too (into the archive);\n`);
  io.out(`'ferry deletions ${folder} --restore' keeps them and brings them back on every peer\n`);
  return 0;
}

export async function restore(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { all: { type: 'boolean' }, at: { type: 'string' } }, { min: 1, max: 2 }, RESTORE_USAGE);
  const [folder, prefix] = positionals as [string, string | undefined];
  if (typeof values.at === 'string') {
    // One version of one file (`ferry versions` lists them): an edit that syncs, the current version archived first.
    if (values.all || prefix === undefined) throw new FerryError('USAGE', `--at restores one file: give its PATH\nusage: ${RESTORE_USAGE}`);
    const id = encodeURIComponent(folderArgument(folder));
    const done = await new ControlClient(home).call<{ path: string; restored: VersionReport }>('POST', `/folders/${id}/versions/restore`, { path: prefix, at: values.at });
    io.out(`${done.path} restored to its version of ${done.restored.at} (${done.restored.size} bytes); the version it replaced is in the archive\n`);
    return 0;
  }
  if (Boolean(values.all) === (prefix !== undefined)) throw new FerryError('USAGE', `give --all or a path prefix\nusage: ${RESTORE_USAGE}`);
  const id = encodeURIComponent(folderArgument(folder));
  const body = values.all ? { all: true } : { prefix };
  const report = await new ControlClient(home).call<BulkRestoreReport>('POST', `/folders/${id}/archive/restore`, body);
  io.out(`${report.restored} files restored from the archive`);
  if (report.skipped > 0) io.out(`; ${report.skipped} left alone (a file is there now)`);
  if (report.failed > 0) io.out(`; ${report.failed} failed (see the log)`);
  io.out('\n');
  return report.failed > 0 ? 1 : 0;
}
