// `ferry app-passwords add|list|revoke`: the credentials WebDAV clients sign in with (HTTP Basic), never the admin password.

import { resolve } from 'node:path';
import { FerryError } from '../errors.js';
import type { AppPasswordReport, IssuedAppPassword } from '../web/app-passwords.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';
import { printable } from '../util/format.js';

export const APP_PASSWORDS_USAGE = 'ferry app-passwords add NAME [--folder ID|PATH] [--read-only] [--json] | list [--json] | revoke NAME [--home DIR]';

/** Folder arguments that look like paths are sent absolute, so they mean what the user's shell meant. */
function folderArgument(text: string): string {
  return /^[0-9a-f]{40}$/i.test(text) ? text : resolve(text);
}

export async function appPasswords(argv: string[], io: Output): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'add') {
    const { values, positionals, home } = parseCommand(
      rest,
      { folder: { type: 'string' }, 'read-only': { type: 'boolean' }, json: { type: 'boolean' } },
      { min: 1, max: 1 },
      APP_PASSWORDS_USAGE,
    );
    const body = {
      name: positionals[0]!,
      readOnly: values['read-only'] === true,
      ...(typeof values.folder === 'string' ? { folder: folderArgument(values.folder) } : {}),
    };
    const issued = await new ControlClient(home).call<IssuedAppPassword>('POST', '/app-passwords', body);
    if (values.json) {
      io.out(JSON.stringify({ user: issued.user, password: issued.password }) + '\n');
      return 0;
    }
    io.out(`user: ${issued.user}\npassword: ${issued.password}\n`);
    io.err(
      `app password '${issued.user}': ${issued.readOnly ? 'read-only' : 'read-write'}, ${issued.folder ? `folder ${issued.folder}` : 'every folder'}; ` +
        'shown once: WebDAV clients sign in with it at http://HOST:PORT/dav/<folder ID>/\n',
    );
    return 0;
  }
  if (sub === 'list') {
    const { values, home } = parseCommand(rest, { json: { type: 'boolean' } }, { min: 0, max: 0 }, APP_PASSWORDS_USAGE);
    const { appPasswords: list } = await new ControlClient(home).call<{ appPasswords: AppPasswordReport[] }>('GET', '/app-passwords');
    if (values.json) {
      io.out(JSON.stringify(list) + '\n');
      return 0;
    }
    if (list.length === 0) io.out('no app passwords: add one with `ferry app-passwords add NAME`\n');
    for (const p of list) {
      io.out(`${p.name}  ${p.readOnly ? 'read-only ' : 'read-write'}  ${p.folder ?? 'every folder'}  created ${p.createdAt}` +
        `${p.lastUsedMs ? `  last used ${new Date(p.lastUsedMs).toISOString()}` : ''}\n`);
    }
    return 0;
  }
  if (sub === 'revoke') {
    const { values, positionals, home } = parseCommand(rest, { json: { type: 'boolean' } }, { min: 1, max: 1 }, APP_PASSWORDS_USAGE);
    const result = await new ControlClient(home).call<{ ok: boolean; name: string }>('POST', `/app-passwords/${encodeURIComponent(positionals[0]!)}/revoke`);
    if (values.json) io.out(JSON.stringify(result) + '\n');
    else io.out(`app password '${result.name}' revoked: it stops working now\n`);
    return 0;
  }
  throw new FerryError('USAGE', `${sub ? `unknown subcommand '${printable(sub).slice(0, 100)}'` : 'give a subcommand'}\nusage: ${APP_PASSWORDS_USAGE}`);
}
