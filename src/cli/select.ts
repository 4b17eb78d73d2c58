// `ferry select`: selective sync, the subtrees of a folder this device does not take (its own setting, never synced).

import { FerryError } from '../errors.js';
import type { SelectionReport } from '../web/daemon-api.js';
import { printable } from '../util/format.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';
import { folderArgument } from './folder-commands.js';

export const SELECT_USAGE = 'ferry select FOLDER [--exclude PATH | --include PATH] [--json] [--home DIR]';

function printSelection(report: SelectionReport, io: Output): void {
  if (report.excluded.length === 0) io.out('every subtree is synced on this device\n');
  else for (const subtree of report.excluded) io.out(`excluded  ${printable(subtree)}\n`);
  if (report.note) io.out(`note: ${report.note}\n`);
  const local = report.localUnselected;
  if (local.count > 0) {
    io.out(`${local.count} local ${local.count === 1 ? 'file' : 'files'} inside excluded subtrees (kept here, not synced):\n`);
    for (const path of local.paths) io.out(`  ${printable(path)}\n`);
  }
}

export async function select(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(
    argv,
    { exclude: { type: 'string' }, include: { type: 'string' }, json: { type: 'boolean' } },
    { min: 1, max: 1 },
    SELECT_USAGE,
  );
  if (values.exclude !== undefined && values.include !== undefined) {
    throw new FerryError('USAGE', `give --exclude or --include, not both\nusage: ${SELECT_USAGE}`);
  }
  const folder = encodeURIComponent(folderArgument(positionals[0]!));
  const client = new ControlClient(home);
  const change = typeof values.exclude === 'string' ? { exclude: values.exclude } : typeof values.include === 'string' ? { include: values.include } : undefined;
  const report = change
    ? await client.call<SelectionReport>('POST', `/folders/${folder}/selection`, change)
    : await client.call<SelectionReport>('GET', `/folders/${folder}/selection`);
  if (values.json) io.out(JSON.stringify(report) + '\n');
  else printSelection(report, io);
  return 0;
}
