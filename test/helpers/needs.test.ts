// needs: a skip reason with the command that meets the need, a failure under CI, and only packages of the one list.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { needs, underCi } from './needs.js';

const saved = process.env.CI;
afterEach(() => {
  if (saved === undefined) delete process.env.CI;
  else process.env.CI = saved;
});

test('a missing command is a skip reason naming its package and the install command, outside CI', () => {
  delete process.env.CI;
  assert.equal(needs.command('ferry-no-such-command', 'shellcheck'), 'needs ferry-no-such-command (Debian package shellcheck): sudo make system-deps');
  assert.equal(needs.command('ls', 'coreutils'), false);
  assert.equal(needs.all(false, needs.file('/nonexistent/chromium', 'chromium'), 'later'), 'needs /nonexistent/chromium (Debian package chromium): sudo make system-deps');
});

test('under CI a missing need fails instead of skipping', () => {
  process.env.CI = 'true';
  assert.ok(underCi());
  assert.throws(() => needs.command('ferry-no-such-command', 'shellcheck'), /CI=true, so this test may not skip: needs ferry-no-such-command/);
  process.env.CI = 'false';
  assert.ok(!underCi());
});

test('a need outside scripts/debian-packages is a mistake in the test, not a skip', () => {
  delete process.env.CI;
  assert.throws(() => needs.command('ferry-no-such-command', 'ferry-no-such-package'), /scripts\/debian-packages does not list/);
  assert.throws(() => needs.command('ls', 'ferry-no-such-package'), /scripts\/debian-packages does not list/, 'also where the command is there');
});

test('root: false as root, else the command that runs the suite as root', () => {
  delete process.env.CI;
  assert.equal(needs.root(), process.getuid!() === 0 ? false : 'needs root: sudo make test');
});
