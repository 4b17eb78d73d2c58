// Fuzz targets for the wire: the frame decoder (also under the pre-handshake limits), every message validator, the
// field checkers and the path rule. Contract: a valid value, or FerryError PROTOCOL / FRAME_TOO_LARGE / PATH_UNSAFE.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { FileRecord } from '../../src/index/records.js';
import {
  checkArray, checkBoolean, checkByteRange, checkBytes, checkDeviceId, checkFiniteNumber, checkObject, checkOneOf,
  checkRelativePath, checkString, checkUint,
} from '../../src/protocol/checks.js';
import { decodeBody, encodeBody, encodeFrame, FRAME_HEADER_BYTES, FrameDecoder, type Frame } from '../../src/protocol/frames.js';
import { encodeMessage, HELLO_MAGIC, maxBytesForType, MESSAGE_CODES, type Message } from '../../src/protocol/messages.js';
import { PRE_HANDSHAKE_CODES, PRE_HANDSHAKE_MAX_FRAME_BYTES, preHandshakeMaxBytes } from '../../src/protocol/pre-handshake.js';
import { decodeMessage } from '../../src/protocol/validate.js';
import { inputs, opts, parsesOrThrows, RUNS } from './fuzz.js';

const folderId = Buffer.alloc(20, 7);
const hash = Buffer.alloc(32, 9);
const zeros8 = Buffer.alloc(8);
const record = (o: Partial<FileRecord> = {}): FileRecord => ({
  path: 'photos/2024/img.jpg', type: 'file', size: 300_000, mode: 0o644, mtimeMs: 1_700_000_000_123.5, inode: 0,
  version: { ABCDEFGHIJKL: 3, MNOPQRSTUVWX: 1 }, modifiedBy: 'ABCDEFGHIJKL', blockSize: 131072, blocks: [hash, hash, hash],
  deleted: false, sequence: 5, ...o,
});
const DEVICE = 'A'.repeat(52);

/** One valid message of every type (as in test/protocol/validate.test.ts). */
const SAMPLES: Message[] = [
  { type: 'Hello', magic: HELLO_MAGIC, protocolVersion: 1, deviceId: DEVICE, deviceName: 'nas', softwareVersion: '0.1.0' },
  { type: 'FolderClaims', tags: [hash, Buffer.alloc(32, 1)] },
  { type: 'FolderProofs', proofs: [{ tag: hash, enc: hash, ro: hash, rw: Buffer.alloc(64, 2) }, { tag: Buffer.alloc(32, 3), enc: hash, grant: Buffer.alloc(175, 4), grantProof: Buffer.alloc(64, 5) }] },
  { type: 'ClusterState', folders: [{ folderId, peerAccess: 'ro', indexId: zeros8, maxSequence: 9, receivedIndexId: zeros8, receivedSequence: 0 }] },
  { type: 'Index', folderId, indexId: zeros8, firstSequence: 1, lastSequence: 9, records: [record(), record({ path: '__proto__', sequence: 6 })] },
  {
    type: 'IndexUpdate', folderId, indexId: zeros8, firstSequence: 10, lastSequence: 12,
    records: [
      record({ type: 'symlink', path: 'link', size: 0, blocks: [], linkTarget: '../x', sequence: 10, signature: Buffer.alloc(64, 5) }),
      record({ type: 'dir', path: 'dir', size: 0, blocks: [], sequence: 11 }),
      record({ deleted: true, blocks: [], sequence: 12, signature: Buffer.alloc(80, 6) }),
    ],
  },
  { type: 'Request', id: 1, folderId, path: 'a/b', offset: 131072, size: 131072, hash },
  { type: 'Response', id: 1, data: Buffer.from('block') },
  { type: 'Response', id: 2, error: 'NO_SUCH_FILE' },
  { type: 'Have', folderId, path: 'a/b', version: { ABCDEFGHIJKL: 2 }, blockIndexes: [0, 3] },
  { type: 'Progress', folderId, state: 'syncing', needFiles: 1, needBytes: 2, globalFiles: 3, globalBytes: 4 },
  { type: 'Ping' },
  { type: 'Close', code: 'SHUTDOWN', reason: 'bye' },
  { type: 'PeerExchange', folderId, listenPort: 22100, peers: [{ device: DEVICE, addresses: ['10.0.0.2:22100', '[fe80::1]:22100'] }] },
  { type: 'Grants', folderId, grants: [Buffer.alloc(175, 1)], revocations: [Buffer.alloc(109, 2)] },
  { type: 'IntroduceRequest', folderId, device: DEVICE, addresses: ['203.0.113.7:32101'] },
  { type: 'Introduce', folderId, device: DEVICE, addresses: ['203.0.113.7:32101', '[2001:db8::1]:22100'], delayMs: 15 },
  { type: 'IntroduceFailed', folderId, device: DEVICE, code: 'RATE_LIMITED' },
];
const FRAMES: Frame[] = SAMPLES.map(encodeMessage);
const WIRE = ['PROTOCOL', 'FRAME_TOO_LARGE', 'PATH_UNSAFE'] as const;

