// The ferry command: picks the subcommand, maps errors to messages and exit codes (usage 2, others 1).

import { FerryError, isFerryError } from '../errors.js';
import { FERRY_VERSION } from '../version.js';
import type { Output } from './args.js';
import { printable } from '../util/format.js';

// Each command's module is imported when that command runs: `ferry run` (the daemon) holds none of the control
// commands' code, and `ferry status` none of the other commands' (their modules and the client libraries they use).

type Command = (argv: string[], io: Output) => Promise<number>;

/** `ferry folders …` and `ferry peers …`: a subcommand, else a usage error naming them. */
function subcommands(table: Record<string, Command>, usages: string[]): Command {
  return (argv, io) => {
    const sub = argv[0];
    if (sub !== undefined && Object.hasOwn(table, sub)) return table[sub]!(argv.slice(1), io);
    throw new FerryError('USAGE', `${sub ? `unknown subcommand '${printable(sub).slice(0, 100)}'` : 'give a subcommand'}\nusage: ${usages.join('\n       ')}`);
  };
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./run.js')).runDaemon,
  share: async () => (await import('./folder-commands.js')).share,
  join: async () => (await import('./folder-commands.js')).join,
  keys: async () => (await import('./folder-commands.js')).keys,
  status: async () => (await import('./status.js')).status,
  revert: async () => (await import('./folder-commands.js')).revert,
  folders: async () => {
    const m = await import('./folder-commands.js');
    return subcommands({ list: m.foldersList, remove: m.foldersRemove, options: m.foldersOptions }, [m.FOLDERS_LIST_USAGE, m.FOLDERS_REMOVE_USAGE, m.FOLDERS_OPTIONS_USAGE]);
  },
  admin: async () => (await import('./admin.js')).admin,
  'app-passwords': async () => (await import('./app-passwords.js')).appPasswords,
  deletions: async () => (await import('./deletions.js')).deletions,
  // `ferry restore --backup FILE` restores a home; without --backup, files from a folder's archive.
  restore: async () => async (argv, io) =>
    argv.some((a) => a === '--backup' || a.startsWith('--backup='))
      ? (await import('./backup.js')).restoreBackup(argv, io)
      : (await import('./deletions.js')).restore(argv, io),
  backup: async () => (await import('./backup.js')).backup,
  settings: async () => (await import('./settings.js')).settings,
  conflicts: async () => (await import('./conflicts.js')).conflicts,
  resolve: async () => (await import('./conflicts.js')).resolve,
  select: async () => (await import('./select.js')).select,
  versions: async () => (await import('./versions.js')).versions,
  grant: async () => (await import('./grant.js')).grant,
  revoke: async () => (await import('./grant.js')).revoke,
  grants: async () => (await import('./grant.js')).grants,
  peers: async () => {
    const m = await import('./peers.js');
    return subcommands({ add: m.peersAdd, list: m.peersList, remove: m.peersRemove }, [m.PEERS_ADD_USAGE, m.PEERS_LIST_USAGE, m.PEERS_REMOVE_USAGE]);
  },
};

/** The overall help, from every command's usage (their modules are loaded for it). */
export async function helpText(): Promise<string> {
  const [folderCommands, admin, backup, appPasswords, deletions, conflicts, grant, peers, run, settings, select, versions, status] = await Promise.all([
    import('./folder-commands.js'), import('./admin.js'), import('./backup.js'), import('./app-passwords.js'), import('./deletions.js'),
    import('./conflicts.js'), import('./grant.js'), import('./peers.js'), import('./run.js'), import('./settings.js'), import('./select.js'),
    import('./versions.js'), import('./status.js'),
  ]);
  const { FOLDERS_LIST_USAGE, FOLDERS_OPTIONS_USAGE, FOLDERS_REMOVE_USAGE, JOIN_USAGE, KEYS_USAGE, REVERT_USAGE, SHARE_USAGE } = folderCommands;
  const { ADMIN_USAGE } = admin;
  const { BACKUP_USAGE, RESTORE_BACKUP_USAGE } = backup;
  const { APP_PASSWORDS_USAGE } = appPasswords;
  const { DELETIONS_USAGE, RESTORE_USAGE } = deletions;
  const { CONFLICTS_USAGE, RESOLVE_USAGE } = conflicts;
  const { GRANT_USAGE, GRANTS_USAGE, REVOKE_USAGE } = grant;
  const { PEERS_ADD_USAGE, PEERS_LIST_USAGE, PEERS_REMOVE_USAGE } = peers;
  const { RUN_USAGE } = run;
  const { SETTINGS_SET_USAGE, SETTINGS_USAGE } = settings;
  const { SELECT_USAGE } = select;
  const { VERSIONS_USAGE } = versions;
  const { STATUS_USAGE } = status;
  return `Ferry ${FERRY_VERSION}: peer-to-peer folder sync

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
}

export async function main(argv: string[], io: Output): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    io.out(`${FERRY_VERSION}\n`);
    return 0;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(await helpText());
    return 0;
  }
  if (!name) {
    io.err(`ferry: no command given\n\n${await helpText()}`);
    return 2;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!load) {
    io.err(`ferry: unknown command '${printable(name).slice(0, 100)}'; the commands are ${Object.keys(COMMANDS).join(', ')} ('ferry --help' shows them all)\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out((await import('./help.js')).commandHelp(name, rest[0]) ?? (await helpText()));
    return 0;
  }
  try {
    return await (await load())(rest, io);
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
