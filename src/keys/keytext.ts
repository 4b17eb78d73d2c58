// The printed form of a key: a prefix letter, then RFC 4648 base32 (no padding) of payload + checksum.

import { createHash } from 'node:crypto';
import { base32nopad } from '@scure/base';
import { FerryError } from '../errors.js';

/** The RFC 4648 base32 alphabet; key text uses nothing else (lowercase is accepted on input). */
export const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * Checksum = first 4 bytes of SHA-256 over the prefix letter (ASCII) and the payload.
 *
 * Why this detects typos: the body is decoded strictly (non-zero padding bits in the last character
 * count as a typo), so base32 is a bijection between body text and bytes, and any single-character
 * substitution or adjacent transposition of the text changes the prefix, the payload or the stored
 * checksum. A changed prefix or payload goes unnoticed only if its truncated SHA-256 collides,
 * probability 2^-32 per typo; a changed stored checksum alone is always noticed.
 */
export const CHECKSUM_BYTES = 4;

/** Number of base32 characters (no padding) that encode `bytes` bytes. */
export function base32Length(bytes: number): number {
  return Math.ceil((bytes * 8) / 5);
}

/** Total text length of a key whose payload has `payloadBytes` bytes. */
export function keyTextLength(payloadBytes: number): number {
  return 1 + base32Length(payloadBytes + CHECKSUM_BYTES);
}

function checksumOf(prefix: string, payload: Uint8Array): Buffer {
  return createHash('sha256').update(prefix, 'ascii').update(payload).digest().subarray(0, CHECKSUM_BYTES);
}

/** Prints `payload` as key text with the given one-letter prefix. */
export function encodeKeyText(prefix: string, payload: Uint8Array): string {
  if (prefix.length !== 1 || !KEY_ALPHABET.includes(prefix)) {
    throw new FerryError('INTERNAL', `key prefix must be one base32 letter, got ${JSON.stringify(prefix)}`);
  }
  return prefix + base32nopad.encode(Buffer.concat([payload, checksumOf(prefix, payload)]));
}

/** Describes one kind of key for the parser: its prefix, payload size and a name for messages. */
export interface KeyTextKind {
  prefix: string;
  payloadBytes: number;
  name: string;
}

const LOOKALIKES: Record<string, string> = { '0': 'O', '1': 'I or L', '8': 'B' };

function notFerry(detail: string): FerryError {
  return new FerryError('KEY_NOT_FERRY', `this is not a Ferry key: ${detail}`);
}

function describeCharacter(ch: string, position: number): string {
  if (/\s/.test(ch)) return `it contains a space or line break at position ${position} (a key is one unbroken word)`;
  const hint = LOOKALIKES[ch] ? ` (did you mean ${LOOKALIKES[ch]}?)` : '';
  return `character ${JSON.stringify(ch)} at position ${position} never appears in a key, which uses only letters A–Z and digits 2–7${hint}`;
}

/**
 * Decodes key text into prefix and payload, classifying every failure:
 * KEY_NOT_FERRY (empty, wrong alphabet, a length no key has), KEY_CHECKSUM (a typo in text of a
 * valid key length), KEY_UNKNOWN_TYPE (checksum fine, prefix unknown: a newer Ferry's key), and
 * KEY_INVALID (checksum fine, but the payload size does not match the prefix's kind).
 * Surrounding whitespace and lowercase are accepted.
 */
export function decodeKeyText(text: string, kinds: readonly KeyTextKind[]): { prefix: string; payload: Buffer } {
  if (typeof text !== 'string') throw notFerry('expected text');
  const trimmed = text.trim();
  if (trimmed.length === 0) throw notFerry('the text is empty');
  const upper = trimmed.toUpperCase();
  for (let i = 0; i < upper.length; i++) {
    if (!KEY_ALPHABET.includes(upper[i]!)) throw notFerry(describeCharacter(trimmed[i]!, i + 1));
  }

  const validLengths = [...new Set(kinds.map((kind) => keyTextLength(kind.payloadBytes)))].sort((a, b) => a - b);
  const lengthIsKnown = validLengths.includes(upper.length);
  const wrongLength = (): FerryError =>
    notFerry(
      `it has ${upper.length} character${upper.length === 1 ? '' : 's'}, but Ferry keys have ${validLengths.join(' or ')}; ` +
        'part of it may be missing or extra',
    );

  const prefix = upper[0]!;
  let body = upper.slice(1);
  // Base32 without padding never ends with 1, 3 or 6 characters of a final 8-character group.
  if (body.length === 0 || [1, 3, 6].includes(body.length % 8)) throw wrongLength();
  // The last character may carry unused low bits; the encoder writes zeros there, so ones mean a typo.
  const spareBits = (body.length * 5) % 8;
  const lastValue = KEY_ALPHABET.indexOf(body[body.length - 1]!);
  const spareBitsSet = (lastValue & ((1 << spareBits) - 1)) !== 0;
  if (spareBitsSet) body = body.slice(0, -1) + KEY_ALPHABET[lastValue & ~((1 << spareBits) - 1)];

  const bytes = Buffer.from(base32nopad.decode(body));
  if (bytes.length <= CHECKSUM_BYTES) throw wrongLength();
  const payload = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
  const stored = bytes.subarray(bytes.length - CHECKSUM_BYTES);
  const checksumOk = !spareBitsSet && stored.equals(checksumOf(prefix, payload));

  if (!checksumOk) {
    if (!lengthIsKnown) throw wrongLength();
    throw new FerryError(
      'KEY_CHECKSUM',
      'this key has a typo: checksum mismatch (a character is wrong or two are swapped); copy the key again',
    );
  }
  const kind = kinds.find((candidate) => candidate.prefix === prefix);
  if (!kind) {
    throw new FerryError(
      'KEY_UNKNOWN_TYPE',
      `unknown key type '${prefix}': known types are ${kinds.map((k) => `'${k.prefix}' (${k.name})`).join(', ')}; ` +
        'the key may come from a newer version of Ferry',
    );
  }
  if (payload.length !== kind.payloadBytes) {
    throw new FerryError(
      'KEY_INVALID',
      `this ${kind.name} key is malformed: it carries ${payload.length} bytes instead of ${kind.payloadBytes}`,
    );
  }
  return { prefix, payload: Buffer.from(payload) };
}
