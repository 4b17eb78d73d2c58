// Selective sync rules: how a selection changes, and what counts as unselected.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IgnoreRules } from '../../src/scan/ignore.js';
import { changeSelection, normaliseSubtree } from '../../src/sync/selection.js';

test('excluding a parent drops the excluded subtrees inside it; including drops it and those below', () => {
  let excluded = changeSelection([], { exclude: 'photos/2019/raw' });
  excluded = changeSelection(excluded, { exclude: '/music/' });
  assert.deepEqual(excluded, ['music', 'photos/2019/raw']);
  excluded = changeSelection(excluded, { exclude: 'photos' });
  assert.deepEqual(excluded, ['music', 'photos']);
  assert.deepEqual(changeSelection(excluded, { exclude: 'photos/2020' }), ['music', 'photos'], 'already inside an excluded subtree');
  assert.deepEqual(changeSelection(excluded, { include: 'photos' }), ['music']);
  assert.deepEqual(changeSelection(['a/b', 'a/c', 'd'], { include: 'a' }), ['d']);
});

test('the root, Ferry\'s own directory and paths with . or .. are refused', () => {
  for (const bad of ['', '/', 'a/../b', './a', '.ferry', '.ferry/archive']) assert.throws(() => normaliseSubtree(bad), { code: 'USAGE' }, bad);
  assert.equal(normaliseSubtree('a//b/'), 'a/b');
});

test('unselected: the subtree and everything below, not siblings with the same prefix', () => {
  const rules = IgnoreRules.builtIn().withExcluded(['photos/raw']);
  assert.equal(rules.unselected('photos/raw'), true);
  assert.equal(rules.unselected('photos/raw/x.nef'), true);
  assert.equal(rules.unselected('photos/rawness.txt'), false);
  assert.equal(rules.unselected('photos'), false);
  assert.equal(rules.ignores('photos/raw/x.nef', false), true);
  assert.equal(IgnoreRules.fromText('*.tmp').withExcluded(['a']).ignores('b/c.tmp', false), true, 'the .ferryignore rules still apply');
});
