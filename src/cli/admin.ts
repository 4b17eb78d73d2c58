// `ferry admin set-password`: sets the web admin's password through the control socket (asked twice on a terminal, else one line of stdin).

import { FerryError } from '../errors.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';
import { printable } from '../util/format.js';
import { readSetupCode, setupCodePath } from '../daemon/admin-setup.js';
import { isFerryError } from '../errors.js';

export const ADMIN_USAGE = 'ferry admin set-password|setup-code [--home DIR]';
const MAX_STDIN_BYTES = 4096;

/** Reads a line from the terminal without echoing it. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(text);
          return;
        }
        if (ch === '\u0003' || ch === '\u0004') {
          finish();
          reject(new FerryError('ABORTED', 'cancelled'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** The first line of standard input (scripts: `echo "$PW" | ferry admin set-password`). */
async function readStdinLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8');
    if (text.includes('\n') || text.length > MAX_STDIN_BYTES) break;
  }
  return text.split(/\r?\n/)[0] ?? '';
}

async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) return readStdinLine();
  const first = await promptHidden('New admin password: ');
  const second = await promptHidden('Again: ');
  if (first !== second) throw new FerryError('USAGE', 'the two passwords differ');
  return first;
}

/** `ferry admin setup-code`: the first-start code a browser on another machine needs (from the daemon, else the home). */
async function setupCode(argv: string[], io: Output): Promise<number> {
  const { home } = parseCommand(argv, {}, { min: 0, max: 0 }, ADMIN_USAGE);
  let answer: { setup: boolean; code?: string };
  try {
    answer = await new ControlClient(home).call<{ setup: boolean; code?: string }>('GET', '/admin/setup-code');
  } catch (err) {
    if (!isFerryError(err, 'DAEMON_NOT_RUNNING')) throw err;
    const code = await readSetupCode(home);
    if (!code) throw new FerryError('DAEMON_NOT_RUNNING', `no setup code in ${setupCodePath(home)}: start the daemon (it writes one while no admin password is set)`);
    io.out(`${code}\n`);
    return 0;
  }
  if (!answer.code) throw new FerryError('ADMIN_PASSWORD_SET', 'the admin password is set already: log in, or change it with `ferry admin set-password`');
  io.out(`${answer.code}\n`);
  return 0;
}

export async function admin(argv: string[], io: Output): Promise<number> {
  if (argv[0] === 'setup-code') return setupCode(argv.slice(1), io);
  if (argv[0] !== 'set-password') {
    throw new FerryError('USAGE', `${argv[0] ? `unknown subcommand '${printable(argv[0]).slice(0, 100)}'` : 'give a subcommand'}\nusage: ${ADMIN_USAGE}`);
  }
  const { home } = parseCommand(argv.slice(1), {}, { min: 0, max: 0 }, ADMIN_USAGE);
  const client = new ControlClient(home);
  await client.call('GET', '/status'); // says clearly that no daemon runs before asking for a password
  const password = await readPassword();
  await client.call('POST', '/admin/password', { password });
  io.out('admin password set; web sessions were logged out\n');
  return 0;
}
