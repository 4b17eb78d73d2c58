// `ferry grant` argument handling: durations and usage errors (before any daemon is asked).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { grant, parseDuration } from '../../src/cli/grant.js';

test('durations: seconds to weeks, sums; anything else is a usage error', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('30m'), 1_800_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration('1d12h'), 36 * 3_600_000);
  assert.equal(parseDuration('2W'), 14 * 86_400_000);
  for (const bad of ['', '7', 'd', '-1d', '1.5h', '0s', '7 days', '1y']) {
    assert.throws(() => parseDuration(bad), (e) => isFerryError(e, 'USAGE'), bad);
  }
});

test('grant needs exactly one of --ro/--rw and an expiry', async () => {
  const io = { out: () => undefined, err: () => undefined };
  for (const argv of [['dir', '--expires', '7d'], ['dir', '--ro', '--rw', '--expires', '7d'], ['dir', '--rw'], ['dir', '--ro', '--expires', 'soon']]) {
    await assert.rejects(grant([...argv, '--home', '/nonexistent-ferry-home'], io), (e) => isFerryError(e, 'USAGE'), argv.join(' '));
  }
});
