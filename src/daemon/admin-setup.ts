// A safe first start: the one-time setup code (owner-only file in the home) and the password file packages hand the daemon.

import { randomBytes } from 'node:crypto';
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, ioError } from '../errors.js';

export const SETUP_CODE_FILE = 'admin-setup-code';
const MAX_PASSWORD_FILE_BYTES = 4096;
/** Crockford's base32 without look-alikes: easy to read off a log and type on a phone. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function setupCodePath(home: string): string {
  return join(home, SETUP_CODE_FILE);
}

/** 16 characters (80 bits) in four groups: `7K2Q-M9XD-…`. */
export function newSetupCode(): string {
  const bytes = randomBytes(16);
  let code = '';
  for (let i = 0; i < 16; i++) {
    code += ALPHABET[bytes[i]! & 31];
    if (i % 4 === 3 && i < 15) code += '-';
  }
  return code;
}

/** A new code, written owner-only (atomically) to `<home>/admin-setup-code`. */
export async function writeSetupCode(home: string): Promise<string> {
  const code = newSetupCode();
  const path = setupCodePath(home);
  const temp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(temp, `${code}\n`, { mode: 0o600 });
    await chmod(temp, 0o600);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw ioError(`cannot write the setup code to ${path}`, err);
  }
  return code;
}

/** The code a running (or stopped) daemon left in the home, if any. */
export async function readSetupCode(home: string): Promise<string | undefined> {
  try {
    const text = (await readFile(setupCodePath(home), 'utf8')).trim();
    return text || undefined;
  } catch {
    return undefined;
  }
}

export async function removeSetupCode(home: string): Promise<void> {
  await rm(setupCodePath(home), { force: true });
}

/** The first line of `--admin-password-file` (a package's install wizard writes it owner-only). */
export async function readPasswordFile(path: string): Promise<string> {
  let text: string;
  try {
    const data = await readFile(path);
    if (data.length > MAX_PASSWORD_FILE_BYTES) throw new FerryError('USAGE', `the admin password file ${path} is larger than ${MAX_PASSWORD_FILE_BYTES} bytes`);
    text = data.toString('utf8');
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw ioError(`cannot read the admin password file ${path}`, err);
  }
  return text.split(/\r?\n/)[0] ?? '';
}
