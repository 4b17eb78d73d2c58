// The copy-free block Response frame decodes exactly like the generic encoder's frame.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FrameDecoder } from '../../src/protocol/frames.js';
import { encodeMessageFrame } from '../../src/protocol/messages.js';
import { dataResponseFrame } from '../../src/protocol/response-frame.js';
import { decodeMessage } from '../../src/protocol/validate.js';

function decodeOne(bytes: Buffer): unknown {
  const frames = new FrameDecoder().push(bytes);
  assert.equal(frames.length, 1);
  return decodeMessage(frames[0]!.type, frames[0]!.body);
}

test('a data Response framed in two parts decodes like the generic one', () => {
  for (const [id, size] of [[1, 0], [127, 1], [65_537, 128 * 1024], [0xffffffff, 1024 * 1024]] as const) {
    const data = randomBytes(size);
    const fast = decodeOne(Buffer.concat(dataResponseFrame(id, data)));
    const generic = decodeOne(encodeMessageFrame({ type: 'Response', id, data }));
    assert.deepEqual(fast, generic);
    assert.deepEqual(fast, { type: 'Response', id, data });
  }
});

test('an oversized block is refused before anything is written', () => {
  assert.throws(() => dataResponseFrame(1, Buffer.alloc(17 * 1024 * 1024)), { code: 'FRAME_TOO_LARGE' });
});
