// Expiring grants: signed grants and revocations, invites that carry them, record signatures by RW grantees, the per-folder grant book.

import { createPublicKey, randomBytes, sign as ed25519Sign, verify as ed25519Verify, type KeyObject } from 'node:crypto';
import { base32nopad } from '@scure/base';
import { FerryError } from '../errors.js';
import { FolderKeys, SIGNATURE_BYTES, type GrantCredential } from './capability.js';
import { FOLDER_ID_BYTES, SECRET_BYTES, VERIFY_KEY_BYTES, ed25519PrivateKeyFromSeed, ed25519PublicKeyFromRaw, rawEd25519PublicKey } from './derive.js';
import { isDeviceId } from './device.js';
import { decodeKeyText, encodeKeyText } from './keytext.js';

/** Levels a grant can give. */
export type GrantLevel = 'ro' | 'rw';

export const GRANT_ID_BYTES = 16;
const GRANT_FORMAT = 1;
const LEVEL_CODES: Record<GrantLevel, number> = { ro: 1, rw: 2 };
const DEVICE_HASH_BYTES = 32;
/** format | id | folder ID | level | expiresAtMs (u64) | grant key | device flag | device hash */
const GRANT_BODY_BYTES = 1 + GRANT_ID_BYTES + FOLDER_ID_BYTES + 1 + 8 + VERIFY_KEY_BYTES + 1 + DEVICE_HASH_BYTES;
/** A signed grant on the wire and in invites: body ‖ folder signature. */
export const GRANT_BYTES = GRANT_BODY_BYTES + SIGNATURE_BYTES;
/** format | grant ID | folder ID | revokedAtMs (u64) */
const REVOCATION_BODY_BYTES = 1 + GRANT_ID_BYTES + FOLDER_ID_BYTES + 8;
export const REVOCATION_BYTES = REVOCATION_BODY_BYTES + SIGNATURE_BYTES;
/** A record signature made under a grant: grant ID ‖ Ed25519 signature by the grant key. */
export const GRANT_SIGNATURE_BYTES = GRANT_ID_BYTES + SIGNATURE_BYTES;
/** Grants (and revocations) a folder's book keeps; the oldest expired ones go first. */
export const MAX_BOOK_ENTRIES = 1024;

const GRANT_LABEL = Buffer.from('ferry/grant/v1\0');
const REVOCATION_LABEL = Buffer.from('ferry/revocation/v1\0');
/** Invite text: 'G' ‖ base32(N ‖ verify key ‖ grant key seed ‖ signed grant ‖ checksum). */
const INVITE_KIND = { prefix: 'G', payloadBytes: SECRET_BYTES + VERIFY_KEY_BYTES + SECRET_BYTES + GRANT_BYTES, name: 'invite' };

/** A signed grant: the folder's RW holder lets a grantee (one device, or whoever holds the invite) in until `expiresAtMs`. */
export interface Grant {
  id: Buffer;
  idHex: string;
  folderId: Buffer;
  level: GrantLevel;
  expiresAtMs: number;
  /** Raw Ed25519 public key whose private half is in the invite; the grantee proves and signs with it. */
  grantKey: Buffer;
  /** Bound to this device ID, or undefined for a bearer grant. */
  device?: string;
  /** The signed grant, as sent and stored. */
  bytes: Buffer;
}

/** A revocation signed with the folder key: the grant is refused from now on, by every peer that learns of it. */
export interface Revocation {
  grantId: Buffer;
  grantIdHex: string;
  folderId: Buffer;
  revokedAtMs: number;
  bytes: Buffer;
}

function writeU64(value: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(value));
  return out;
}

function readU64(bytes: Buffer, offset: number, what: string): number {
  const value = bytes.readBigUInt64BE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new FerryError('KEY_INVALID', `${what}: time out of range`);
  return Number(value);
}

function folderSigner(keys: FolderKeys, what: string): FolderKeys {
  if (keys.grant || !keys.canSign) {
    throw new FerryError('KEY_ACCESS', `${what} needs the folder's read-write key (a grantee cannot do it)`);
  }
  return keys;
}