const sampleFrame = fc.constantFrom(...FRAMES);
/** A valid body with one field (or one record field) swapped for an arbitrary msgpack value. */
const fieldSwapped = fc.tuple(fc.constantFrom(...SAMPLES), fc.nat(), fc.nat(), fc.anything({ maxDepth: 2, withNullPrototype: false })).map(([m, i, j, value]) => {
  const { type, body } = encodeMessage(m);
  const fields = decodeBody(body) as Record<string, unknown>;
  const keys = Object.keys(fields);
  if (keys.length > 0) {
    const key = keys[i % keys.length]!;
    const target = fields[key];
    if (Array.isArray(target) && target.length > 0 && typeof target[0] === 'object' && target[0] !== null && !(target[0] instanceof Uint8Array)) {
      const inner = target[j % target.length] as Record<string, unknown>;
      const innerKeys = Object.keys(inner);
      if (innerKeys.length) inner[innerKeys[j % innerKeys.length]!] = value;
    } else fields[key] = value;
  }
  return { type, body: encodeBody(fields) };
});
const anyCode = fc.oneof(fc.constantFrom(...Object.values(MESSAGE_CODES)), fc.integer({ min: 0, max: 255 }));

/** Decodes a frame; a decoded message must survive encode → decode unchanged (the validators' output is canonical). */
function checkDecode(type: number, body: Buffer): void {
  const message = parsesOrThrows(() => decodeMessage(type, body), WIRE);
  if (message === undefined) return;
  assert.equal(MESSAGE_CODES[message.type], type);
  // Records skipped as bad (`rejected`, reported locally) are not sent on; the rest must come back unchanged.
  const { rejected, ...kept } = message as Message & { rejected?: unknown };
  // A message dropped whole (an advisory Hashing with a reason) is never sent on: nothing to round-trip.
  if (typeof rejected === 'string') return;
  const again = encodeMessage(message);
  assert.deepEqual(decodeMessage(again.type, again.body), kept);
}

/** Feeds `stream` to `decoder` in the given chunk sizes; returns the frames, or undefined after a wire error. */
function feed(decoder: FrameDecoder, stream: Buffer, cuts: number[], maxFrameBytes: number): Frame[] | undefined {
  const frames: Frame[] = [];
  let offset = 0;
  for (let i = 0; offset < stream.length; i++) {
    const size = Math.max(1, cuts.length ? cuts[i % cuts.length]! : stream.length);
    const chunk = stream.subarray(offset, offset + size);
    offset += chunk.length;
    const got = parsesOrThrows(() => decoder.push(chunk), ['PROTOCOL', 'FRAME_TOO_LARGE']);
    if (got === undefined) return undefined;
    frames.push(...got);
    // Bounded: at most one partial frame (whose declared size passed the limits) is held.
    assert.ok(decoder.bufferedBytes < FRAME_HEADER_BYTES + maxFrameBytes, `${decoder.bufferedBytes} bytes buffered`);
  }
  return frames;
}

const stream = fc.array(sampleFrame, { minLength: 1, maxLength: 6 }).map((frames) => Buffer.concat(frames.map((f) => encodeFrame(f.type, f.body))));
const cuts = fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 8 });

