// `ferry backup FILE` / `ferry restore --backup FILE`: a home's device identity, folder keys and
// settings in one owner-only file (the home's portable.json), and back into an empty home.

import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FerryError, ioError } from '../errors.js';
import { FOLDER_MARKER } from '../daemon/folder.js';
import { homeLayout, lockHome, prepareHome, unlockHome } from '../daemon/home.js';
import { parsePortable, readDeviceFiles, readPortable, writePortable, type PortableHome } from '../daemon/portable.js';
import { CERT_FILE, KEY_FILE } from '../keys/index.js';
import { parseCommand, type Output } from './args.js';

export const BACKUP_USAGE = 'ferry backup FILE [--home DIR]';
export const RESTORE_BACKUP_USAGE = 'ferry restore --backup FILE [--home DIR]';

const SECRET_NOTE =
  'The file is SECRET: it holds this device\'s private key and every folder key. Whoever has it can act as this device ' +
  'and read and change its folders. It is written owner-only (mode 0600); keep it that way, offline or encrypted.';

function summary(home: PortableHome): string {
  return `device ${home.device?.id ?? '(no identity)'}, ${home.folders.length} folder${home.folders.length === 1 ? '' : 's'}, settings`;
}

export async function backup(argv: string[], io: Output): Promise<number> {
  const { positionals, home } = parseCommand(argv, {}, { min: 1, max: 1 }, BACKUP_USAGE);
  const layout = homeLayout(home);
  const portable = await readPortable(layout.portableFile);
  if (!portable) {
    throw new FerryError('IO', `${layout.portableFile} does not exist: start the daemon once on this home (it writes the file), then back it up`);
  }
  // The identity files are the authority; the portable file follows them.
  const device = (await readDeviceFiles(layout.deviceDir)) ?? portable.device;
  if (!device) throw new FerryError('IO', `no device identity in ${layout.deviceDir}`);
  const file = resolve(positionals[0]!);
  const { skipped, ...kept } = portable;
  if (skipped) io.err(`${layout.portableFile}: malformed records left out: ${skipped.join('; ')}\n`);
  const data = { ...kept, device };
  await writePortable(file, data);
  io.out(`wrote ${file}: ${summary(data)}\n${SECRET_NOTE}\n`);
  return 0;
}

/** Restores into an empty home (no device key, no index): same device ID; the daemon rebuilds the index on its next start. */
export async function restoreBackup(argv: string[], io: Output): Promise<number> {
  const { values, home } = parseCommand(argv, { backup: { type: 'string' } }, { min: 0, max: 0 }, RESTORE_BACKUP_USAGE);
  const file = resolve(values.backup as string);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw ioError(`cannot read ${file}`, err);
  }
  const { skipped, ...data } = parsePortable(text, file);
  if (skipped) io.err(`${file}: malformed records left out: ${skipped.join('; ')}\n`);
  if (!data.device) throw new FerryError('USAGE', `${file} holds no device identity`);
  const layout = homeLayout(home);
  await prepareHome(layout);
  await lockHome(layout); // refuses while a daemon runs on the home
  try {
    const present = await readDeviceFiles(layout.deviceDir).catch(() => undefined);
    const keyThere = present !== undefined || existsSync(join(layout.deviceDir, KEY_FILE));
    if ((keyThere && present?.id !== data.device.id) || existsSync(join(layout.indexDir, 'data.mdb'))) {
      throw new FerryError(
        'USAGE',
        `${home} is not an empty home (it has ${keyThere ? 'a device identity' : 'an index'}): restore into a new home, or move this one away first`,
      );
    }
    if (!present) {
      await mkdir(layout.deviceDir, { recursive: true, mode: 0o700 });
      await writeFile(join(layout.deviceDir, KEY_FILE), data.device.keyPem, { flag: 'wx', mode: 0o600 });
      await writeFile(join(layout.deviceDir, CERT_FILE), data.device.certPem, { flag: 'wx', mode: 0o644 });
    }
    await writePortable(layout.portableFile, data);
  } finally {
    await unlockHome(layout);
  }
  io.out(`restored ${summary(data)} into ${home}\n`);
  // A folder missing here whose parent exists is created empty (with its marker): it fills from the
  // peers. One whose parent is missing too (an unmounted volume?) is left for the owner.
  const missing: string[] = [];
  for (const folder of data.folders) {
    if (existsSync(folder.path)) continue;
    if (!existsSync(dirname(folder.path))) {
      missing.push(folder.path);
      continue;
    }
    await mkdir(join(folder.path, FOLDER_MARKER), { recursive: true });
    io.out(`created ${folder.path} (empty): it fills from the peers\n`);
  }
  if (missing.length) io.out(`these folders' parent directories are missing (a volume not mounted?); mount or create them before starting:\n  ${missing.join('\n  ')}\n`);
  io.out('start the daemon (ferry run): it builds a new index, rescans the folders and rejoins the peers with the same device ID\n');
  return 0;
}