/** Issues a grant signed with the folder key, and the invite text that hands it to the grantee. */
export function issueGrant(
  keys: FolderKeys,
  options: { level: GrantLevel; expiresAtMs: number; device?: string },
): { grant: Grant; invite: string } {
  folderSigner(keys, 'issuing a grant');
  if (!Number.isSafeInteger(options.expiresAtMs) || options.expiresAtMs <= 0) {
    throw new FerryError('USAGE', 'a grant needs an expiry time in the future');
  }
  if (options.device !== undefined && !isDeviceId(options.device)) {
    throw new FerryError('USAGE', `not a device ID: ${JSON.stringify(options.device)}`);
  }
  const seed = randomBytes(SECRET_BYTES);
  const grantKey = rawEd25519PublicKey(createPublicKey(ed25519PrivateKeyFromSeed(seed)));
  const deviceHash = options.device ? Buffer.from(base32nopad.decode(options.device)) : Buffer.alloc(DEVICE_HASH_BYTES);
  const body = Buffer.concat([
    Buffer.of(GRANT_FORMAT),
    randomBytes(GRANT_ID_BYTES),
    keys.folderId,
    Buffer.of(LEVEL_CODES[options.level]),
    writeU64(options.expiresAtMs),
    grantKey,
    Buffer.of(options.device ? 1 : 0),
    deviceHash,
  ]);
  const bytes = Buffer.concat([body, keys.sign(Buffer.concat([GRANT_LABEL, body]))]);
  const grant = decodeGrant(bytes);
  const invite = encodeKeyText(INVITE_KIND.prefix, Buffer.concat([keys.encSecret, keys.verifyKey, seed, bytes]));
  return { grant, invite };
}

/** Parses a signed grant's layout (not its signature: see verifyGrant). KEY_INVALID when malformed. */
export function decodeGrant(bytes: Uint8Array): Grant {
  const b = Buffer.from(bytes);
  if (b.length !== GRANT_BYTES || b[0] !== GRANT_FORMAT) throw new FerryError('KEY_INVALID', 'malformed grant');
  let at = 1;
  const take = (n: number): Buffer => b.subarray(at, (at += n));
  const id = take(GRANT_ID_BYTES);
  const folderId = take(FOLDER_ID_BYTES);
  const levelCode = take(1)[0];
  const level = (Object.keys(LEVEL_CODES) as GrantLevel[]).find((l) => LEVEL_CODES[l] === levelCode);
  if (!level) throw new FerryError('KEY_INVALID', 'grant names an unknown access level');
  const expiresAtMs = readU64(b, at, 'grant');
  at += 8;
  const grantKey = take(VERIFY_KEY_BYTES);
  const deviceFlag = take(1)[0];
  const deviceHash = take(DEVICE_HASH_BYTES);
  if (deviceFlag !== 0 && deviceFlag !== 1) throw new FerryError('KEY_INVALID', 'malformed grant device');
  const grant: Grant = { id, idHex: id.toString('hex'), folderId, level, expiresAtMs, grantKey, bytes: b };
  if (deviceFlag === 1) grant.device = base32nopad.encode(deviceHash);
  return grant;
}

/** Whether the folder key signed this grant for this folder. */
export function grantSignedBy(keys: FolderKeys, grant: Grant): boolean {
  if (!grant.folderId.equals(keys.folderId)) return false;
  return keys.verify(Buffer.concat([GRANT_LABEL, grant.bytes.subarray(0, GRANT_BODY_BYTES)]), grant.bytes.subarray(GRANT_BODY_BYTES));
}

/** Decodes and checks a grant from a peer: SIGNATURE_INVALID unless the folder key signed it for this folder. */
export function verifyGrant(keys: FolderKeys, bytes: Uint8Array): Grant {
  const grant = decodeGrant(bytes);
  if (!grantSignedBy(keys, grant)) throw new FerryError('SIGNATURE_INVALID', 'grant is not signed by the folder key');
  return grant;
}

