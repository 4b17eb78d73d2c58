// Per-command help: `ferry CMD --help` prints what the command does, its usage and an example.

import { ADMIN_USAGE } from './admin.js';
import { BACKUP_USAGE, RESTORE_BACKUP_USAGE } from './backup.js';
import { CONFLICTS_USAGE, RESOLVE_USAGE } from './conflicts.js';
import { DELETIONS_USAGE, RESTORE_USAGE } from './deletions.js';
import { FOLDERS_LIST_USAGE, FOLDERS_OPTIONS_USAGE, FOLDERS_REMOVE_USAGE, JOIN_USAGE, KEYS_USAGE, REVERT_USAGE, SHARE_USAGE } from './folder-commands.js';
import { GRANT_USAGE, GRANTS_USAGE, REVOKE_USAGE } from './grant.js';
import { APP_PASSWORDS_USAGE } from './app-passwords.js';
import { PEERS_ADD_USAGE, PEERS_LIST_USAGE, PEERS_REMOVE_USAGE } from './peers.js';
import { RUN_USAGE } from './run.js';
import { SETTINGS_SET_USAGE, SETTINGS_USAGE } from './settings.js';
import { STATUS_USAGE } from './status.js';
import { SELECT_USAGE } from './select.js';
import { VERSIONS_USAGE } from './versions.js';

interface CommandHelp {
  about: string;
  usage: string[];
  examples: string[];
}

const HOME_NOTE = 'The home is --home, else FERRY_HOME, else ~/.local/share/ferry.';

