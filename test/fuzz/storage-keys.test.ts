// Fuzz targets for the stored index record (a tuple read back from LMDB) and for key text pasted by a user or sent in
// an invite. Contract: a valid value, or FerryError INDEX_CORRUPT / KEY_*.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { decodeRecord, decodeStat, encodeRecord } from '../../src/index/record-codec.js';
import { FerryError } from '../../src/errors.js';
import type { FileRecord } from '../../src/index/records.js';
import { FolderKeys } from '../../src/keys/index.js';
import { decodeKeyText, encodeKeyText, KEY_ALPHABET, type KeyTextKind } from '../../src/keys/keytext.js';
import { mutatedText, opts, parsesOrThrows, RUNS } from './fuzz.js';

const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const fileRecord: fc.Arbitrary<FileRecord> = fc
  .record({
    path: fc.oneof(fc.constantFrom('a', 'dir/file.txt', '__proto__', 'x/'.repeat(300) + 'long'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 })),
    type: fc.constantFrom('file' as const, 'dir' as const, 'symlink' as const),
    size: fc.nat(),
    mode: fc.nat({ max: 0o7777 }),
    mtimeMs: fc.double({ min: 0, max: 4e12, noNaN: true }),
    inode: fc.nat(),
    version: fc.dictionary(fc.stringMatching(/^[A-Z2-7]{12}$/), fc.nat(), { maxKeys: 3 }),
    modifiedBy: fc.stringMatching(/^[A-Z2-7]{12}$/),
    blockSize: fc.constantFrom(131072, 1 << 20),
    blocks: fc.array(bytes32, { maxLength: 3 }),
    deleted: fc.boolean(),
    sequence: fc.nat(),
    linkTarget: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
    signature: fc.option(fc.uint8Array({ minLength: 64, maxLength: 64 }), { nil: undefined }),
    sealed: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
  })
  .map((r) => {
    const out = { ...r, version: { ...r.version } } as FileRecord;
    for (const key of ['linkTarget', 'signature', 'sealed'] as const) if (out[key] === undefined) delete out[key];
    return out;
  });

/** A record as decodeRecord promises it: the fields of FileRecord with their types. */
function assertRecordShape(r: FileRecord, path: string): void {
  assert.equal(r.path, path);
  assert.ok(['file', 'dir', 'symlink'].includes(r.type));
  for (const n of [r.size, r.mode, r.mtimeMs, r.inode, r.blockSize, r.sequence]) assert.equal(typeof n, 'number', JSON.stringify(r));
  assert.equal(typeof r.modifiedBy, 'string');
  assert.ok(typeof r.version === 'object' && r.version !== null);
  assert.ok(r.blocks.every((b) => b instanceof Uint8Array));
  assert.equal(typeof r.deleted, 'boolean');
}

describe('fuzz: stored records and key text', () => {
  test(`record codec: encode → decode is the identity; damaged tuples decode or fail with INDEX_CORRUPT (${RUNS} inputs)`, () => {
    fc.assert(
      fc.property(fileRecord, (r) => {
        const stored = encodeRecord(r);
        const back = decodeRecord(r.path, structuredClone(stored));
        assert.deepEqual(
          { ...back, blocks: back.blocks.map((b) => Buffer.from(b)), signature: back.signature && Buffer.from(back.signature), sealed: back.sealed && Buffer.from(back.sealed) },
          { ...r, blocks: r.blocks.map((b) => Buffer.from(b)), signature: r.signature && Buffer.from(r.signature), sealed: r.sealed && Buffer.from(r.sealed) },
        );
      }),
      opts(),
    );
    const damaged = fc.tuple(fileRecord, fc.nat(), fc.anything({ maxDepth: 2, withTypedArray: true }), fc.constantFrom('swap', 'drop', 'add', 'whole')).map(([r, i, value, how]) => {
      const stored = encodeRecord(r) as unknown[];
      if (how === 'swap') stored[i % stored.length] = value;
      else if (how === 'drop') stored.splice(i % stored.length, 1);
      else if (how === 'add') stored.push(value);
      return { path: r.path, stored: how === 'whole' ? value : stored };
    });
    fc.assert(
      fc.property(damaged, ({ path, stored }) => {
        const r = parsesOrThrows(() => decodeRecord(path, stored), ['INDEX_CORRUPT']);
        if (r) assertRecordShape(r, path);
        parsesOrThrows(() => decodeStat(path, stored), ['INDEX_CORRUPT']);
      }),
      opts(),
    );
  });

  test('a stored type code that is an object with a hostile toString is INDEX_CORRUPT, not a TypeError (fast-check seed 1935840433)', () => {
    const stored: unknown[] = [{ toString: 0 }, 0, 0, 0, 0, {}, '2222AA2222AA', 131072, [], false, 0, null, null, Uint8Array.from([])];
    for (const decode of [decodeRecord, decodeStat]) {
      assert.throws(() => decode(' ', stored), (err: unknown) => err instanceof FerryError && err.code === 'INDEX_CORRUPT' && /unknown type object/.test(err.message));
    }
  });

  const kinds: KeyTextKind[] = [
    { prefix: 'A', payloadBytes: 32, name: 'read-write' },
    { prefix: 'B', payloadBytes: 64, name: 'read-only' },
  ];
  const keyText = fc.tuple(fc.constantFrom(...kinds), fc.uint8Array({ minLength: 64, maxLength: 64 })).map(([k, p]) => encodeKeyText(k.prefix, p.subarray(0, k.payloadBytes)));
  const keyChar = fc.oneof(fc.constantFrom(...KEY_ALPHABET, '0', '1', '8', ' ', '\n', 'a', 'é', '-'), fc.string({ unit: 'binary', minLength: 1, maxLength: 2 }));
  const KEY_CODES = ['KEY_NOT_FERRY', 'KEY_CHECKSUM', 'KEY_UNKNOWN_TYPE', 'KEY_INVALID'] as const;

  test(`key text: encode → decode is the identity; typos, cuts and junk give a KEY_* error (${RUNS} inputs)`, () => {
    fc.assert(
      fc.property(fc.constantFrom(...kinds), fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.boolean(), (kind, raw, lower) => {
        const payload = Buffer.from(raw.subarray(0, kind.payloadBytes));
        const text = encodeKeyText(kind.prefix, payload);
        assert.deepEqual(decodeKeyText(lower ? ` ${text.toLowerCase()}\n` : text, kinds), { prefix: kind.prefix, payload });
      }),
      opts(),
    );
    fc.assert(
      fc.property(fc.oneof(mutatedText(keyText, keyChar), fc.string({ unit: 'binary', maxLength: 120 })), (text) => {
        const got = parsesOrThrows(() => decodeKeyText(text, kinds), KEY_CODES);
        if (got) assert.equal(got.payload.length, kinds.find((k) => k.prefix === got.prefix)!.payloadBytes);
      }),
      opts(),
    );
  });

  test(`FolderKeys.parse: mutated real keys of every level give keys or a KEY_* error (${Math.ceil(RUNS / 10)} inputs)`, () => {
    const keys = FolderKeys.generate();
    const texts = (['rw', 'ro', 'enc'] as const).map((a) => keys.format(a));
    fc.assert(
      fc.property(mutatedText(fc.constantFrom(...texts), keyChar), (text) => {
        const parsed = parsesOrThrows(() => FolderKeys.parse(text), KEY_CODES);
        if (parsed) assert.ok(['rw', 'ro', 'enc'].includes(parsed.access));
      }),
      opts(Math.ceil(RUNS / 10)),
    );
  });
});
