// A folder's capability keys (RW, RO, ENC): one-way derivation, text form, folder signing and proof keys.

import { createHash, createPublicKey, randomBytes, sign as ed25519Sign, verify as ed25519Verify, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { FerryError } from '../errors.js';
import { accessAtLeast, type Access } from './types.js';
import {
  LABEL,
  SECRET_BYTES,
  VERIFY_KEY_BYTES,
  ed25519PrivateKeyFromSeed,
  ed25519PublicKeyFromRaw,
  folderIdOf,
  hkdf32,
  rawEd25519PublicKey,
} from './derive.js';
import { decodeKeyText, encodeKeyText, type KeyTextKind } from './keytext.js';

/**
 * Text form of each level. The prefix letter names both the kind and the payload layout, so a
 * future layout gets a new letter (older Ferry versions then say KEY_UNKNOWN_TYPE):
 *   A (RW):  S (32)
 *   B (RO):  R (32) | verify key (32)
 *   E (ENC): N (32) | verify key (32)
 */
const KEY_KINDS: Record<Access, KeyTextKind> = {
  rw: { prefix: 'A', payloadBytes: SECRET_BYTES, name: 'read-write' },
  ro: { prefix: 'B', payloadBytes: SECRET_BYTES + VERIFY_KEY_BYTES, name: 'read-only' },
  enc: { prefix: 'E', payloadBytes: SECRET_BYTES + VERIFY_KEY_BYTES, name: 'encrypted' },
};
const ALL_KINDS = Object.values(KEY_KINDS);

/** Ed25519 signatures are 64 bytes. */
export const SIGNATURE_BYTES = 64;

const ACCESS_NAMES: Record<Access, string> = { rw: 'read-write', ro: 'read-only', enc: 'encrypted' };
const A_KEY_OF: Record<Access, string> = { rw: 'a read-write key', ro: 'a read-only key', enc: 'an encrypted key' };

/**
 * What a grantee holds besides the ENC material (src/keys/grants.ts makes it from an invite): the
 * signed grant and the private grant key. Never S or R.
 */
export interface GrantCredential {
  readonly level: 'ro' | 'rw';
  readonly idHex: string;
  readonly expiresAtMs: number;
  /** The signed grant, as sent in handshakes. */
  readonly bytes: Buffer;
  /** The invite text (what `format()` prints and the daemon stores). */
  readonly text: string;
  /** Ed25519 signature by the grant key (handshake grant proofs). */
  signWithGrantKey(data: Uint8Array): Buffer;
  /** A record signature under the grant: grant ID ‖ signature by the grant key. */
  signRecord(data: Uint8Array): Buffer;
}

interface KeyMaterial {
  access: Access;
  grant?: GrantCredential;
  secret?: Buffer;
  readSecret?: Buffer;
  encSecret: Buffer;
  verifyKey: Buffer;
  signingKey?: KeyObject;
}

function needAccess(have: Access, want: Access, what: string): void {
  if (!accessAtLeast(have, want)) {
    throw new FerryError(
      'KEY_ACCESS',
      `${what} needs ${want === 'rw' ? A_KEY_OF.rw : `at least ${A_KEY_OF[want]}`}, but this is ${A_KEY_OF[have]}`,
    );
  }
}

/** Signatures remembered per folder as known good (~100 bytes each). */
const KNOWN_SIGNATURES = 32_768;

/** 128 bits of SHA-256 over the signed data and its signature: equal only for the same pair. */
function signatureDigest(data: Uint8Array, signature: Uint8Array): string {
  return createHash('sha256').update(data).update(signature).digest().subarray(0, 16).toString('base64');
}

/**
 * The keys of one shared folder at one access level. Weaker material is derived from stronger
 * material only (S → R → N, S → signing key), so a weaker key never yields a stronger one.
 * Buffers handed out are the object's own: treat them as read-only.
 */
export class FolderKeys {
  readonly access: Access;
  /** First 20 bytes of SHA-256 over N and the verify key; equal for the folder's three keys. */
  readonly folderId: Buffer;
  readonly folderIdHex: string;
  /** The folder's Ed25519 public key (raw, 32 bytes). */
  readonly verifyKey: Buffer;
  /** S: the read-write secret (RW only). */
  readonly secret?: Buffer;
  /** R = HKDF(S, "ro") (RW and RO). */
  readonly readSecret?: Buffer;
  /** N = HKDF(R, "enc") (every level). */
  readonly encSecret: Buffer;
  /** Keys from an invite: the grant that gives `access` (the material is ENC only). */
  readonly grant?: GrantCredential;
  readonly #signingKey?: KeyObject;
  readonly #verifyKeyObject: KeyObject;
  /**
   * Digests of (data, folder signature) pairs made or verified by these keys. Peers echo every
   * record back when they adopt it, and an Ed25519 verification costs ~150 µs: a folder of 20,000
   * files spent seconds re-verifying its own signatures. Bounded; oldest forgotten first.
   */
  readonly #knownSignatures = new Set<string>();

  private constructor(material: KeyMaterial) {
    this.access = material.access;
    this.grant = material.grant;
    this.secret = material.secret;
    this.readSecret = material.readSecret;
    this.encSecret = material.encSecret;
    this.verifyKey = material.verifyKey;
    this.#signingKey = material.signingKey;
    this.#verifyKeyObject = ed25519PublicKeyFromRaw(material.verifyKey);
    this.folderId = folderIdOf(this.encSecret, this.verifyKey);
    this.folderIdHex = this.folderId.toString('hex');
  }

  /** A new read-write folder with a fresh random secret. */
  static generate(): FolderKeys {
    return FolderKeys.fromSecret(randomBytes(SECRET_BYTES));
  }

  /** The read-write keys of the folder whose secret is `s` (32 bytes). */
  static fromSecret(s: Uint8Array): FolderKeys {
    if (s.length !== SECRET_BYTES) {
      throw new FerryError('KEY_INVALID', `a folder secret is ${SECRET_BYTES} bytes, got ${s.length}`);
    }
    const secret = Buffer.from(s);
    const readSecret = hkdf32(secret, LABEL.readSecret);
    const signingKey = ed25519PrivateKeyFromSeed(hkdf32(secret, LABEL.signingSeed));
    return new FolderKeys({
      access: 'rw',
      secret,
      readSecret,
      encSecret: hkdf32(readSecret, LABEL.encSecret),
      verifyKey: rawEd25519PublicKey(createPublicKey(signingKey)),
      signingKey,
    });
  }

  /** Parses key text of any level; throws KEY_NOT_FERRY, KEY_CHECKSUM, KEY_UNKNOWN_TYPE or KEY_INVALID. */
  static parse(text: string): FolderKeys {
    const { prefix, payload } = decodeKeyText(text, ALL_KINDS);
    const access = (Object.keys(KEY_KINDS) as Access[]).find((level) => KEY_KINDS[level].prefix === prefix)!;
    if (access === 'rw') return FolderKeys.fromSecret(payload);
    const material = payload.subarray(0, SECRET_BYTES);
    const verifyKey = payload.subarray(SECRET_BYTES);
    try {
      ed25519PublicKeyFromRaw(verifyKey);
    } catch (err) {
      throw new FerryError('KEY_INVALID', `this ${ACCESS_NAMES[access]} key carries an unusable verify key`, {
        cause: err,
      });
    }
    if (access === 'ro') {
      const readSecret = Buffer.from(material);
      return new FolderKeys({
        access,
        readSecret,
        encSecret: hkdf32(readSecret, LABEL.encSecret),
        verifyKey: Buffer.from(verifyKey),
      });
    }
    return new FolderKeys({ access, encSecret: Buffer.from(material), verifyKey: Buffer.from(verifyKey) });
  }

  /** A grantee's keys: the ENC material of `enc` at the grant's level (use grants.ts parseInvite). */
  static granted(enc: FolderKeys, grant: GrantCredential): FolderKeys {
    if (enc.access !== 'enc') throw new FerryError('INTERNAL', 'granted keys are built on ENC material only');
    return new FolderKeys({ access: grant.level, grant, encSecret: enc.encSecret, verifyKey: enc.verifyKey });
  }

  /** The key text at `access` (default: this key's own level); KEY_ACCESS if that is stronger than held. */
  format(access: Access = this.access): string {
    needAccess(this.access, access, `printing the ${ACCESS_NAMES[access]} key`);
    if (this.grant && access !== 'enc') {
      if (access === this.access) return this.grant.text;
      throw new FerryError('KEY_ACCESS', `a grantee holds an invite, not ${A_KEY_OF[access]}`);
    }
    const kind = KEY_KINDS[access];
    switch (access) {
      case 'rw':
        return encodeKeyText(kind.prefix, this.secret!);
      case 'ro':
        return encodeKeyText(kind.prefix, Buffer.concat([this.readSecret!, this.verifyKey]));
      case 'enc':
        return encodeKeyText(kind.prefix, Buffer.concat([this.encSecret, this.verifyKey]));
    }
  }

  /** The same folder's keys at a weaker (or equal) level; the result holds no stronger material. */
  weaken(access: Access): FolderKeys {
    needAccess(this.access, access, `making ${A_KEY_OF[access]}`);
    if (access === this.access) return this;
    if (this.grant && access !== 'enc') throw new FerryError('KEY_ACCESS', `a grantee holds an invite, not ${A_KEY_OF[access]}`);
    return new FolderKeys({
      access,
      readSecret: access === 'ro' ? this.readSecret : undefined,
      encSecret: this.encSecret,
      verifyKey: this.verifyKey,
    });
  }

  /** True for RW keys and RW grantees: they sign the records they publish. */
  get canSign(): boolean {
    return this.#signingKey !== undefined || this.grant?.level === 'rw';
  }

  /** True only for the RW key itself: it signs grants, revocations and handshake RW proofs. */
  get holdsFolderKey(): boolean {
    return this.#signingKey !== undefined;
  }

  /**
   * A record signature: Ed25519 (64 bytes) by the folder signing key, or for an RW grantee grant
   * ID ‖ signature by the grant key (80 bytes), which peers accept while the grant is valid.
   * KEY_ACCESS for RO and ENC keys.
   */
  sign(data: Uint8Array): Buffer {
    const signingKey = this.#signingKey;
    if (signingKey) {
      const signature = ed25519Sign(null, data, signingKey);
      this.#remember(data, signature);
      return signature;
    }
    if (this.grant?.level === 'rw') return this.grant.signRecord(data);
    throw new FerryError('KEY_ACCESS', `signing needs ${A_KEY_OF.rw}, but this is ${A_KEY_OF[this.access]}`);
  }

  /** Whether `signature` is the folder's signature over `data`; works at every level. */
  verify(data: Uint8Array, signature: Uint8Array): boolean {
    const digest = this.#undecided(data, signature);
    if (typeof digest === 'boolean') return digest;
    let valid: boolean;
    try {
      valid = ed25519Verify(null, data, this.#verifyKeyObject, signature);
    } catch {
      return false;
    }
    if (valid) this.#remember(data, signature, digest);
    return valid;
  }

  /**
   * verify() in the thread pool: a peer's index arrives a thousand records at a time, and checking
   * them on the event loop (~150 µs each) stalled every transfer for the length of the batch.
   */
  verifyAsync(data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const digest = this.#undecided(data, signature);
    if (typeof digest === 'boolean') return Promise.resolve(digest);
    return new Promise((resolve) => {
      try {
        ed25519Verify(null, data, this.#verifyKeyObject, signature, (err, valid) => {
          if (!err && valid) this.#remember(data, signature, digest);
          resolve(!err && valid);
        });
      } catch {
        resolve(false);
      }
    });
  }

  /** false for a malformed signature, true for a remembered pair, else the pair's digest: it needs checking. */
  #undecided(data: Uint8Array, signature: Uint8Array): boolean | string {
    if (signature.length !== SIGNATURE_BYTES) return false;
    const digest = signatureDigest(data, signature);
    return this.#knownSignatures.has(digest) || digest;
  }

  #remember(data: Uint8Array, signature: Uint8Array, digest = signatureDigest(data, signature)): void {
    this.#knownSignatures.add(digest);
    if (this.#knownSignatures.size > KNOWN_SIGNATURES) this.#knownSignatures.delete(this.#knownSignatures.values().next().value!);
  }

  /**
   * 32-byte MAC key for handshake proofs of possession at `level`: HKDF(R, "proof ro") or
   * HKDF(N, "proof enc"). KEY_ACCESS if this key is weaker than `level`.
   */
  proofKey(level: 'ro' | 'enc'): Buffer {
    needAccess(this.access, level, `a ${ACCESS_NAMES[level]} proof`);
    if (level === 'ro' && !this.readSecret) throw new FerryError('KEY_ACCESS', 'a grantee holds no read-only material');
    return level === 'ro' ? hkdf32(this.readSecret!, LABEL.proofRo) : hkdf32(this.encSecret, LABEL.proofEnc);
  }

  /** 32-byte key for encrypting content stored at ENC peers, derived from R; KEY_ACCESS for ENC keys. */
  contentKey(): Buffer {
    needAccess(this.access, 'ro', 'the content key');
    if (!this.readSecret) throw new FerryError('KEY_ACCESS', 'a grantee holds no read-only material');
    return hkdf32(this.readSecret!, LABEL.content);
  }

  /** Never serialises secrets: logs and JSON see the folder ID and level only. */
  toJSON(): { folderId: string; access: Access; grant?: string } {
    return { folderId: this.folderIdHex, access: this.access, ...(this.grant ? { grant: this.grant.idHex } : {}) };
  }

  [inspect.custom](): string {
    return `FolderKeys { folderId: ${this.folderIdHex}, access: ${this.access}${this.grant ? `, grant: ${this.grant.idHex}` : ''} }`;
  }
}
