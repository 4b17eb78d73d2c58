// `ferry grant`, `ferry revoke`, `ferry grants`: time-limited invites to a folder and their revocation.

import { resolve } from 'node:path';
import { FerryError } from '../errors.js';
import type { GrantReport, IssuedGrantReport } from '../web/daemon-api.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';

export const GRANT_USAGE = 'ferry grant FOLDER --ro|--rw --expires DURATION [--device ID] [--json] [--home DIR]';
export const REVOKE_USAGE = 'ferry revoke GRANT [--json] [--home DIR]';
export const GRANTS_USAGE = 'ferry grants FOLDER [--json] [--home DIR]';

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "90s", "30m", "12h", "7d", "2w" (or a sum like "1d12h") in milliseconds; USAGE otherwise. */
export function parseDuration(text: string): number {
  const trimmed = text.trim().toLowerCase();
  if (!/^(\d+[smhdw])+$/.test(trimmed)) {
    throw new FerryError('USAGE', `cannot read the duration ${JSON.stringify(text)}: use e.g. 90s, 30m, 12h, 7d or 2w`);
  }
  let total = 0;
  for (const [, count, unit] of trimmed.matchAll(/(\d+)([smhdw])/g)) total += Number(count) * UNIT_MS[unit!]!;
  if (!Number.isSafeInteger(total) || total <= 0) throw new FerryError('USAGE', `the duration ${JSON.stringify(text)} is out of range`);
  return total;
}

/** Folder arguments that look like paths are sent absolute, so they mean what the user's shell meant. */
function folderArgument(text: string): string {
  return encodeURIComponent(/^[0-9a-f]{40}$/i.test(text) ? text : resolve(text));
}

export async function grant(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(
    argv,
    { ro: { type: 'boolean' }, rw: { type: 'boolean' }, expires: { type: 'string' }, device: { type: 'string' }, json: { type: 'boolean' } },
    { min: 1, max: 1 },
    GRANT_USAGE,
  );
  if (Boolean(values.ro) === Boolean(values.rw)) throw new FerryError('USAGE', `give exactly one of --ro and --rw\nusage: ${GRANT_USAGE}`);
  if (typeof values.expires !== 'string') throw new FerryError('USAGE', `a grant needs --expires (e.g. 7d)\nusage: ${GRANT_USAGE}`);
  const expiresInMs = parseDuration(values.expires);
  const body = { level: values.rw ? 'rw' : 'ro', expiresInMs, ...(typeof values.device === 'string' ? { device: values.device } : {}) };
  const issued = await new ControlClient(home).call<IssuedGrantReport>('POST', `/folders/${folderArgument(positionals[0]!)}/grants`, body);
  if (values.json) {
    io.out(JSON.stringify(issued) + '\n');
    return 0;
  }
  io.out(`${issued.invite}\n`);
  io.err(
    `grant ${issued.id}: ${issued.level === 'rw' ? 'read-write' : 'read-only'} until ${issued.expiresAt}` +
      `${issued.device ? ` for device ${issued.device}` : ' for whoever holds this invite'}\n` +
      `join with: ferry join INVITE DIR    revoke with: ferry revoke ${issued.id}\n`,
  );
  return 0;
}

export async function revoke(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 1, max: 1 }, REVOKE_USAGE);
  const id = encodeURIComponent(positionals[0]!);
  const result = await new ControlClient(home).call<{ id: string; folderId: string; revokedAtMs: number }>('POST', `/grants/${id}/revoke`);
  if (values.json) io.out(JSON.stringify(result) + '\n');
  else io.out(`grant ${result.id} revoked (folder ${result.folderId}); peers refuse it from now on\n`);
  return 0;
}

export async function grants(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 1, max: 1 }, GRANTS_USAGE);
  const result = await new ControlClient(home).call<{ folderId: string; grants: GrantReport[] }>('GET', `/folders/${folderArgument(positionals[0]!)}/grants`);
  if (values.json) {
    io.out(JSON.stringify(result) + '\n');
    return 0;
  }
  if (result.grants.length === 0) {
    io.out(`no grants known for folder ${result.folderId}\n`);
    return 0;
  }
  for (const g of result.grants) {
    io.out(`${g.id}  ${g.level}  ${g.status.padEnd(7)}  expires ${g.expiresAt}  ${g.device ? `device ${g.device}` : 'bearer'}\n`);
  }
  return 0;
}