describe('fuzz: frames and messages', () => {
  test(`FrameDecoder: valid streams cut anywhere round-trip; mutated streams decode or fail with PROTOCOL/FRAME_TOO_LARGE (${RUNS} inputs)`, () => {
    fc.assert(
      fc.property(fc.array(sampleFrame, { minLength: 1, maxLength: 6 }), cuts, (frames, sizes) => {
        const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.body)));
        const decoder = new FrameDecoder({ maxBytesForType });
        const got = feed(decoder, bytes, sizes, 16 * 1024 * 1024);
        assert.deepEqual(got?.map((f) => [f.type, Buffer.from(f.body)]), frames.map((f) => [f.type, f.body]));
        decoder.end();
      }),
      opts(),
    );
    const maxFrameBytes = 4096;
    fc.assert(
      fc.property(inputs(stream, 2048), cuts, fc.boolean(), (bytes, sizes, typed) => {
        const decoder = new FrameDecoder({ maxFrameBytes, ...(typed ? { maxBytesForType } : {}) });
        const frames = feed(decoder, bytes, sizes, maxFrameBytes);
        if (!frames) return;
        for (const f of frames) {
          assert.ok(f.body.length + 1 <= maxFrameBytes);
          if (typed) assert.ok(maxBytesForType(f.type) !== undefined);
          checkDecode(f.type, Buffer.from(f.body));
        }
        parsesOrThrows(() => decoder.end(), ['PROTOCOL']);
      }),
      opts(),
    );
  });

  test(`FrameDecoder before the handshake: only handshake messages of at most 256 KiB come out (${RUNS} inputs)`, () => {
    const big = fc.integer({ min: 0, max: 0xffffffff }).map((n) => {
      const b = Buffer.alloc(5);
      b.writeUInt32BE(n, 0);
      b[4] = n & 0xff;
      return b;
    });
    fc.assert(
      fc.property(fc.oneof(inputs(stream, 1024), big), cuts, (bytes, sizes) => {
        const decoder = new FrameDecoder({ maxBytesForType: preHandshakeMaxBytes });
        const frames = feed(decoder, bytes, sizes, PRE_HANDSHAKE_MAX_FRAME_BYTES);
        for (const f of frames ?? []) {
          assert.ok(PRE_HANDSHAKE_CODES.has(f.type), `type ${f.type} before the handshake`);
          assert.ok(f.body.length + 1 <= PRE_HANDSHAKE_MAX_FRAME_BYTES);
        }
      }),
      opts(),
    );
  });

  test(`decodeMessage: every type, mutated bodies, swapped fields and random bytes (${RUNS} inputs each)`, () => {
    fc.assert(fc.property(sampleFrame, (f) => checkDecode(f.type, f.body)), opts(FRAMES.length));
    fc.assert(
      fc.property(fc.tuple(sampleFrame.map((f) => f.type), inputs(sampleFrame.map((f) => f.body))), anyCode, fc.boolean(), ([type, body], code, keep) =>
        checkDecode(keep ? type : code, body),
      ),
      opts(),
    );
    fc.assert(fc.property(fieldSwapped, ({ type, body }) => checkDecode(type, body)), opts());
    fc.assert(
      fc.property(anyCode, fc.anything({ maxDepth: 3 }), (code, value) => checkDecode(code, encodeBody(value))),
      opts(),
    );
  });

  test(`field checkers: any msgpack value gives the value or PROTOCOL (${RUNS} inputs)`, () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 2, withTypedArray: true }), (value) => {
        const p = ['PROTOCOL'] as const;
        const o = parsesOrThrows(() => checkObject(value, 'x'), p);
        if (o !== undefined) assert.ok(typeof o === 'object' && !Array.isArray(o));
        const s = parsesOrThrows(() => checkString(value, 'x', 16), p);
        if (s !== undefined) assert.ok(typeof s === 'string' && Buffer.byteLength(s) <= 16);
        const n = parsesOrThrows(() => checkUint(value, 'x', 1000), p);
        if (n !== undefined) assert.ok(Number.isSafeInteger(n) && n >= 0 && n <= 1000);
        const f = parsesOrThrows(() => checkFiniteNumber(value, 'x'), p);
        if (f !== undefined) assert.ok(Number.isFinite(f));
        parsesOrThrows(() => checkBoolean(value, 'x'), p);
        const b = parsesOrThrows(() => checkBytes(value, 'x', 4), p);
        if (b !== undefined) assert.equal(b.length, 4);
        const r = parsesOrThrows(() => checkByteRange(value, 'x', 4), p);
        if (r !== undefined) assert.ok(r.length <= 4);
        const a = parsesOrThrows(() => checkArray(value, 'x', 3), p);
        if (a !== undefined) assert.ok(Array.isArray(a) && a.length <= 3);
        parsesOrThrows(() => checkOneOf(value, 'x', ['a', 'b']), p);
        const d = parsesOrThrows(() => checkDeviceId(value, 'x'), p);
        if (d !== undefined) assert.match(d, /^[A-Za-z0-9-]+$/);
      }),
      opts(),
    );
  });

  test(`checkRelativePath: any string gives a safe relative path or PATH_UNSAFE (${RUNS} inputs)`, () => {
    const segment = fc.oneof(
      fc.constantFrom('', '.', '..', 'a', 'é', 'e\u0301', '\u202e', '\x00', '\\', 'CON', '.ferry', ' ', 'x'.repeat(300)),
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      fc.string({ unit: 'binary', maxLength: 6 }),
    );
    const path = fc.oneof(
      fc.array(segment, { minLength: 1, maxLength: 8 }).map((s) => s.join('/')),
      fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`),
      fc.string({ unit: 'binary', maxLength: 64 }),
      fc.anything({ maxDepth: 1 }),
    );
    fc.assert(
      fc.property(path, (p) => {
        if (parsesOrThrows(() => checkRelativePath(p), ['PATH_UNSAFE']) === undefined && typeof p === 'string') {
          // No exception, so the path passed: it must be relative, NFC, without empty/./.. segments.
          try {
            checkRelativePath(p);
          } catch {
            return;
          }
          assert.ok(!p.startsWith('/') && p.normalize('NFC') === p && p.length > 0);
          for (const s of p.split('/')) assert.ok(s !== '' && s !== '.' && s !== '..', JSON.stringify(p));
          assert.ok(!/[\x00-\x1f\x7f]/.test(p), JSON.stringify(p));
        }
      }),
      opts(),
    );
  });
});