export const COMMAND_HELP: Record<string, CommandHelp> = {
  run: {
    about: 'Runs the daemon in the foreground until Ctrl-C (SIGINT) or SIGTERM. By default it syncs on 0.0.0.0:22100 and serves the web page on 0.0.0.0:8888.',
    usage: [RUN_USAGE],
    examples: [
      'ferry run',
      'ferry run --home ~/ferry-b --listen 127.0.0.1:22101 --web 127.0.0.1:8889   # a second daemon on one machine',
      'ferry run --turn turn://alice:PASSWORD@turn.example.org:3478   # relay through a TURN server (e.g. coturn) when no direct path works',
      'ferry run --relay-rate 262144   # relay for peers at most 256 KiB/s in all (default 1 MiB/s; --no-relay: never relay for others)',
    ],
  },
  share: {
    about: "Shares a folder of this device and prints its keys: RW (read-write), RO (read-only) and ENC (encrypted, for an untrusted backup).",
    usage: [SHARE_USAGE],
    examples: ['ferry share ~/Photos'],
  },
  join: {
    about:
      'Syncs a folder shared elsewhere into DIR, given one of its keys. DIR is created when missing. When DIR already holds files, ' +
      'join says how many and asks first (or, not on a terminal, refuses without --merge): merged, files the peers lack are sent to them ' +
      'and a file that differs from the peers\' becomes a conflict copy, the newer version keeping the name.',
    usage: [JOIN_USAGE],
    examples: ['ferry join A4JX…QF ~/Photos', 'ferry join A4JX…QF /volume1/photos --merge   # DIR already has files: merge them'],
  },
  versions: {
    about:
      "Lists a file's versions kept in the folder's archive (time, size), newest first. How many are kept is the folder's archive policy " +
      "('ferry folders options FOLDER --versions days:14 | staggered:365 [--archive-cap BYTES]'). 'ferry restore FOLDER PATH --at TIME' puts one back: " +
      'an edit that syncs to every device, the current version going to the archive first.',
    usage: [VERSIONS_USAGE],
    examples: ['ferry versions ~/Documents report.odt', 'ferry restore ~/Documents report.odt --at 2026-12-01T09:30:12.345Z'],
  },
  select: {
    about:
      'Selective sync: lists, excludes or includes subtrees of a folder on this device only (the setting never syncs). ' +
      'An excluded subtree is neither fetched nor deleted here or elsewhere; what this device already has there stays and is still announced. ' +
      'A file created here inside an excluded subtree is kept and reported ("local in unselected"), not sent. Including a subtree again fetches it. ' +
      'An encrypted (ENC) device sees encrypted names only.',
    usage: [SELECT_USAGE],
    examples: ['ferry select ~/Photos --exclude 2019/raw', 'ferry select ~/Photos --include 2019/raw   # fetched again', 'ferry select ~/Photos --json'],
  },
  conflicts: {
    about:
      "Lists a folder's current conflicts: files edited on two devices at once, where one version kept the name and the other was kept " +
      'as name.conflict-DATE-DEVICE.ext. Shows both versions\' size, time and device.',
    usage: [CONFLICTS_USAGE],
    examples: ['ferry conflicts ~/Photos', 'ferry conflicts ~/Photos --json'],
  },
  resolve: {
    about:
      'Settles one conflict (PATH is the conflict copy, or the original when it has one copy): --keep original (the copy goes to the archive), ' +
      '--keep copy (the copy takes the name, the original goes to the archive) or --keep both (the copy is renamed: --name, or "name (DEVICE).ext"). ' +
      'The choice syncs to every device like any edit.',
    usage: [RESOLVE_USAGE],
    examples: [
      'ferry resolve ~/Docs report.conflict-20261207-101500-K3F2J7QX2LMA.txt --keep copy',
      'ferry resolve ~/Docs report.txt --keep both --name "report (laptop).txt"',
    ],
  },
  keys: {
    about: "Prints a folder's keys again (FOLDER is its ID or its path).",
    usage: [KEYS_USAGE],
    examples: ['ferry keys ~/Photos'],
  },
  status: {
    about: 'Shows this device, its folders with their state and counts, and each peer with how complete its copy is.',
    usage: [STATUS_USAGE],
    examples: ['ferry status', 'ferry status --json'],
  },
  revert: {
    about: 'Read-only folders: undoes local edits (they go to the archive) and takes the shared versions back.',
    usage: [REVERT_USAGE],
    examples: ['ferry revert ~/Photos'],
  },
  folders: {
    about: 'Lists the folders shared here, stops syncing one (its files stay on disk), or sets its options.',
    usage: [FOLDERS_LIST_USAGE, FOLDERS_REMOVE_USAGE, FOLDERS_OPTIONS_USAGE],
    examples: ['ferry folders list', 'ferry folders remove ~/Photos', 'ferry folders options ~/Photos --portable-names on'],
  },
  'folders list': {
    about: 'Lists the folders shared here: ID, access (rw, ro, enc), state, files and size, what is still needed, peers connected.',
    usage: [FOLDERS_LIST_USAGE],
    examples: ['ferry folders list', 'ferry folders list --json'],
  },
  'folders remove': {
    about: 'Stops syncing a folder; its files stay on disk.',
    usage: [FOLDERS_REMOVE_USAGE],
    examples: ['ferry folders remove ~/Photos'],
  },
  'folders options': {
    about: "Sets a folder's options. Portable names: keep out (and report) names Windows and SMB clients cannot hold.",
    usage: [FOLDERS_OPTIONS_USAGE],
    examples: ['ferry folders options ~/Photos --portable-names on'],
  },
  peers: {
    about: 'Addresses of devices to dial (when discovery cannot find them): add one, list them with the devices connected now, remove one.',
    usage: [PEERS_ADD_USAGE, PEERS_LIST_USAGE, PEERS_REMOVE_USAGE],
    examples: ['ferry peers add 192.168.1.20:22100', 'ferry peers list', 'ferry peers remove 192.168.1.20:22100'],
  },
  'peers list': {
    about: 'Lists the addresses added with `ferry peers add` (connected or not, and why), then every device connected now, however it was found.',
    usage: [PEERS_LIST_USAGE],
    examples: ['ferry peers list', 'ferry peers list --json'],
  },
  'peers remove': {
    about: 'Stops dialling an added address; given a device ID (or its first 7 or more characters), every added address of that device. A link up now stays until it closes.',
    usage: [PEERS_REMOVE_USAGE],
    examples: ['ferry peers remove 192.168.1.20:22100', 'ferry peers remove FT4HGPH'],
  },
  'peers add': {
    about: 'Names the address of a device to dial (when discovery cannot find it).',
    usage: [PEERS_ADD_USAGE],
    examples: ['ferry peers add 192.168.1.20:22100'],
  },
  settings: {
    about: 'Shows the settings as running (and why, when a `ferry run` flag decides one), or changes them: the running daemon applies a change at once; listen and web are used from the next start. On/off settings take on or off, lists are comma-separated.',
    usage: [SETTINGS_USAGE, SETTINGS_SET_USAGE],
    examples: ['ferry settings', 'ferry settings set uploadKBps=512 lan=off', 'ferry settings set trackerUrls=udp://tracker.example.org:6969/announce'],
  },
  'settings set': {
    about: 'Changes settings on the running daemon at once (the same checks as the page); listen and web are used from the next start.',
    usage: [SETTINGS_SET_USAGE],
    examples: ['ferry settings set uploadKBps=512', 'ferry settings set deviceName=attic-nas archiveDays=30'],
  },
  deletions: {
    about: 'Shows a mass delete by a peer held back here; --apply deletes the files here too, --restore brings them back everywhere.',
    usage: [DELETIONS_USAGE],
    examples: ['ferry deletions ~/Photos', 'ferry deletions ~/Photos --restore'],
  },
  restore: {
    about:
      "Puts files back from the folder's archive: everything, or what lies under a path prefix (the newest version of each missing file), " +
      "or with --at TIME one version of one file ('ferry versions' lists them; the current version goes to the archive first). With --backup FILE (from ferry backup), " +
      'restores a home instead: into an empty home (no daemon running on it), with the same device ID; the next ferry run builds the index, ' +
      'rescans the folders and rejoins the peers.',
    usage: [RESTORE_USAGE, RESTORE_BACKUP_USAGE],
    examples: ['ferry restore ~/Photos 2024/holiday', 'ferry restore ~/Photos --all', 'ferry restore ~/Photos notes.txt --at 2026-12-01T09:30:12.345Z', 'ferry restore --backup /mnt/usb/ferry-backup.json --home /var/lib/ferry'],
  },
  backup: {
    about:
      "Writes this home's device identity (its private key), every folder key and the settings to FILE, owner-only (mode 0600). " +
      'The file is SECRET: whoever holds it can act as this device. Works whether or not the daemon runs.',
    usage: [BACKUP_USAGE],
    examples: ['ferry backup /mnt/usb/ferry-backup.json'],
  },
  admin: {
    about: "The web page's admin password: set-password sets it (asked on the terminal, or one line of stdin); setup-code prints the first-run setup code.",
    usage: [ADMIN_USAGE],
    examples: ['ferry admin set-password', 'ferry admin setup-code'],
  },
  'app-passwords': {
    about: 'App passwords for WebDAV clients (http://HOST:PORT/dav/FOLDER-ID/, HTTP Basic): add prints the user and password once; read-only or read-write; one folder or all.',
    usage: [APP_PASSWORDS_USAGE],
    examples: ['ferry app-passwords add laptop --folder ~/Photos --read-only', 'ferry app-passwords list', 'ferry app-passwords revoke laptop'],
  },
  grant: {
    about: 'Prints an invite: a grant to a folder, read-only or read-write, that expires (optionally for one device only).',
    usage: [GRANT_USAGE],
    examples: ['ferry grant ~/Photos --ro --expires 7d'],
  },
  revoke: {
    about: 'Revokes a grant: peers refuse it from now on.',
    usage: [REVOKE_USAGE],
    examples: ['ferry revoke 3f2a9c'],
  },
  grants: {
    about: 'Lists the grants known for a folder, soonest expiry first.',
    usage: [GRANTS_USAGE],
    examples: ['ferry grants ~/Photos'],
  },
};

/** The help of `ferry NAME [SUB]`, or undefined for an unknown command. */
export function commandHelp(name: string, sub?: string): string | undefined {
  const help = (sub ? COMMAND_HELP[`${name} ${sub}`] : undefined) ?? COMMAND_HELP[name];
  if (!help) return undefined;
  const usage = help.usage.map((line, i) => `${i === 0 ? 'usage: ' : '       '}${line}`).join('\n');
  const examples = help.examples.map((line) => `  ${line}`).join('\n');
  return `${help.about}\n\n${usage}\n\nexample${help.examples.length > 1 ? 's' : ''}:\n${examples}\n\n${HOME_NOTE}\n`;
}
