// Version counters are capped at 2^48: never bumped past it (an overflow entry takes the change), and what is sent stays valid on the wire.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bumpVersion, compareVersions, MAX_VERSION_COUNTER } from '../../src/index/records.js';
import { encodeMessage, type IndexMessage } from '../../src/protocol/messages.js';
import { decodeMessage } from '../../src/protocol/validate.js';

describe('version counter cap', () => {
  test('a bump below the cap raises the device entry', () => {
    assert.deepEqual(bumpVersion({ ME: 4, OTHER: 9 }, 'ME'), { ME: 5, OTHER: 9 });
    assert.deepEqual(bumpVersion({}, 'ME'), { ME: 1 });
  });

  test('at the cap the change goes to the overflow entry, and still supersedes the old version', () => {
    const base = { ME: MAX_VERSION_COUNTER, OTHER: 3 };
    const next = bumpVersion(base, 'ME');
    assert.deepEqual(next, { ME: MAX_VERSION_COUNTER, OTHER: 3, 'ME-2': 1 });
    assert.equal(compareVersions(next, base), 'newer');
    const full = { ME: MAX_VERSION_COUNTER, 'ME-2': MAX_VERSION_COUNTER };
    assert.deepEqual(bumpVersion(full, 'ME'), { ...full, 'ME-3': 1 });
    for (const value of Object.values(bumpVersion(full, 'ME'))) assert.ok(value <= MAX_VERSION_COUNTER);
  });

  test('a counter above the cap (stored before there was one) is brought down to it by the next edit', () => {
    const next = bumpVersion({ ME: Number.MAX_SAFE_INTEGER, OTHER: 2 ** 53 }, 'ME');
    assert.deepEqual(next, { ME: MAX_VERSION_COUNTER, OTHER: MAX_VERSION_COUNTER, 'ME-2': 1 });
  });

  test('a record with a bumped capped version passes the wire validator', () => {
    const version = bumpVersion({ ME: MAX_VERSION_COUNTER }, 'ME');
    const message: IndexMessage = {
      type: 'IndexUpdate', folderId: Buffer.alloc(20, 1), indexId: Buffer.alloc(8), firstSequence: 1, lastSequence: 1,
      records: [{ path: 'a', type: 'file', size: 0, mode: 0o644, mtimeMs: 1, inode: 0, version, modifiedBy: 'ME', blockSize: 0, blocks: [], deleted: false, sequence: 1 }],
    };
    const { type, body } = encodeMessage(message);
    const back = decodeMessage(type, body) as IndexMessage;
    assert.equal(back.rejected, undefined);
    assert.deepEqual(back.records[0]!.version, version);
  });
});
