// One-way key derivations (HKDF-SHA256 with fixed labels) and raw Ed25519 key import for folder keys.

import { createHash, createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto';

/** Length of every secret and derived key, in bytes. */
export const SECRET_BYTES = 32;
/** Length of an Ed25519 public key, in bytes. */
export const VERIFY_KEY_BYTES = 32;
/** Length of a folder ID, in bytes (a BitTorrent info-hash). */
export const FOLDER_ID_BYTES = 20;

/**
 * HKDF salt shared by every folder-key derivation. Changing it (or any label below) changes every
 * folder's keys and IDs, so it is part of the key format and pinned by the known-answer test.
 */
const HKDF_SALT = Buffer.from('ferry capability keys v1', 'utf8');

/** HKDF info labels. Each names what it derives; never reuse one for a second purpose. */
export const LABEL = {
  readSecret: 'ro', // R = HKDF(S, "ro")
  encSecret: 'enc', // N = HKDF(R, "enc")
  signingSeed: 'sign', // Ed25519 seed = HKDF(S, "sign")
  proofRo: 'proof ro', // MAC key for handshake proofs at RO level, from R
  proofEnc: 'proof enc', // MAC key for handshake proofs at ENC level, from N
  content: 'content', // content encryption key for ENC peers, from R
} as const;

const FOLDER_ID_DOMAIN = Buffer.from('ferry folder id\0', 'utf8');

/** Derives a 32-byte key from `ikm` for one purpose; one-way, so `ikm` cannot be recovered. */
export function hkdf32(ikm: Uint8Array, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, HKDF_SALT, Buffer.from(label, 'utf8'), SECRET_BYTES));
}

/** Folder ID = first 20 bytes of SHA-256 over the ENC material (N and the verify key), domain-separated. */
export function folderIdOf(encSecret: Uint8Array, verifyKey: Uint8Array): Buffer {
  return createHash('sha256')
    .update(FOLDER_ID_DOMAIN)
    .update(encSecret)
    .update(verifyKey)
    .digest()
    .subarray(0, FOLDER_ID_BYTES);
}

// DER prefixes that wrap a raw 32-byte Ed25519 seed (PKCS#8) or public key (SPKI), RFC 8410.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The Ed25519 private key whose 32-byte seed is `seed`. */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

/** The Ed25519 public key with raw encoding `raw` (32 bytes). */
export function ed25519PublicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The raw 32-byte encoding of an Ed25519 public key. */
export function rawEd25519PublicKey(key: KeyObject): Buffer {
  const spki = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(spki.subarray(spki.length - VERIFY_KEY_BYTES));
}
