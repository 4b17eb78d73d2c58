// TURN settings: `turnServers` is validated in settings and the settings API; reports never carry
// a password (masked), and a masked entry sent back keeps the stored password.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { editable, restoreTurnPasswords, settingsReport, validateSettingsPatch } from '../../src/daemon/admin.js';
import { defaultSettings, mergeSettings } from '../../src/daemon/settings.js';

const URL_A = 'turn://alice:s3cret-A@turn.example.org:3478';

test('turnServers: none by default; at most 8 well-formed turn:// URLs, the error never repeating a password', () => {
  const defaults = defaultSettings('nas');
  assert.deepEqual(defaults.turnServers, []);
  assert.deepEqual(mergeSettings(defaults, { turnServers: [URL_A] }).turnServers, [URL_A]);
  for (const bad of [['turn://turn.example.org'], ['stun://a:pw-visible@h:1'], Array(9).fill(URL_A)]) {
    assert.throws(() => mergeSettings(defaults, { turnServers: bad }), (err: unknown) => isFerryError(err, 'USAGE') && !(err as Error).message.includes('pw-visible'));
  }
  assert.deepEqual(validateSettingsPatch({ turnServers: [URL_A] }), { turnServers: [URL_A] });
  for (const patch of [{ turnServers: URL_A }, { turnServers: ['http://a:pw-visible@h'] }, { turnServers: [5] }]) {
    assert.throws(() => validateSettingsPatch(patch), (err: unknown) => isFerryError(err, 'USAGE') && /^turnServers/.test((err as Error).message) && !(err as Error).message.includes('pw-visible'), JSON.stringify(patch));
  }
});

test('reports mask the password; a masked entry sent back keeps the stored one, an unknown one is refused', () => {
  const settings = mergeSettings(defaultSettings('nas'), { turnServers: [URL_A] });
  assert.deepEqual(editable(settings).turnServers, ['turn://alice:********@turn.example.org:3478']);
  const report = settingsReport(settings, settings, settings, { turnServers: [URL_A] });
  assert.ok(!JSON.stringify(report).includes('s3cret-A'), JSON.stringify(report));
  assert.equal(report.overriddenBy?.turnServers, '--turn');
  const masked = editable(settings).turnServers;
  assert.deepEqual(restoreTurnPasswords(masked, [URL_A]), [URL_A]);
  assert.deepEqual(restoreTurnPasswords(['turn://alice:new-pass@turn.example.org:3478'], [URL_A]), ['turn://alice:new-pass@turn.example.org:3478']);
  assert.throws(() => restoreTurnPasswords(['turn://bob:********@turn.example.org:3478'], [URL_A]), (err: unknown) => isFerryError(err, 'USAGE') && /^turnServers/.test((err as Error).message));
});
