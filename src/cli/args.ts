// Argument parsing shared by the commands: parseArgs with usage errors as FerryError('USAGE').

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FerryError } from '../errors.js';
import { resolveHome } from '../daemon/home.js';
import { printable } from '../util/format.js';

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
    throw new FerryError('USAGE', `${parseProblem(err)}\nusage: ${usage}`);
  }
  const count = parsed.positionals.length;
  if (count < positionals.min) {
    throw new FerryError('USAGE', `${positionals.min - count === 1 ? 'an argument is' : 'arguments are'} missing\nusage: ${usage}`);
  }
  if (count > positionals.max) {
    const extra = parsed.positionals[positionals.max]!;
    throw new FerryError('USAGE', `unexpected argument '${printable(extra).slice(0, 100)}'\nusage: ${usage}`);
  }
  const values = parsed.values as Parsed['values'];
  return { values, positionals: parsed.positionals, home: resolveHome(values.home as string | undefined) };
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

/** What Node's argument parser refused, in Ferry's words (its own messages talk about its API). */
function parseProblem(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const option = printable(/'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? 'an option').slice(0, 100);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${option}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/argument missing/.test(message)) return `${option} needs a value`;
    if (/does not take an argument/.test(message)) return `${option} takes no value`;
    return `bad value for ${option}`;
  }
  return 'cannot read the arguments';
}
