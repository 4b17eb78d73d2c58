// `ferry share`, `join`, `keys`, `folders remove`, `folders options`: folder commands that go through the daemon.

import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { FerryError, isFerryError } from '../errors.js';
import type { FolderOptions, FolderReport, KeysReport, StatusReport } from '../web/daemon-api.js';
import { formatBytes, printable } from '../util/format.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';

export const SHARE_USAGE = 'ferry share DIR [--json] [--home DIR]';
export const JOIN_USAGE = 'ferry join KEY DIR [--merge] [--home DIR]';
export const KEYS_USAGE = 'ferry keys FOLDER [--json] [--home DIR]';
export const FOLDERS_REMOVE_USAGE = 'ferry folders remove FOLDER [--home DIR]';
export const FOLDERS_LIST_USAGE = 'ferry folders list [--json] [--home DIR]';
export const FOLDERS_OPTIONS_USAGE = 'ferry folders options FOLDER [--portable-names on|off] [--versions days:N|staggered:DAYS|default] [--archive-cap BYTES] [--home DIR]';

function printKeys(keys: KeysReport, io: Output): void {
  io.out(`folder  ${keys.folderId}\npath    ${keys.path}\n`);
  if (keys.rw) io.out(`rw      ${keys.rw}   (read-write: keep it secret)\n`);
  if (keys.ro) io.out(`ro      ${keys.ro}   (read-only)\n`);
  io.out(`enc     ${keys.enc}   (encrypted: stores the folder without reading it)\n`);
}

function keysJson(keys: KeysReport): string {
  return JSON.stringify({ folderId: keys.folderId, rw: keys.rw, ro: keys.ro, enc: keys.enc, path: keys.path }) + '\n';
}

/** Folder arguments that look like paths are sent absolute, so they mean what the user's shell meant. */
export function folderArgument(text: string): string {
  return /^[0-9a-f]{40}$/i.test(text) ? text : resolve(text);
}

export async function share(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 1, max: 1 }, SHARE_USAGE);
  const keys = await new ControlClient(home).call<KeysReport>('POST', '/folders', { path: resolve(positionals[0]!) });
  if (values.json) io.out(keysJson(keys));
  else printKeys(keys, io);
  return 0;
}

/** Asks a yes/no question on the terminal; no answer (end of input) is no. */
async function confirmOnTerminal(question: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((done) => {
      prompt.once('close', () => done(''));
      prompt.question(question, done);
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    prompt.close();
  }
}

export async function join(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { merge: { type: 'boolean' } }, { min: 2, max: 2 }, JOIN_USAGE);
  const client = new ControlClient(home);
  const body = { key: positionals[0], path: resolve(positionals[1]!) };
  let folder: FolderReport;
  try {
    folder = await client.call<FolderReport>('POST', '/folders/join', { ...body, merge: values.merge === true });
  } catch (err) {
    // A directory that has files: on a terminal the user says whether to merge; elsewhere --merge says it.
    if (!isFerryError(err, 'FOLDER_NOT_EMPTY') || !process.stdin.isTTY || !process.stderr.isTTY) throw err;
    io.err(`${err.message.replace(/ Join again with --merge to go ahead, or choose an empty directory\.$/, '')}\n`);
    if (!(await confirmOnTerminal('Merge them into the shared folder? [y/N] '))) {
      io.err('not joined\n');
      return 1;
    }
    folder = await client.call<FolderReport>('POST', '/folders/join', { ...body, merge: true });
  }
  io.out(`joined folder ${folder.id} (${folder.access}) at ${folder.path}\n`);
  return 0;
}

export async function keys(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 1, max: 1 }, KEYS_USAGE);
  const folder = encodeURIComponent(folderArgument(positionals[0]!));
  const result = await new ControlClient(home).call<KeysReport>('GET', `/folders/${folder}/keys`);
  if (values.json) io.out(keysJson(result));
  else printKeys(result, io);
  return 0;
}

/** The folders shared here: ID, access, state, counts and connected peers; `--json` for scripts. */
export async function foldersList(argv: string[], io: Output): Promise<number> {
  const { values, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 0, max: 0 }, FOLDERS_LIST_USAGE);
  const { folders } = await new ControlClient(home).call<StatusReport>('GET', '/status');
  const rows = folders.map((f) => ({
    id: f.id,
    path: f.path,
    access: f.access,
    state: f.state,
    localFiles: f.localFiles,
    localBytes: f.localBytes,
    needFiles: f.needFiles,
    needBytes: f.needBytes,
    peersConnected: f.peers.filter((p) => p.connected).length,
  }));
  if (values.json) {
    io.out(JSON.stringify({ folders: rows }) + '\n');
    return 0;
  }
  if (rows.length === 0) io.out('no folders shared yet (ferry share DIR, or ferry join KEY DIR)\n');
  for (const f of rows) {
    io.out(`${f.id}  ${f.access}  ${f.state}  ${printable(f.path)}\n  ${f.localFiles} files, ${formatBytes(f.localBytes)}` +
      `${f.needFiles ? `; needs ${f.needFiles} files (${formatBytes(f.needBytes)})` : ''}; ${f.peersConnected} ${f.peersConnected === 1 ? 'peer' : 'peers'} connected\n`);
  }
  return 0;
}

