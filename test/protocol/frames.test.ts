// Framing: round trips, arbitrary chunk boundaries, limits checked from the header, malformed input.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors.js';
import {
  FrameDecoder,
  MAX_FRAME_BYTES,
  decodeBody,
  encodeBody,
  encodeFrame,
} from '../../src/protocol/frames.js';
import { MESSAGE_CODES, maxBytesForType } from '../../src/protocol/messages.js';
import { BufferPool } from '../../src/util/buffer-pool.js';
import { decodeMessage } from '../../src/protocol/validate.js';

const frameArb = fc.record({ type: fc.integer({ min: 0, max: 255 }), body: fc.uint8Array({ maxLength: 300 }) });

/** Splits `bytes` at the given (sorted, deduplicated) cut points. */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  return chunks;
}

describe('frames', () => {
  test('any sequence of frames survives any chunking', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const wire = Buffer.concat(frames.map((f) => encodeFrame(f.type, Buffer.from(f.body))));
        const decoder = new FrameDecoder();
        const out = split(wire, cuts).flatMap((chunk) => decoder.push(chunk));
        decoder.end();
        assert.deepEqual(
          out.map((f) => ({ type: f.type, body: [...f.body] })),
          frames.map((f) => ({ type: f.type, body: [...f.body] })),
        );
        assert.equal(decoder.bufferedBytes, 0);
      }),
    );
  });

  test('a frame spread over chunks is assembled in recycled pool buffers without mixing frames up', () => {
    const pool = new BufferPool(8 * 1024 * 1024);
    const decoder = new FrameDecoder({ allocate: (size) => pool.take(size) });
    const bodies = [0x11, 0x22, 0x33].map((fill) => Buffer.alloc(200 * 1024, fill));
    const seen = new Set<ArrayBufferLike>();
    for (const body of bodies) {
      const wire = encodeFrame(7, body);
      const frames = split(wire, [3, 1000, 70_000, 150_000]).flatMap((chunk) => decoder.push(chunk));
      assert.equal(frames.length, 1);
      assert.ok(frames[0]!.body.equals(body));
      seen.add(frames[0]!.body.buffer);
      pool.recycle(frames[0]!.body);
    }
    assert.equal(seen.size, 1, 'each frame reused the buffer the previous one gave back');
  });

  test('pushTransient: any chunking of a reused read buffer, mixed with push(), gives the same frames', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), fc.array(fc.boolean(), { maxLength: 30 }), (frames, cuts, plain) => {
        const wire = Buffer.concat(frames.map((f) => encodeFrame(f.type, Buffer.from(f.body))));
        const decoder = new FrameDecoder();
        const readBuffer = Buffer.alloc(wire.length + 1);
        const out = split(wire, cuts).flatMap((chunk, i) => {
          if (plain[i]) return decoder.push(Buffer.from(chunk));
          // The socket's one read buffer: filled, handed over, then overwritten by the next read.
          const view = readBuffer.subarray(0, chunk.length);
          chunk.copy(view);
          const got = decoder.pushTransient(view);
          readBuffer.fill(0xee);
          return got;
        });
        decoder.end();
        assert.deepEqual(
          out.map((f) => ({ type: f.type, body: [...f.body] })),
          frames.map((f) => ({ type: f.type, body: [...f.body] })),
        );
        assert.equal(decoder.bufferedBytes, 0);
      }),
    );
  });

  test('directTarget/filledInPlace: reads written straight into the frame being assembled, mixed with pushTransient, give the same frames', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 64 }), (frames, sizes, atLeast) => {
        const wire = Buffer.concat(frames.map((f) => encodeFrame(f.type, Buffer.from(f.body))));
        const decoder = new FrameDecoder();
        const readBuffer = Buffer.alloc(128);
        const out = [];
        let inPlace = 0;
        // A socket reading up to `size` bytes at a time, into the decoder's target when it offers one (as TLS does).
        for (let at = 0, i = 0; at < wire.length; i++) {
          const size = sizes[i % sizes.length]!;
          const target = decoder.directTarget(atLeast);
          if (target) {
            assert.ok(target.length >= atLeast);
            const n = wire.copy(target, 0, at, at + Math.min(size, target.length));
            out.push(...decoder.filledInPlace(n));
            inPlace += n;
            at += n;
          } else {
            const n = wire.copy(readBuffer, 0, at, at + size);
            out.push(...decoder.pushTransient(readBuffer.subarray(0, n)));
            readBuffer.fill(0xee);
            at += n;
          }
        }
        decoder.end();
        assert.deepEqual(
          out.map((f) => ({ type: f.type, body: [...f.body] })),
          frames.map((f) => ({ type: f.type, body: [...f.body] })),
        );
        assert.ok(inPlace <= wire.length);
      }),
    );
    const decoder = new FrameDecoder();
    assert.equal(decoder.directTarget(1), undefined, 'no frame begun: nothing to write in place');
    assert.throws(() => decoder.filledInPlace(1), { code: 'INTERNAL' });
  });

  test('pushTransient: a frame spread over many reads takes one pool buffer, not one per read', () => {
    const pool = new BufferPool(8 * 1024 * 1024);
    let taken = 0;
    const decoder = new FrameDecoder({ allocate: (size) => (taken++, pool.take(size)) });
    const body = Buffer.alloc(1024 * 1024, 0x5a);
    const wire = encodeFrame(7, body);
    const read = Buffer.alloc(16 * 1024);
    const frames = [];
    for (let at = 0; at < wire.length; at += read.length) {
      const n = wire.copy(read, 0, at, at + read.length);
      frames.push(...decoder.pushTransient(read.subarray(0, n)));
    }
    assert.equal(frames.length, 1);
    assert.ok(frames[0]!.body.equals(body));
    assert.equal(taken, 1, 'the frame was assembled in one buffer');
  });

  test('pushTransient: limits are checked from the header before a buffer is taken; a hold keeps later bytes', () => {
    let taken = 0;
    const decoder = new FrameDecoder({ maxBytesForType, allocate: (size) => (taken++, Buffer.alloc(size)) });
    const header = Buffer.alloc(5);
    header.writeUInt32BE(1024 * 1024);
    header[4] = MESSAGE_CODES.Hello;
    decoder.pushTransient(header.subarray(0, 4));
    assert.throws(() => decoder.pushTransient(header.subarray(4)), (err: unknown) => isFerryError(err, 'FRAME_TOO_LARGE'));
    assert.equal(taken, 0);
    const tooLarge = Buffer.alloc(4);
    tooLarge.writeUInt32BE(MAX_FRAME_BYTES + 1);
    assert.throws(() => new FrameDecoder().pushTransient(tooLarge), (err: unknown) => isFerryError(err, 'FRAME_TOO_LARGE'));

    const held = new FrameDecoder({ holdAfter: (type) => type === 1 });
    const wire = Buffer.concat([encodeFrame(1, Buffer.from('a')), encodeFrame(2, Buffer.from('b'))]);
    const read = Buffer.from(wire);
    assert.deepEqual(held.pushTransient(read).map((f) => f.type), [1]);
    read.fill(0);
    assert.ok(held.held);
    assert.deepEqual(held.release().map((f) => [f.type, f.body.toString()]), [[2, 'b']]);
  });

  test('msgpack bodies round-trip, including __proto__ as a value', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constant('__proto__'), fc.integer(), fc.uint8Array({ maxLength: 40 }))), (values) => {
        const decoded = decodeBody(encodeBody({ values })) as { values: unknown[] };
        assert.deepEqual(
          decoded.values.map((v) => (v instanceof Uint8Array ? [...v] : v)),
          values.map((v) => (v instanceof Uint8Array ? [...v] : v)),
        );
      }),
    );
  });

  test('an oversized length prefix is rejected from the header alone, before any body is buffered', () => {
    const decoder = new FrameDecoder();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_FRAME_BYTES + 1);
    assert.throws(() => decoder.push(header), (err: unknown) => isFerryError(err, 'FRAME_TOO_LARGE'));
    assert.equal(decoder.bufferedBytes, 0);
  });

  test('a per-type limit is enforced as soon as the type byte arrives', () => {
    const decoder = new FrameDecoder({ maxBytesForType });
    const header = Buffer.alloc(5);
    header.writeUInt32BE(1024 * 1024);
    header[4] = MESSAGE_CODES.Hello;
    assert.throws(() => decoder.push(header), (err: unknown) => isFerryError(err, 'FRAME_TOO_LARGE'));
  });

  test('an unknown type is rejected by the decoder and by decodeMessage', () => {
    const decoder = new FrameDecoder({ maxBytesForType });
    assert.throws(() => decoder.push(encodeFrame(0x7f, Buffer.alloc(3))), (err: unknown) => isFerryError(err, 'PROTOCOL'));
    assert.throws(() => decodeMessage(0x7f, encodeBody({})), (err: unknown) => isFerryError(err, 'PROTOCOL'));
  });

  test('an empty frame (length 0) and a stream ending inside a frame are PROTOCOL errors', () => {
    assert.throws(() => new FrameDecoder().push(Buffer.alloc(4)), (err: unknown) => isFerryError(err, 'PROTOCOL'));
    const decoder = new FrameDecoder();
    decoder.push(encodeFrame(1, Buffer.alloc(10)).subarray(0, 8));
    assert.throws(() => decoder.end(), (err: unknown) => isFerryError(err, 'PROTOCOL'));
  });

  test('malformed msgpack, trailing bytes and a non-map body are PROTOCOL errors', () => {
    for (const body of [Buffer.from([0x92, 0x01]), Buffer.from([0xc1]), Buffer.concat([encodeBody({}), Buffer.from([1])]), encodeBody([1, 2]), Buffer.alloc(0)]) {
      assert.throws(() => decodeMessage(MESSAGE_CODES.Ping, body), (err: unknown) => isFerryError(err, 'PROTOCOL'), body.toString('hex'));
    }
    // Deep nesting overflows msgpackr's recursion: still a PROTOCOL error, not a crash.
    assert.throws(() => decodeMessage(MESSAGE_CODES.Index, Buffer.alloc(1_000_000, 0x91)), (err: unknown) => isFerryError(err, 'PROTOCOL'));
  });
});