/** Why a grant is refused now, or undefined when it is good for `deviceId` (if given) at `nowMs`. */
export function grantRefusal(grant: Grant, nowMs: number, revoked: boolean, deviceId?: string): FerryError | undefined {
  if (revoked) return new FerryError('GRANT_REVOKED', `grant ${grant.idHex} was revoked`);
  if (nowMs >= grant.expiresAtMs) {
    return new FerryError('GRANT_EXPIRED', `grant ${grant.idHex} expired at ${new Date(grant.expiresAtMs).toISOString()}`);
  }
  if (deviceId !== undefined && grant.device !== undefined && grant.device !== deviceId) {
    return new FerryError('GRANT_INVALID', `grant ${grant.idHex} is for another device`);
  }
  return undefined;
}

/** A revocation of `grantId`, signed with the folder key. */
export function revokeGrant(keys: FolderKeys, grantId: Buffer, nowMs = Date.now()): Revocation {
  folderSigner(keys, 'revoking a grant');
  if (grantId.length !== GRANT_ID_BYTES) throw new FerryError('USAGE', 'a grant ID is 32 hex digits');
  const body = Buffer.concat([Buffer.of(GRANT_FORMAT), grantId, keys.folderId, writeU64(nowMs)]);
  return decodeRevocation(Buffer.concat([body, keys.sign(Buffer.concat([REVOCATION_LABEL, body]))]));
}

export function decodeRevocation(bytes: Uint8Array): Revocation {
  const b = Buffer.from(bytes);
  if (b.length !== REVOCATION_BYTES || b[0] !== GRANT_FORMAT) throw new FerryError('KEY_INVALID', 'malformed revocation');
  const grantId = b.subarray(1, 1 + GRANT_ID_BYTES);
  const folderId = b.subarray(1 + GRANT_ID_BYTES, 1 + GRANT_ID_BYTES + FOLDER_ID_BYTES);
  const revokedAtMs = readU64(b, 1 + GRANT_ID_BYTES + FOLDER_ID_BYTES, 'revocation');
  return { grantId, grantIdHex: grantId.toString('hex'), folderId, revokedAtMs, bytes: b };
}

/** Decodes and checks a revocation from a peer: SIGNATURE_INVALID unless the folder key signed it for this folder. */
export function verifyRevocation(keys: FolderKeys, bytes: Uint8Array): Revocation {
  const revocation = decodeRevocation(bytes);
  const body = revocation.bytes.subarray(0, REVOCATION_BODY_BYTES);
  if (!revocation.folderId.equals(keys.folderId) || !keys.verify(Buffer.concat([REVOCATION_LABEL, body]), revocation.bytes.subarray(REVOCATION_BODY_BYTES))) {
    throw new FerryError('SIGNATURE_INVALID', 'revocation is not signed by the folder key');
  }
  return revocation;
}

/** Whether `text` looks like an invite (so callers can pick the parser). */
export function isInviteText(text: string): boolean {
  return /^\s*g/i.test(text);
}

/** A grant's credential as the grantee holds it: the signed grant plus the private grant key. */
class InviteCredential implements GrantCredential {
  readonly level: GrantLevel;
  readonly idHex: string;
  readonly expiresAtMs: number;
  readonly bytes: Buffer;
  readonly grant: Grant;
  readonly #privateKey: KeyObject;

  constructor(grant: Grant, privateKey: KeyObject, readonly text: string) {
    this.grant = grant;
    this.level = grant.level;
    this.idHex = grant.idHex;
    this.expiresAtMs = grant.expiresAtMs;
    this.bytes = grant.bytes;
    this.#privateKey = privateKey;
  }

