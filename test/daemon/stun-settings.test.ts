// STUN settings: on by default with public servers, `--stun`/`--no-stun` and the settings API
// validated like every other setting.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { validateSettingsPatch } from '../../src/daemon/admin.js';
import { defaultSettings, mergeSettings } from '../../src/daemon/settings.js';

test('STUN is on by default with a list of public servers; servers need a port', () => {
  const defaults = defaultSettings('nas');
  assert.equal(defaults.stun, true);
  assert.ok(defaults.stunServers.length > 0 && defaults.stunServers.every((s) => /:\d+$/.test(s)));
  assert.deepEqual(mergeSettings(defaults, { stunServers: ['10.232.100.3:3478'] }).stunServers, ['10.232.100.3:3478']);
  for (const bad of [['stun.example.org'], ['[::1]:0'], Array(17).fill('192.0.2.1:3478')]) {
    assert.throws(() => mergeSettings(defaults, { stunServers: bad }), (err: unknown) => isFerryError(err, 'USAGE'), JSON.stringify(bad).slice(0, 60));
  }
});

test('the settings API takes stun and stunServers, and refuses bad ones naming the setting', () => {
  assert.deepEqual(validateSettingsPatch({ stun: false, stunServers: ['stun.example.org:3478'] }), { stun: false, stunServers: ['stun.example.org:3478'] });
  for (const patch of [{ stun: 'yes' }, { stunServers: 'x:1' }, { stunServers: ['no-port'] }, { stunServers: [5] }]) {
    assert.throws(() => validateSettingsPatch(patch), (err: unknown) => isFerryError(err, 'USAGE') && /^stun/.test((err as Error).message), JSON.stringify(patch));
  }
});

test('relaying is on by default with a 1 MiB/s cap; relay and relayRateBps are settings, validated', () => {
  const defaults = defaultSettings('nas');
  assert.equal(defaults.relay, true);
  assert.equal(defaults.relayRateBps, 1024 * 1024);
  assert.equal(mergeSettings(defaults, { relay: false, relayRateBps: 0 }).relay, false);
  assert.throws(() => mergeSettings(defaults, { relayRateBps: -1 }), (err: unknown) => isFerryError(err, 'USAGE'));
  assert.deepEqual(validateSettingsPatch({ relay: false, relayRateBps: 2_000_000 }), { relay: false, relayRateBps: 2_000_000 });
  for (const patch of [{ relay: 'no' }, { relayRateBps: 1.5 }, { relayRateBps: -3 }]) {
    assert.throws(() => validateSettingsPatch(patch), (err: unknown) => isFerryError(err, 'USAGE') && /^relay/.test((err as Error).message), JSON.stringify(patch));
  }
});
