// The mass-delete guard's rules: more than half of a folder (from 50 files), more than massDeleteFiles, a mass
// delete that arrives in pieces within the window, approval and restore.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeleteGuard, MASS_DELETE_MIN_FILES, MASS_DELETE_WINDOW_MS, type DestructiveDeletion } from '../../src/sync/delete-guard.js';

function deletions(count: number, from = 0): DestructiveDeletion[] {
  return Array.from({ length: count }, (_, i) => ({ path: `f/${from + i}`, modifiedBy: 'PEERAAA' }));
}

test('small deletions pass; more than half of the folder (from 50 files) is held', () => {
  const guard = new DeleteGuard({ maxFiles: () => 1000 });
  assert.equal(guard.review(deletions(3), 4).size, 0, 'a small folder changes wholesale');
  assert.equal(new DeleteGuard({ maxFiles: () => 1000 }).review(deletions(MASS_DELETE_MIN_FILES - 1), MASS_DELETE_MIN_FILES - 1).size, 0);
  const fresh = new DeleteGuard({ maxFiles: () => 1000 });
  assert.equal(fresh.review(deletions(100), 300).size, 0, 'a third of the folder');
  const held = new DeleteGuard({ maxFiles: () => 1000 });
  assert.equal(held.review(deletions(200), 200).size, 200);
  assert.equal(held.newlyHeld, true);
  const report = held.report()!;
  assert.equal(report.files, 200);
  assert.deepEqual(report.devices, ['PEERAAA']);
  assert.equal(report.examples.length, 10);
  assert.match(report.reason, /more than half/);
  held.review(deletions(200), 200);
  assert.equal(held.newlyHeld, false, 'one log line per hold');
});

test('more than massDeleteFiles is held however big the folder; 0 leaves only the half rule', () => {
  const guard = new DeleteGuard({ maxFiles: () => 100 });
  assert.equal(guard.review(deletions(101), 100_000).size, 101);
  assert.match(guard.report()!.reason, /massDeleteFiles/);
  const unlimited = new DeleteGuard({ maxFiles: () => 0 });
  assert.equal(unlimited.review(deletions(5000), 100_000).size, 0);
});

test('a mass delete arriving in pieces is held once the pieces add up within the window', () => {
  let now = 1_000_000;
  const guard = new DeleteGuard({ maxFiles: () => 1000, now: () => now });
  assert.equal(guard.review(deletions(40, 0), 200).size, 0);
  assert.equal(guard.review(deletions(40, 40), 160).size, 0);
  assert.equal(guard.review(deletions(40, 80), 120).size, 40, '120 of 200 within the window');
  now += MASS_DELETE_WINDOW_MS + 1;
  assert.equal(guard.review(deletions(40, 80), 120).size, 0, 'after the window the pieces stand alone');
});

test('approve lets the held paths through; takeHeld hands them over for restore; nothing held reports nothing', () => {
  const guard = new DeleteGuard({ maxFiles: () => 1000 });
  guard.review(deletions(100), 100);
  assert.equal(guard.approve(), 100);
  assert.equal(guard.report(), undefined);
  assert.ok(guard.isApproved('f/5'));
  guard.keepApprovals(new Set(['f/5']));
  assert.ok(guard.isApproved('f/5'));
  assert.ok(!guard.isApproved('f/6'), 'approvals of paths no longer pending are dropped');
  guard.review(deletions(100, 1000), 100);
  assert.equal(guard.takeHeld().length, 100);
  assert.equal(guard.report(), undefined);
  assert.equal(guard.review([], 100).size, 0);
});
