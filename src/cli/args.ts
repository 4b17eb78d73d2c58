// Argument parsing shared by the commands: parseArgs with usage errors as FerryError('USAGE').

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FerryError } from '../errors.js';
import { resolveHome } from '../daemon/home.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export const HOME_OPTION: Options = { home: { type: 'string' } };

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  home: string;
}

export function parseCommand(argv: string[], options: Options, positionals: { min: number; max: number }, usage: string): Parsed {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...HOME_OPTION, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new FerryError('USAGE', `${(err as Error).message}\nusage: ${usage}`);
  }
  const count = parsed.positionals.length;
  if (count < positionals.min || count > positionals.max) {
    throw new FerryError('USAGE', `wrong number of arguments\nusage: ${usage}`);
  }
  const values = parsed.values as Parsed['values'];
  return { values, positionals: parsed.positionals, home: resolveHome(values.home as string | undefined) };
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}
