// The ferry command: picks the subcommand, maps errors to messages and exit codes (usage 2, others 1).

import { FerryError, isFerryError } from '../errors.js';
import { FERRY_VERSION } from '../version.js';
import type { Output } from './args.js';
import {
  FOLDERS_LIST_USAGE, FOLDERS_OPTIONS_USAGE, FOLDERS_REMOVE_USAGE, JOIN_USAGE, KEYS_USAGE, REVERT_USAGE, SHARE_USAGE, foldersList, foldersOptions, foldersRemove, join, keys, revert,
  share,
} from './folder-commands.js';
import { ADMIN_USAGE, admin } from './admin.js';
import { BACKUP_USAGE, RESTORE_BACKUP_USAGE, backup, restoreBackup } from './backup.js';
import { APP_PASSWORDS_USAGE, appPasswords } from './app-passwords.js';
import { DELETIONS_USAGE, RESTORE_USAGE, deletions, restore } from './deletions.js';
import { CONFLICTS_USAGE, RESOLVE_USAGE, conflicts, resolve } from './conflicts.js';
import { GRANT_USAGE, GRANTS_USAGE, REVOKE_USAGE, grant, grants, revoke } from './grant.js';
import { PEERS_ADD_USAGE, PEERS_LIST_USAGE, PEERS_REMOVE_USAGE, peersAdd, peersList, peersRemove } from './peers.js';
import { RUN_USAGE, runDaemon } from './run.js';
import { SETTINGS_SET_USAGE, SETTINGS_USAGE, settings } from './settings.js';
import { SELECT_USAGE, select } from './select.js';
import { VERSIONS_USAGE, versions } from './versions.js';
import { STATUS_USAGE, status } from './status.js';
import { commandHelp } from './help.js';
import { printable } from '../util/format.js';

type Command = (argv: string[], io: Output) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  run: runDaemon,
  share,
  join,
  keys,
  status,
  revert,
  folders: (argv, io) => {
    if (argv[0] === 'list') return foldersList(argv.slice(1), io);
    if (argv[0] === 'remove') return foldersRemove(argv.slice(1), io);
    if (argv[0] === 'options') return foldersOptions(argv.slice(1), io);
    throw new FerryError('USAGE', `${argv[0] ? `unknown subcommand '${printable(argv[0]).slice(0, 100)}'` : 'give a subcommand'}\nusage: ${FOLDERS_LIST_USAGE}\n       ${FOLDERS_REMOVE_USAGE}\n       ${FOLDERS_OPTIONS_USAGE}`);
  },
  admin,
  'app-passwords': appPasswords,
  deletions,
  // `ferry restore --backup FILE` restores a home; without --backup, files from a folder's archive.
  restore: (argv, io) => (argv.some((a) => a === '--backup' || a.startsWith('--backup=')) ? restoreBackup(argv, io) : restore(argv, io)),
  backup,
  settings,
  conflicts,
  resolve,
  select,
  versions,
  grant, revoke, grants,
  peers: (argv, io) => {
    if (argv[0] === 'add') return peersAdd(argv.slice(1), io);
    if (argv[0] === 'list') return peersList(argv.slice(1), io);
    if (argv[0] === 'remove') return peersRemove(argv.slice(1), io);
    throw new FerryError('USAGE', `${argv[0] ? `unknown subcommand '${printable(argv[0]).slice(0, 100)}'` : 'give a subcommand'}\nusage: ${PEERS_ADD_USAGE}\n       ${PEERS_LIST_USAGE}\n       ${PEERS_REMOVE_USAGE}`);
  },
};

export const HELP = `Ferry ${FERRY_VERSION}: peer-to-peer folder sync

usage:
  ${RUN_USAGE}
  ${SHARE_USAGE}        prints the folder's keys (RW, RO, ENC)
  ${JOIN_USAGE}          syncs a folder shared elsewhere into DIR
  ${KEYS_USAGE}     FOLDER is its ID or its path
  ${STATUS_USAGE}
  ${FOLDERS_LIST_USAGE}
  ${FOLDERS_REMOVE_USAGE}
  ${FOLDERS_OPTIONS_USAGE}   portable names: keep out what Windows cannot hold
  ${PEERS_ADD_USAGE}
  ${PEERS_LIST_USAGE}
  ${PEERS_REMOVE_USAGE}   stops dialling an added address
  ${SETTINGS_USAGE}
  ${SETTINGS_SET_USAGE}   applied at once
  ${REVERT_USAGE}    read-only folders: undo local edits
  ${DELETIONS_USAGE}   a held mass delete
  ${RESTORE_USAGE}   bulk restore from the archive
  ${CONFLICTS_USAGE}   files edited on two devices at once
  ${SELECT_USAGE}
                                     selective sync: subtrees this device does not take
  ${VERSIONS_USAGE}   a file's archived versions
  ${RESOLVE_USAGE}
  ${BACKUP_USAGE}   this device's identity, folder keys, settings (SECRET)
  ${RESTORE_BACKUP_USAGE}   into an empty home: same device ID
  ${ADMIN_USAGE}     the web admin's password
  ${APP_PASSWORDS_USAGE}
                                     WebDAV clients' passwords (/dav/FOLDER/ on the web port)
  ${GRANT_USAGE}    prints an invite
  ${REVOKE_USAGE}   ${GRANTS_USAGE}
  ferry --version | --help

The home is --home, else FERRY_HOME, else ~/.local/share/ferry.
`;

export async function main(argv: string[], io: Output): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    io.out(`${FERRY_VERSION}\n`);
    return 0;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(HELP);
    return 0;
  }
  if (!name) {
    io.err(`ferry: no command given\n\n${HELP}`);
    return 2;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    io.err(`ferry: unknown command '${printable(name).slice(0, 100)}'; the commands are ${Object.keys(COMMANDS).join(', ')} ('ferry --help' shows them all)\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(commandHelp(name, rest[0]) ?? HELP);
    return 0;
  }
  try {
    return await command(rest, io);
  } catch (err) {
    if (isFerryError(err, 'USAGE')) {
      // The usage once, and only when the message does not already carry it.
      const hint = /(^|\n)usage: /.test(err.message) ? '' : `\n('ferry ${name} --help' shows the usage and an example)`;
      io.err(`ferry: ${err.message}${hint}\n`);
      return 2;
    }
    if (err instanceof FerryError) {
      io.err(`ferry: ${err.message}\n`);
      return 1;
    }
    io.err(`ferry: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}
