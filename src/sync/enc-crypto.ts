// Encryption for encrypted (ENC) peers: deterministic per-block AES-256-GCM, SIV-style names and sealed records (docs/encryption.md).

import { createCipheriv, createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/** AES-GCM tag bytes appended to every encrypted block. */
export const BLOCK_TAG_BYTES = 16;
const NONCE_BYTES = 12;
const SIV_BYTES = 16;
const SALT = Buffer.from('ferry enc v1', 'utf8');

function derive(contentKey: Uint8Array, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', contentKey, SALT, Buffer.from(label, 'utf8'), 32));
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, no padding (file-name safe on case-insensitive file systems too). */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** The bytes of base32 text, or undefined when it is not canonical base32. */
export function fromBase32(text: string): Buffer | undefined {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    const digit = BASE32.indexOf(ch);
    if (digit < 0) return undefined;
    value = (value << 5) | digit;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
    value &= (1 << bits) - 1;
  }
  if (value !== 0 || bits >= 5) return undefined;
  return Buffer.from(out);
}

/** A deterministic SIV-style cipher: IV = HMAC(macKey, ad ‖ 0 ‖ plaintext)[:16], then AES-256-CTR; opening re-checks the IV. */
class Siv {
  constructor(
    private readonly macKey: Buffer,
    private readonly encKey: Buffer,
  ) {}

  private iv(ad: string, plain: Uint8Array): Buffer {
    return createHmac('sha256', this.macKey).update(ad).update('\0').update(plain).digest().subarray(0, SIV_BYTES);
  }

  seal(ad: string, plain: Uint8Array): Buffer {
    const iv = this.iv(ad, plain);
    const cipher = createCipheriv('aes-256-ctr', this.encKey, iv);
    return Buffer.concat([iv, cipher.update(plain), cipher.final()]);
  }

  open(ad: string, sealed: Uint8Array): Buffer | undefined {
    if (sealed.length < SIV_BYTES) return undefined;
    const iv = sealed.subarray(0, SIV_BYTES);
    const decipher = createDecipheriv('aes-256-ctr', this.encKey, iv);
    const plain = Buffer.concat([decipher.update(sealed.subarray(SIV_BYTES)), decipher.final()]);
    return timingSafeEqual(this.iv(ad, plain), iv) ? plain : undefined;
  }
}

/** Every key an RW or RO device uses towards ENC peers, derived from the folder's content key (itself from R). */
export class EncCrypto {
  private readonly blockKey: Buffer;
  private readonly names: Siv;
  private readonly records: Siv;

  constructor(contentKey: Uint8Array) {
    this.blockKey = derive(contentKey, 'block');
    this.names = new Siv(derive(contentKey, 'name mac'), derive(contentKey, 'name enc'));
    this.records = new Siv(derive(contentKey, 'record mac'), derive(contentKey, 'record enc'));
  }

  /** The GCM nonce of a block: a function of its plaintext hash, so identical blocks encrypt identically. */
  private nonce(plainHash: Uint8Array): Buffer {
    return createHmac('sha256', this.blockKey).update(plainHash).digest().subarray(0, NONCE_BYTES);
  }

  /** ciphertext ‖ tag (block length + 16). */
  encryptBlock(plainHash: Uint8Array, block: Uint8Array): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.blockKey, this.nonce(plainHash));
    cipher.setAAD(plainHash);
    return Buffer.concat([cipher.update(block), cipher.final(), cipher.getAuthTag()]);
  }

  /** The plaintext, or undefined when the ciphertext (or its tag) was altered. */
  decryptBlock(plainHash: Uint8Array, sealed: Uint8Array): Buffer | undefined {
    if (sealed.length < BLOCK_TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.blockKey, this.nonce(plainHash));
      decipher.setAAD(plainHash);
      decipher.setAuthTag(sealed.subarray(sealed.length - BLOCK_TAG_BYTES));
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - BLOCK_TAG_BYTES)), decipher.final()]);
    } catch {
      return undefined;
    }
  }

  /**
   * A path with each segment encrypted (bound to its plaintext parent), so the tree keeps its shape:
   * segment → base32(SIV(parent path, name)). Deterministic: the same path always maps to the same name.
   */
  encryptPath(path: string): string {
    const out: string[] = [];
    let parent = '';
    for (const segment of path.split('/')) {
      out.push(base32(this.names.seal(parent, Buffer.from(segment, 'utf8'))));
      parent = parent === '' ? segment : `${parent}/${segment}`;
    }
    return out.join('/');
  }

  /** The plaintext path, or undefined when some segment is not one of ours. */
  decryptPath(encPath: string): string | undefined {
    let parent = '';
    for (const segment of encPath.split('/')) {
      const bytes = fromBase32(segment);
      const plain = bytes && this.names.open(parent, bytes);
      if (!plain) return undefined;
      const name = plain.toString('utf8');
      parent = parent === '' ? name : `${parent}/${name}`;
    }
    return parent;
  }

  sealRecord(encPath: string, body: Uint8Array): Buffer {
    return this.records.seal(encPath, body);
  }

  openRecord(encPath: string, sealed: Uint8Array): Buffer | undefined {
    return this.records.open(encPath, sealed);
  }

  /** An opaque, stable stand-in for a symlink target on ENC disks (the real one is in the sealed record). */
  linkStandIn(target: string): string {
    return `x${base32(createHmac('sha256', this.blockKey).update('link\0').update(target).digest().subarray(0, 10))}`;
  }
}
