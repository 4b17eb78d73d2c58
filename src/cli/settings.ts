// `ferry settings [--json]` and `ferry settings set NAME=VALUE...`: the settings as stored and as running,
// changed on the running daemon at once (the same validation and live apply as the page).

import { FerryError } from '../errors.js';
import { printable } from '../util/format.js';
import type { SettingsReport } from '../web/daemon-api.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';

export const SETTINGS_USAGE = 'ferry settings [--json] [--home DIR]';
export const SETTINGS_SET_USAGE = 'ferry settings set NAME=VALUE... [--home DIR]';

function show(value: unknown): string {
  if (Array.isArray(value)) return value.length ? value.map((v) => printable(String(v))).join(',') : '(none)';
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return printable(String(value));
}

function print(report: SettingsReport, io: Output): void {
  const names = Object.keys(report.running) as (keyof SettingsReport['running'])[];
  const width = Math.max(...names.map((name) => name.length));
  for (const name of names) {
    const running = show(report.running[name]);
    const stored = show(report.settings[name]);
    const flag = report.overriddenBy?.[name];
    const why = flag ? `   (set by ${flag} at start; saved: ${stored})`
      : report.restartFor?.includes(name) ? `   (saved ${stored}: used from the next start)` : '';
    io.out(`${name.padEnd(width)}  ${running}${why}\n`);
  }
}

export async function settings(argv: string[], io: Output): Promise<number> {
  if (argv[0] === 'set') return settingsSet(argv.slice(1), io);
  const { values, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 0, max: 0 }, `${SETTINGS_USAGE}\n       ${SETTINGS_SET_USAGE}`);
  const report = await new ControlClient(home).call<SettingsReport>('GET', '/settings');
  if (values.json) io.out(JSON.stringify(report) + '\n');
  else print(report, io);
  return 0;
}

/** VALUE by the setting's kind (taken from the current settings): on/off, a whole number, a comma-separated list, or text. */
function parseValue(name: string, text: string, current: unknown): unknown {
  if (typeof current === 'boolean') {
    if (['on', 'true', 'yes'].includes(text)) return true;
    if (['off', 'false', 'no'].includes(text)) return false;
    throw new FerryError('USAGE', `${name} takes on or off (got '${printable(text).slice(0, 100)}')`);
  }
  if (typeof current === 'number') {
    if (!/^\d+$/.test(text)) throw new FerryError('USAGE', `${name} takes a whole number (got '${printable(text).slice(0, 100)}')`);
    return Number(text);
  }
  if (Array.isArray(current)) return text.split(',').map((s) => s.trim()).filter(Boolean);
  return text;
}

async function settingsSet(argv: string[], io: Output): Promise<number> {
  const { positionals, home } = parseCommand(argv, {}, { min: 1, max: 64 }, SETTINGS_SET_USAGE);
  const client = new ControlClient(home);
  const current = await client.call<SettingsReport>('GET', '/settings');
  const patch: Record<string, unknown> = {};
  for (const item of positionals) {
    const at = item.indexOf('=');
    if (at < 1) throw new FerryError('USAGE', `write each setting as NAME=VALUE (got '${printable(item).slice(0, 100)}')\nusage: ${SETTINGS_SET_USAGE}`);
    const name = item.slice(0, at);
    if (!Object.hasOwn(current.settings, name)) {
      throw new FerryError('USAGE', `unknown setting '${printable(name).slice(0, 64)}'; the settings are ${Object.keys(current.settings).join(', ')}`);
    }
    patch[name] = parseValue(name, item.slice(at + 1), (current.settings as unknown as Record<string, unknown>)[name]);
  }
  const report = await client.call<SettingsReport>('PUT', '/settings', patch);
  io.out(`saved and applied: ${Object.keys(patch).join(', ')}\n`);
  const waiting = Object.keys(patch).filter((name) => report.restartFor?.includes(name));
  if (waiting.length) io.out(`${waiting.join(' and ')}: used from the next start of the daemon\n`);
  const flagged = Object.keys(patch).filter((name) => report.overriddenBy?.[name]);
  for (const name of flagged) io.out(`${name}: ${report.overriddenBy![name]} decides this run; the saved value is used without it\n`);
  return 0;
}
