// FailedItems: a bounded per-folder list of skipped paths, shown safely.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FailedItems, printable } from '../../src/sync/failed-items.js';

describe('failed items', () => {
  test('keyed by path (latest reason wins), newest first, cleared when the path syncs', () => {
    const failed = new FailedItems(10);
    assert.equal(failed.report('a', 'first', 'PEER1', 1), true);
    assert.equal(failed.report('b', 'bad', 'local', 2), true);
    assert.equal(failed.report('a', 'second', 'PEER1', 3), false);
    assert.deepEqual(failed.list().map((item) => [item.path, item.reason, item.source]), [['a', 'second', 'PEER1'], ['b', 'bad', 'local']]);
    assert.equal(failed.count, 2);
    failed.clear('a', 'OTHER');
    assert.equal(failed.has('a'), true, "another source's failure of the path stands");
    failed.clear('a', 'PEER1');
    assert.deepEqual(failed.list().map((item) => item.path), ['b']);
    failed.clearSource('local');
    assert.equal(failed.count, 0);
  });

  test('bounded: the oldest go, and the count says how many were forgotten', () => {
    const failed = new FailedItems(3);
    for (let i = 0; i < 10; i++) failed.report(`p${i}`, 'why', 'local');
    assert.equal(failed.count, 10);
    assert.deepEqual(failed.list().map((item) => item.path), ['p9', 'p8', 'p7']);
    assert.deepEqual(failed.list(2).map((item) => item.path), ['p9', 'p8']);
  });

  test('control and bidirectional characters are shown escaped, never raw', () => {
    assert.equal(printable('a\nb\u001b[31m\u202ec'), 'a\\u{a}b\\u{1b}[31m\\u{202e}c');
    const failed = new FailedItems();
    failed.report('evil\u001b]0;x\u0007', 'x\r', 'local');
    const [item] = failed.list();
    assert.doesNotMatch(item!.path + item!.reason, /[\u0000-\u001f]/);
    assert.equal(failed.has('evil\u001b]0;x\u0007'), true);
  });
});
