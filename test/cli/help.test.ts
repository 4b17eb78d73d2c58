// The CLI helps: per-command --help with an example, usage only for usage errors and once, no raw parser
// messages, and an address in use named with its flag and likely cause (issue 21).

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { main } from '../../src/cli/index.js';
import { COMMAND_HELP } from '../../src/cli/help.js';
import { ferry, removeDir, tempDir } from '../helpers/daemon.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

const count = (text: string, what: RegExp): number => text.match(new RegExp(what.source, 'g'))?.length ?? 0;

test('every command has its own --help: what it does, its usage and an example; exit 0', async () => {
  for (const name of ['run', 'share', 'join', 'keys', 'status', 'revert', 'folders', 'admin', 'deletions', 'restore', 'grant', 'revoke', 'grants', 'peers']) {
    const help = await run(name, '--help');
    assert.equal(help.code, 0, name);
    assert.equal(help.err, '');
    assert.match(help.out, new RegExp(`usage: ferry ${name}\\b`), name);
    assert.match(help.out, new RegExp(`examples?:\\n  ferry ${name}\\b`), name);
    assert.ok(!help.out.includes('Ferry 0.') && !help.out.includes('ferry --version'), `${name}: not the global usage`);
  }
  const sub = await run('folders', 'options', '-h');
  assert.match(sub.out, /usage: ferry folders options FOLDER/);
  assert.doesNotMatch(sub.out, /folders remove/);
  assert.ok(Object.keys(COMMAND_HELP).length >= 14);
});

test('usage errors: one short message and the usage once, no global help, no Node parser wording; exit 2', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['status', '--bogus'], /^ferry: unknown option --bogus\nusage: ferry status /],
    [['status', '--home'], /^ferry: --home needs a value\nusage: ferry status /],
    [['status', '--json=yes'], /^ferry: --json takes no value\nusage: ferry status /],
    [['status', 'extra'], /^ferry: unexpected argument 'extra'\nusage: ferry status /],
    [['join', 'KEY'], /^ferry: an argument is missing\nusage: ferry join KEY DIR/],
    [['folders'], /^ferry: give a subcommand\nusage: ferry folders list/],
    [['peers', 'lst'], /^ferry: unknown subcommand 'lst'\nusage: ferry peers add/],
  ];
  for (const [argv, expected] of cases) {
    const result = await run(...argv);
    assert.equal(result.code, 2, argv.join(' '));
    assert.equal(result.out, '');
    assert.match(result.err, expected, argv.join(' '));
    assert.equal(count(result.err, /usage:/), 1, `${argv.join(' ')}: usage once\n${result.err}`);
    assert.doesNotMatch(result.err, /positional argument|place it at the end|To specify|argument missing|Ferry 0\./, argv.join(' '));
  }
  const unknown = await run('frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /^ferry: unknown command 'frobnicate'; the commands are run, share, .*\('ferry --help' shows them all\)\n$/);
  // A usage error without its own usage line points at the command's help instead of dumping it.
  const duration = await run('grant', 'dir', '--rw', '--expires', 'soon', '--home', '/nonexistent-ferry-home');
  assert.equal(duration.code, 2);
  assert.match(duration.err, /^ferry: cannot read the duration "soon".*\n\('ferry grant --help' shows the usage and an example\)\n$/);
});

let base: string;
let holder: Server;
let port: number;

before(async () => {
  base = await tempDir('addr-in-use');
  holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  port = (holder.address() as { port: number }).port;
});

after(async () => {
  await new Promise((resolve) => holder.close(resolve));
  await removeDir(base);
});

for (const flag of ['--listen', '--web'] as const) {
  test(`an address in use names ${flag} and the likely cause, in one line; exit 1`, async () => {
    const other = flag === '--listen' ? '--web' : '--listen';
    const result = await ferry(
      ['run', '--home', join(base, flag.slice(2)), flag, `127.0.0.1:${port}`, other, '127.0.0.1:0', '--no-lan', '--no-nat', '--no-dht', '--no-trackers', '--no-stun', '--no-udp'],
    );
    assert.equal(result.code, 1, result.stderr);
    const line = result.stderr.split('\n').find((l) => l.startsWith('ferry: '));
    assert.ok(line, result.stderr);
    assert.match(line, new RegExp(`127\\.0\\.0\\.1:${port} is already in use \\(${flag}\\): another Ferry is probably running`));
    assert.doesNotMatch(result.stderr, /^\s+at /m);
    assert.doesNotMatch(result.stderr, /usage:/);
  });
}
