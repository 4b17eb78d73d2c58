// `ferry versions FOLDER PATH`: a file's versions in the folder's archive (`ferry restore FOLDER PATH --at TIME` puts one back).

import type { VersionsReport } from '../web/daemon-api.js';
import { formatBytes, printable } from '../util/format.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';
import { folderArgument } from './folder-commands.js';

export const VERSIONS_USAGE = 'ferry versions FOLDER PATH [--json] [--home DIR]';

export async function versions(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 2, max: 2 }, VERSIONS_USAGE);
  const folder = encodeURIComponent(folderArgument(positionals[0]!));
  const report = await new ControlClient(home).call<VersionsReport>('GET', `/folders/${folder}/versions?path=${encodeURIComponent(positionals[1]!)}`);
  if (values.json) {
    io.out(JSON.stringify(report) + '\n');
    return 0;
  }
  if (report.versions.length === 0) {
    io.out(`${printable(report.path)} has no archived versions\n`);
    return 0;
  }
  io.out(`${report.versions.length} archived ${report.versions.length === 1 ? 'version' : 'versions'} of ${printable(report.path)}, newest first:\n`);
  for (const v of report.versions) {
    const by = v.device ? `  by ${v.deviceName ? `${printable(v.deviceName)} (${v.device.slice(0, 7)})` : v.device.slice(0, 7)}` : '';
    io.out(`  ${v.at}  ${formatBytes(v.size).padStart(10)}${by}\n`);
  }
  io.out(`'ferry restore ${positionals[0]} ${printable(report.path)} --at TIME' puts one back (the current version goes to the archive)\n`);
  return 0;
}
