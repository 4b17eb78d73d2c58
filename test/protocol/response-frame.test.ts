// The copy-free block Response frame decodes exactly like the generic encoder's frame.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FrameDecoder } from '../../src/protocol/frames.js';
import { encodeMessageFrame } from '../../src/protocol/messages.js';
import { RELAY_MAX_DATA_BYTES } from '../../src/protocol/relay-messages.js';
import { dataResponseFrame, relayDataFrame } from '../../src/protocol/response-frame.js';
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

test('relayed data framed in two parts decodes like the generic frame, and a full one stays under 64 KiB', () => {
  for (const [stream, size] of [[1, 1], [2, 4096], [0xffffffff, RELAY_MAX_DATA_BYTES]] as const) {
    const data = randomBytes(size);
    const parts = relayDataFrame(stream, data);
    const fast = decodeOne(Buffer.concat(parts));
    assert.deepEqual(fast, decodeOne(encodeMessageFrame({ type: 'RelayData', stream, data })));
    assert.deepEqual(fast, { type: 'RelayData', stream, data });
    assert.ok(parts[0].length + parts[1].length < 64 * 1024);
  }
  assert.throws(() => relayDataFrame(1, Buffer.alloc(65 * 1024 + 1)), { code: 'FRAME_TOO_LARGE' });
});