  signWithGrantKey(data: Uint8Array): Buffer {
    return ed25519Sign(null, data, this.#privateKey);
  }

  signRecord(data: Uint8Array): Buffer {
    return Buffer.concat([this.grant.id, this.signWithGrantKey(data)]);
  }
}

/**
 * The folder keys an invite gives: the ENC material N (to find and prove the folder), the verify
 * key, and the grant with its private grant key, at the grant's level. Never S or R. Throws the
 * key-text errors, KEY_INVALID when the grant does not belong to the folder or its key pair.
 */
export function parseInvite(text: string): FolderKeys {
  const { payload } = decodeKeyText(text, [INVITE_KIND]);
  let at = 0;
  const take = (n: number): Buffer => payload.subarray(at, (at += n));
  const encSecret = take(SECRET_BYTES);
  const verifyKey = take(VERIFY_KEY_BYTES);
  const seed = take(SECRET_BYTES);
  const grantBytes = take(GRANT_BYTES);
  const enc = FolderKeys.parse(encodeKeyText('E', Buffer.concat([encSecret, verifyKey])));
  const grant = decodeGrant(grantBytes);
  if (!grantSignedBy(enc, grant)) throw new FerryError('KEY_INVALID', 'this invite carries a grant the folder key did not sign');
  const privateKey = ed25519PrivateKeyFromSeed(seed);
  if (!rawEd25519PublicKey(createPublicKey(privateKey)).equals(grant.grantKey)) {
    throw new FerryError('KEY_INVALID', "this invite's grant key does not match its grant");
  }
  return FolderKeys.granted(enc, new InviteCredential(grant, privateKey, encodeKeyText(INVITE_KIND.prefix, payload)));
}

/** Any key text a user may paste: A/B/E keys, or a G invite. */
export function parseFolderKey(text: string): FolderKeys {
  return isInviteText(text) ? parseInvite(text) : FolderKeys.parse(text);
}

/** Whether `signature` (over `data`) was made by `grant`'s key. */
function grantKeySigned(grant: Grant, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return ed25519Verify(null, data, ed25519PublicKeyFromRaw(grant.grantKey), signature);
  } catch {
    return false;
  }
}

/** Checks the grant proof a peer made in the handshake (a signature by the grant key). */
export function grantProofValid(grant: Grant, data: Uint8Array, signature: Uint8Array): boolean {
  return signature.length === SIGNATURE_BYTES && grantKeySigned(grant, data, signature);
}

export type RecordSignatureCheck =
  | { ok: true }
  /** Well-formed but made under a grant that is unknown, expired, revoked or not RW: skip the record. */
  | { ok: false; skip: true; reason: string }
  /** Forged or malformed: the sender misbehaves. */
  | { ok: false; skip: false; reason: string };

export type GrantStatus = 'active' | 'expired' | 'revoked';

export interface GrantListing {
  id: string;
  level: GrantLevel;
  expiresAtMs: number;
  device?: string;
  status: GrantStatus;
  revokedAtMs?: number;
}

/**
 * The grants and revocations known for one folder: learned from the issuer, from grantees in the
 * handshake, and from peers. Everything in it was checked against the folder key. Bounded.
 */
export class GrantBook {
  private readonly grantsById = new Map<string, Grant>();
  private readonly revocationsById = new Map<string, Revocation>();

  constructor(readonly keys: FolderKeys) {}

  /** Adds a grant checked by the caller or by verifyGrant; true when it was new. */
  addGrant(grant: Grant): boolean {
    if (!grant.folderId.equals(this.keys.folderId) || this.grantsById.has(grant.idHex)) return false;
    this.grantsById.set(grant.idHex, grant);
    this.trim(this.grantsById, (g) => g.expiresAtMs);
    return this.grantsById.has(grant.idHex);
  }

  addRevocation(revocation: Revocation): boolean {
    if (!revocation.folderId.equals(this.keys.folderId) || this.revocationsById.has(revocation.grantIdHex)) return false;
    this.revocationsById.set(revocation.grantIdHex, revocation);
    this.trim(this.revocationsById, (r) => this.grantsById.get(r.grantIdHex)?.expiresAtMs ?? r.revokedAtMs);
    return true;
  }

  /** Keeps at most MAX_BOOK_ENTRIES, dropping those whose relevance ends first. */
  private trim<T>(map: Map<string, T>, endsAt: (value: T) => number): void {
    if (map.size <= MAX_BOOK_ENTRIES) return;
    const oldest = [...map].sort(([, a], [, b]) => endsAt(a) - endsAt(b)).slice(0, map.size - MAX_BOOK_ENTRIES);
    for (const [id] of oldest) map.delete(id);
  }

