// Tests for IgnoreRules: built-ins at any depth, .ferryignore patterns (negation, dir-only, anchoring).

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IgnoreRules, TEMP_FILE_PREFIX } from '../../src/scan/ignore.js';
import { makeTempDir, runCleanups } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
after(() => runCleanups(cleanups));

describe('built-in ignores', () => {
  const rules = IgnoreRules.builtIn();

  test('Ferry directory only at the root', () => {
    assert.equal(rules.ignores('.ferry', true), true);
    assert.equal(rules.ignores('.ferry/archive/x.txt', false), true);
    assert.equal(rules.ignores('sub/.ferry', true), false);
    assert.equal(rules.ignores('.ferryfoo', false), false);
  });

  test('temp files of the puller at any depth', () => {
    assert.equal(rules.ignores(`${TEMP_FILE_PREFIX}abc`, false), true);
    assert.equal(rules.ignores(`a/b/${TEMP_FILE_PREFIX}photo.jpg`, false), true);
    assert.equal(rules.ignores('a/b/.ferry-tm', false), false);
  });

  test('NAS litter at any depth, and everything inside it', () => {
    for (const name of ['@eaDir', '#recycle', '#snapshot', '.@__thumb', '.@__qini', '.DS_Store', 'Thumbs.db', 'desktop.ini']) {
      assert.equal(rules.ignores(name, false), true, name);
      assert.equal(rules.ignores(`deep/er/${name}`, true), true, name);
      assert.equal(rules.ignores(`deep/${name}/inside.jpg`, false), true, name);
    }
    assert.equal(rules.ignores('photos/eaDir', true), false);
    assert.equal(rules.ignores('thumbs.db.txt', false), false);
  });

  test('the root and .ferryignore are never ignored', () => {
    assert.equal(rules.ignores('', true), false);
    assert.equal(IgnoreRules.fromText('*\n').ignores('.ferryignore', false), false);
  });
});

describe('.ferryignore', () => {
  test('load reads the file; a missing file means built-ins only', async () => {
    const root = await makeTempDir(cleanups);
    assert.equal((await IgnoreRules.load(root)).ignores('x.log', false), false);
    await writeFile(join(root, '.ferryignore'), '# comment\n*.log\n');
    const rules = await IgnoreRules.load(root);
    assert.equal(rules.ignores('x.log', false), true);
    assert.equal(rules.ignores('a/b/x.log', false), true);
    assert.equal(rules.ignores('x.txt', false), false);
    assert.equal(rules.ignores('@eaDir', true), true, 'built-ins still apply');
  });

  test('negation re-includes a file', () => {
    const rules = IgnoreRules.fromText('*.log\n!keep.log\n');
    assert.equal(rules.ignores('drop.log', false), true);
    assert.equal(rules.ignores('keep.log', false), false);
    assert.equal(rules.ignores('sub/keep.log', false), false);
  });

  test('dir-only patterns match directories and what is inside them, not files', () => {
    const rules = IgnoreRules.fromText('build/\n');
    assert.equal(rules.ignores('build', true), true);
    assert.equal(rules.ignores('build', false), false);
    assert.equal(rules.ignores('build/out.bin', false), true);
    assert.equal(rules.ignores('src/build', true), true);
  });

  test('anchored patterns match only at the root', () => {
    const rules = IgnoreRules.fromText('/cache\n');
    assert.equal(rules.ignores('cache', true), true);
    assert.equal(rules.ignores('cache/x', false), true);
    assert.equal(rules.ignores('a/cache', true), false);
  });

  test('a file inside an ignored directory cannot be re-included (as in git)', () => {
    const rules = IgnoreRules.fromText('tmp/\n!tmp/keep.txt\n');
    assert.equal(rules.ignores('tmp/keep.txt', false), true);
  });

  test('patterns are case-sensitive', () => {
    const rules = IgnoreRules.fromText('*.LOG\n');
    assert.equal(rules.ignores('a.LOG', false), true);
    assert.equal(rules.ignores('a.log', false), false);
  });

  test('a directory named like a pattern with subdirectories', async () => {
    const root = await makeTempDir(cleanups);
    await mkdir(join(root, 'node_modules/x'), { recursive: true });
    await writeFile(join(root, '.ferryignore'), 'node_modules\n');
    const rules = await IgnoreRules.load(root);
    assert.equal(rules.ignores('node_modules', true), true);
    assert.equal(rules.ignores('node_modules/x/y.js', false), true);
  });
});
