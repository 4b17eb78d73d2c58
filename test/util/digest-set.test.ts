// DigestSet (src/util/digest-set.ts): the scanner's set of seen paths, bounded in bytes at any number of files, and the same answers as a Set.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DigestSet } from '../../src/util/digest-set.js';
import { pathDigest } from '../../src/util/path-digest.js';

const MIB = 1024 * 1024;

function path(i: number): string {
  return `g${Math.floor(i / 1000)}/d${Math.floor(i / 100) % 10}/f${i}.dat`;
}

describe('DigestSet', () => {
  test('the paths of a 1,000,000-file walk: 200,000 kept in 4 MiB, 100,000 in 2 MiB; the rest refused, not remembered', () => {
    const set = new DigestSet(200_000);
    let refused = 0;
    for (let i = 0; i < 1_000_000; i++) {
      if (!set.add(pathDigest(path(i)))) refused++;
      if (i === 99_999) assert.ok(set.bytes <= 2 * MIB, `100,000 digests in ${set.bytes} bytes`);
    }
    assert.equal(set.size, 200_000);
    assert.equal(refused, 800_000);
    assert.ok(set.bytes <= 4 * MIB, `200,000 digests in ${set.bytes} bytes`);
    for (let i = 0; i < 200_000; i += 7) assert.ok(set.has(pathDigest(path(i))), path(i));
    let found = 0;
    for (let i = 200_000; i < 1_000_000; i += 7) if (set.has(pathDigest(path(i)))) found++;
    assert.equal(found, 0, 'paths refused are not in the set');
  });

  test('answers as a Set<number> does through adds and deletes (deleted slots reused, probing past them)', () => {
    const set = new DigestSet(5_000, 8);
    const reference = new Set<number>();
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    const digests = Array.from({ length: 8_000 }, (_, i) => (i === 0 ? 0 : i === 1 ? 2 ** 53 - 1 : pathDigest(`p${i}`)));
    for (let step = 0; step < 60_000; step++) {
      const digest = digests[next() % digests.length]!;
      if (next() % 3 === 0) assert.equal(set.delete(digest), reference.delete(digest));
      else if (reference.size < 5_000 || reference.has(digest)) {
        assert.equal(set.add(digest), true);
        reference.add(digest);
      } else assert.equal(set.add(digest), false);
      assert.equal(set.size, reference.size);
    }
    for (const digest of digests) assert.equal(set.has(digest), reference.has(digest));
    assert.ok(set.bytes <= 8 * 8192, `${set.bytes} bytes for at most 5,000 entries`);
  });
});
