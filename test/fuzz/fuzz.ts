// Shared pieces of the fuzz targets: how many inputs each gets, byte mutations of valid inputs, and the contract check.
//
// FUZZ_RUNS sets the inputs per property (small by default, so that `make test` stays quick; `make fuzz` raises it).

import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isFerryError, type ErrorCode } from '../../src/errors.js';

export const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS) || 250);

/** fc.assert options: RUNS inputs, and a fixed seed when FUZZ_SEED is set (to replay a failure). */
export function opts<T>(numRuns = RUNS): fc.Parameters<T> {
  return { numRuns, includeErrorInReport: true, ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}) };
}

type Op =
  | { k: 'flip'; at: number; bit: number }
  | { k: 'byte'; at: number; v: number }
  | { k: 'truncate'; at: number }
  | { k: 'u16'; at: number; v: number }
  | { k: 'u32'; at: number; v: number }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; n: number };

const at = fc.nat({ max: 1 << 20 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('flip' as const), at, bit: fc.nat({ max: 7 }) }),
  fc.record({ k: fc.constant('byte' as const), at, v: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0xc0, 0xdc, 0xdd, 0xde, 0xdf) }),
  fc.record({ k: fc.constant('truncate' as const), at }),
  fc.record({ k: fc.constant('u16' as const), at, v: fc.constantFrom(0, 1, 2, 0x7fff, 0x8000, 0xffff) }),
  fc.record({ k: fc.constant('u32' as const), at, v: fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x1000000) }),
  fc.record({ k: fc.constant('insert' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ k: fc.constant('delete' as const), at, n: fc.integer({ min: 1, max: 8 }) }),
);

/** Applies bit flips, byte sets, truncations, length-field (u16/u32) edits, insertions and deletions to a copy. */
export function mutate(input: Uint8Array, ops: readonly Op[]): Buffer {
  let b = Buffer.from(input);
  for (const o of ops) {
    const i = b.length === 0 ? 0 : o.at % b.length;
    switch (o.k) {
      case 'flip':
        if (b.length) b[i]! ^= 1 << o.bit;
        break;
      case 'byte':
        if (b.length) b[i] = o.v;
        break;
      case 'truncate':
        b = b.subarray(0, o.at % (b.length + 1));
        break;
      case 'u16':
        if (b.length >= 2) b.writeUInt16BE(o.v, o.at % (b.length - 1));
        break;
      case 'u32':
        if (b.length >= 4) b.writeUInt32BE(o.v, o.at % (b.length - 3));
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, i), o.bytes, b.subarray(i)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, i), b.subarray(i + o.n)]);
        break;
    }
  }
  return b;
}

/** Mutants of the valid inputs `valid` yields (1–4 edits each). */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Buffer> {
  return fc.tuple(valid, fc.array(op, { minLength: 1, maxLength: 4 })).map(([b, ops]) => mutate(b, ops));
}

/** What a target feeds: valid inputs, their mutants (most), and random bytes. */
export function inputs(valid: fc.Arbitrary<Uint8Array>, maxRandom = 512): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { arbitrary: valid.map((b) => Buffer.from(b)), weight: 1 },
    { arbitrary: mutated(valid), weight: 6 },
    { arbitrary: fc.uint8Array({ maxLength: maxRandom }).map((b) => Buffer.from(b)), weight: 2 },
  );
}

/** Character-level mutants of valid text: substitutions, insertions, deletions, truncations. */
export function mutatedText(valid: fc.Arbitrary<string>, alphabet: fc.Arbitrary<string> = fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })): fc.Arbitrary<string> {
  const edit = fc.record({ at: fc.nat({ max: 1 << 20 }), kind: fc.constantFrom('replace', 'insert', 'delete', 'truncate'), text: alphabet });
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([s, edits]) => {
    for (const e of edits) {
      const i = e.at % (s.length + 1);
      if (e.kind === 'replace') s = s.slice(0, i) + e.text + s.slice(i + 1);
      else if (e.kind === 'insert') s = s.slice(0, i) + e.text + s.slice(i);
      else if (e.kind === 'delete') s = s.slice(0, i) + s.slice(i + e.text.length);
      else s = s.slice(0, i);
    }
    return s;
  });
}

/**
 * The parser contract: `parse()` returns, or throws a FerryError with one of `codes`. Any other
 * exception fails the property (fast-check then shrinks and prints the input).
 */
export function parsesOrThrows<T>(parse: () => T, codes: readonly ErrorCode[]): T | undefined {
  try {
    return parse();
  } catch (err) {
    if (isFerryError(err) && codes.includes(err.code)) return undefined;
    assert.fail(`expected a value or FerryError ${codes.join('/')}, got ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`);
  }
}

/** For parsers documented never to throw. */
export function neverThrows<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    assert.fail(`the parser must not throw, got ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`);
  }
}