  grant(idHex: string): Grant | undefined {
    return this.grantsById.get(idHex.toLowerCase());
  }

  isRevoked(idHex: string): boolean {
    return this.revocationsById.has(idHex.toLowerCase());
  }

  revocation(idHex: string): Revocation | undefined {
    return this.revocationsById.get(idHex.toLowerCase());
  }

  grants(): Grant[] {
    return [...this.grantsById.values()];
  }

  revocations(): Revocation[] {
    return [...this.revocationsById.values()];
  }

  status(grant: Grant, nowMs = Date.now()): GrantStatus {
    if (this.isRevoked(grant.idHex)) return 'revoked';
    return nowMs >= grant.expiresAtMs ? 'expired' : 'active';
  }

  list(nowMs = Date.now()): GrantListing[] {
    return this.grants()
      .map((grant) => {
        const revokedAtMs = this.revocation(grant.idHex)?.revokedAtMs;
        return {
          id: grant.idHex,
          level: grant.level,
          expiresAtMs: grant.expiresAtMs,
          ...(grant.device ? { device: grant.device } : {}),
          status: this.status(grant, nowMs),
          ...(revokedAtMs !== undefined ? { revokedAtMs } : {}),
        };
      })
      .sort((a, b) => a.expiresAtMs - b.expiresAtMs || a.id.localeCompare(b.id));
  }

  /**
   * Checks a record signature: 64 bytes = the folder key's; 80 bytes = grant ID ‖ signature by
   * the key of an RW grant that is known here, unexpired and not revoked.
   */
  checkRecordSignature(data: Uint8Array, signature: Uint8Array | undefined, nowMs = Date.now()): RecordSignatureCheck {
    if (!signature) return { ok: false, skip: false, reason: 'unsigned' };
    if (signature.length === SIGNATURE_BYTES) {
      return this.keys.verify(data, signature) ? { ok: true } : { ok: false, skip: false, reason: 'not signed by the folder key' };
    }
    if (signature.length !== GRANT_SIGNATURE_BYTES) return { ok: false, skip: false, reason: 'malformed signature' };
    const idHex = Buffer.from(signature.subarray(0, GRANT_ID_BYTES)).toString('hex');
    const grant = this.grantsById.get(idHex);
    if (!grant) return { ok: false, skip: true, reason: `signed under grant ${idHex}, unknown here` };
    const refusal = grantRefusal(grant, nowMs, this.isRevoked(idHex));
    if (refusal) return { ok: false, skip: true, reason: refusal.message };
    if (grant.level !== 'rw') return { ok: false, skip: true, reason: `signed under read-only grant ${idHex}` };
    if (!grantKeySigned(grant, data, signature.subarray(GRANT_ID_BYTES))) {
      return { ok: false, skip: false, reason: `signature under grant ${idHex} does not verify` };
    }
    return { ok: true };
  }

  /** Stored form (base64 of the signed bytes; each is checked again on load). */
  toJSON(): { grants: string[]; revocations: string[] } {
    return {
      grants: this.grants().map((g) => g.bytes.toString('base64')),
      revocations: this.revocations().map((r) => r.bytes.toString('base64')),
    };
  }

  /** Loads a stored book; entries that no longer verify are dropped. */
  static load(keys: FolderKeys, stored: { grants?: unknown; revocations?: unknown } | undefined): GrantBook {
    const book = new GrantBook(keys);
    const list = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
    for (const text of list(stored?.grants)) {
      try {
        book.addGrant(verifyGrant(keys, Buffer.from(text, 'base64')));
      } catch {
        // a damaged entry is dropped; peers send it again
      }
    }
    for (const text of list(stored?.revocations)) {
      try {
        book.addRevocation(verifyRevocation(keys, Buffer.from(text, 'base64')));
      } catch {
        // as above
      }
    }
    return book;
  }
}
