// The launchers that start node (bin/ferry in a checkout, packaging/nas/ferry-launch in the NAS packages and the .deb)
// pass glibc's malloc settings of DAEMON_ENV: glibc reads them only when the process starts, so the daemon itself
// cannot set them. Each launcher here starts a stand-in that prints its environment.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DAEMON_ENV } from '../../src/daemon/runtime.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
const MALLOC = Object.entries(DAEMON_ENV).filter(([name]) => name.startsWith('MALLOC_'));
const PRINT_ENV = '#!/bin/sh\nenv\n';

/** The environment a launcher gave its child, started from one without any DAEMON_ENV variable but `set`. */
function launched(argv: string[], set: Record<string, string> = {}, path = process.env.PATH!): Map<string, string> {
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { PATH: path, ...set } });
  assert.equal(result.status, 0, result.stderr);
  return new Map(result.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

test('bin/ferry and ferry-launch pass every malloc setting of DAEMON_ENV, and keep one the user set', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-launch-env-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.ok(MALLOC.length >= 3, JSON.stringify(DAEMON_ENV));

  // bin/ferry execs `node` from PATH: a stand-in node first on it.
  mkdirSync(join(dir, 'stub'));
  writeFileSync(join(dir, 'stub', 'node'), PRINT_ENV, { mode: 0o755 });
  const path = `${join(dir, 'stub')}:${process.env.PATH}`;

  // ferry-launch runs bin/ferry beside it through the loader in lib/ (as nas-packages.test.ts stands them in).
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'bin'), { recursive: true });
  mkdirSync(join(tree, 'lib'));
  writeFileSync(join(tree, 'bin', 'ferry'), PRINT_ENV, { mode: 0o755 });
  writeFileSync(join(tree, 'lib', 'ld-test.so'), '#!/bin/sh\nshift 2\nexec "$@"\n', { mode: 0o755 });
  const machine = spawnSync('uname', ['-m'], { encoding: 'utf8' }).stdout.trim();
  const launcher = readFileSync(join(ROOT, 'packaging', 'nas', 'ferry-launch'), 'utf8')
    .replaceAll('@TARGET@', 'linux-test').replaceAll('@UNAME@', machine).replaceAll('@LOADER@', 'ld-test.so')
    .replaceAll('@RUNTIME@', 'sea').replaceAll('@V8_FLAGS@', '').replaceAll('@BUILTINS_FD@', '9');
  writeFileSync(join(tree, 'bin', 'ferry-launch'), launcher, { mode: 0o755 });

  for (const argv of [[join(ROOT, 'bin', 'ferry'), '--version'], [join(tree, 'bin', 'ferry-launch'), '--version']]) {
    const env = launched(argv, {}, path);
    for (const [name, value] of MALLOC) assert.equal(env.get(name), value, `${argv[0]}: ${name}`);
    const [name] = MALLOC[MALLOC.length - 1]!;
    assert.equal(launched(argv, { [name]: '12345' }, path).get(name), '12345', `${argv[0]} keeps ${name} set by the user`);
  }
});