export async function foldersRemove(argv: string[], io: Output): Promise<number> {
  const { positionals, home } = parseCommand(argv, {}, { min: 1, max: 1 }, FOLDERS_REMOVE_USAGE);
  const folder = folderArgument(positionals[0]!);
  await new ControlClient(home).call('DELETE', `/folders/${encodeURIComponent(folder)}`);
  io.out(`folder ${positionals[0]} removed (its files stay on disk)\n`);
  return 0;
}

export const REVERT_USAGE = 'ferry revert FOLDER [--home DIR]';

export async function revert(argv: string[], io: Output): Promise<number> {
  const { positionals, home } = parseCommand(argv, {}, { min: 1, max: 1 }, REVERT_USAGE);
  const folder = encodeURIComponent(folderArgument(positionals[0]!));
  const { reverted } = await new ControlClient(home).call<{ reverted: number }>('POST', `/folders/${folder}/revert`);
  io.out(`${reverted} local change${reverted === 1 ? '' : 's'} reverted (the edited files are in the folder's archive)\n`);
  return 0;
}

function onOff(text: string, name: string): boolean {
  if (text === 'on') return true;
  if (text === 'off') return false;
  throw new FerryError('USAGE', `--${name} takes on or off\nusage: ${FOLDERS_OPTIONS_USAGE}`);
}

/** Shows a folder's options, or sets those given (`--portable-names on` keeps out names Windows cannot hold). */
export async function foldersOptions(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(
    argv,
    { 'portable-names': { type: 'string' }, versions: { type: 'string' }, 'archive-cap': { type: 'string' } },
    { min: 1, max: 1 },
    FOLDERS_OPTIONS_USAGE,
  );
  const folder = encodeURIComponent(folderArgument(positionals[0]!));
  const client = new ControlClient(home);
  const options: FolderOptions = {};
  const portable = values['portable-names'];
  if (typeof portable === 'string') options.portableNames = onOff(portable, 'portable-names');
  const versions = values.versions;
  const cap = values['archive-cap'];
  if (typeof versions === 'string' || typeof cap === 'string') {
    const current = typeof versions === 'string' ? undefined : (await client.call<Required<FolderOptions>>('POST', `/folders/${folder}/options`, {})).archive;
    const match = typeof versions === 'string' ? /^(days|staggered):(\d+(?:\.\d+)?)$/.exec(versions) : null;
    if (typeof versions === 'string' && versions !== 'default' && !match) throw new FerryError('USAGE', `--versions takes days:N, staggered:DAYS or default\nusage: ${FOLDERS_OPTIONS_USAGE}`);
    if (typeof cap === 'string' && !/^\d+$/.test(cap)) throw new FerryError('USAGE', `--archive-cap takes a number of bytes (0: no cap)\nusage: ${FOLDERS_OPTIONS_USAGE}`);
    const maxArchiveBytes = typeof cap === 'string' ? Number(cap) : current?.maxArchiveBytes;
    const extra = maxArchiveBytes ? { maxArchiveBytes } : {};
    if (versions === 'default' && !maxArchiveBytes) options.archive = null;
    else if (match?.[1] === 'staggered') options.archive = { kind: 'staggered', maxAgeDays: Number(match[2]), ...extra };
    else if (match?.[1] === 'days') options.archive = { kind: 'days', days: Number(match[2]), ...extra };
    else if (current) options.archive = { ...current, ...extra, ...(maxArchiveBytes ? {} : { maxArchiveBytes: 0 }) };
    else throw new FerryError('USAGE', `--archive-cap needs a policy: give --versions days:N or staggered:DAYS too\nusage: ${FOLDERS_OPTIONS_USAGE}`);
  }
  const now = await client.call<Required<FolderOptions>>('POST', `/folders/${folder}/options`, options);
  io.out(`portable-names  ${now.portableNames ? 'on' : 'off'}\n`);
  const policy = now.archive;
  const capText = policy?.maxArchiveBytes ? `, at most ${formatBytes(policy.maxArchiveBytes)} (oldest removed first)` : '';
  io.out(`versions        ${!policy ? "the archiveDays setting's days" : policy.kind === 'days' ? `${policy.days} days` : `staggered up to ${policy.maxAgeDays} days`}${capText}\n`);
  return 0;
}
