// A control-socket command starts only what it needs: importing the CLI loads none of the daemon's
// modules (LMDB above all), which is what makes `ferry status` answer in a fraction of a second.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const CLI = fileURLToPath(new URL('../../src/cli/index.js', import.meta.url));
const DAEMON = fileURLToPath(new URL('../../src/daemon/daemon.js', import.meta.url));

/** The CommonJS packages a fresh Node process holds after importing `module` (lmdb is one). */
function packagesLoadedBy(module: string): string[] {
  const script = `await import(${JSON.stringify(module)});
const { default: Module } = await import('node:module');
const names = new Set(Object.keys(Module._cache).map((p) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(p)?.[1]).filter(Boolean));
process.stdout.write(JSON.stringify([...names]));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
}

test('the CLI loads no daemon module: lmdb is loaded by the daemon only', () => {
  assert.ok(packagesLoadedBy(DAEMON).includes('lmdb'), 'the check sees lmdb when the daemon is loaded');
  const cli = packagesLoadedBy(CLI);
  assert.ok(!cli.includes('lmdb'), `the CLI loaded ${cli.join(', ')}`);
});
