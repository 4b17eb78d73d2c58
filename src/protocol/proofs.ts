// Folder possession proofs bound to one TLS session: blinded claim tags and per-level proofs (MACs, signature).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { FerryError } from '../errors.js';
import { grantProofValid, grantRefusal, verifyGrant, type FolderKeys, type Grant } from '../keys/index.js';
import { accessAtLeast, type Access } from '../keys/types.js';
import type { FolderProof } from './messages.js';

export type Role = 'client' | 'server';

/** RFC 5705 / 8446 exporter label; both ends of one TLS session derive the same bytes from it. */
export const EKM_LABEL = 'EXPORTER-ferry-folder-proof';
export const EKM_BYTES = 32;
/** Exporter context (TLS 1.3 treats a missing and an empty context alike; a fixed one is explicit). */
const EKM_CONTEXT = Buffer.from('ferry/v1');

const TAG_LABEL = 'ferry/claim-tag/v1';
const PROOF_LABEL = 'ferry/folder-proof/v1';
/** Claims are padded with random decoys to a multiple of this, so the count says little. */
export const CLAIM_PADDING = 8;

const ROLE_BYTE: Record<Role, number> = { client: 1, server: 2 };

export function otherRole(role: Role): Role {
  return role === 'client' ? 'server' : 'client';
}

/** This session's exported keying material: what every tag and proof is bound to. */
export function sessionKeyingMaterial(socket: TLSSocket): Buffer {
  try {
    return socket.exportKeyingMaterial(EKM_BYTES, EKM_LABEL, EKM_CONTEXT);
  } catch (err) {
    throw new FerryError('HANDSHAKE', 'cannot export TLS keying material', { cause: err });
  }
}

function lengthPrefixed(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(bytes.length);
  return Buffer.concat([prefix, bytes]);
}

/**
 * The blinded claim for one folder: HMAC(proofKey('enc'), label ‖ ekm ‖ role). Only holders of
 * one of the folder's keys can compute or recognise it; it changes with every session, so tags
 * from two sessions cannot be linked, and the role stops a peer reflecting our tag back to us.
 */
export function claimTag(keys: FolderKeys, ekm: Buffer, role: Role): Buffer {
  return createHmac('sha256', keys.proofKey('enc'))
    .update(TAG_LABEL)
    .update(ekm)
    .update(Buffer.of(ROLE_BYTE[role]))
    .digest();
}

/** Tags for our folders plus random decoys, shuffled; `byTag` maps each real tag (hex) to its folder. */
export function makeClaims(folders: readonly FolderKeys[], ekm: Buffer, role: Role): { tags: Buffer[]; byTag: Map<string, FolderKeys> } {
  const byTag = new Map<string, FolderKeys>();
  const tags: Buffer[] = [];
  for (const keys of folders) {
    const tag = claimTag(keys, ekm, role);
    if (byTag.has(tag.toString('hex'))) continue;
    byTag.set(tag.toString('hex'), keys);
    tags.push(tag);
  }
  const padded = Math.max(CLAIM_PADDING, Math.ceil(tags.length / CLAIM_PADDING) * CLAIM_PADDING);
  while (tags.length < padded) tags.push(randomBytes(32));
  for (let i = tags.length - 1; i > 0; i--) {
    const j = randomBytes(4).readUInt32BE() % (i + 1);
    [tags[i], tags[j]] = [tags[j]!, tags[i]!];
  }
  return { tags, byTag };
}

/** Which of our folders the peer's tags name: peer tag (hex) → our folder. Decoys and strangers match nothing. */
export function matchClaims(peerTags: readonly Buffer[], folders: readonly FolderKeys[], ekm: Buffer, peerRole: Role): Map<string, FolderKeys> {
  const wanted = new Set(peerTags.map((tag) => tag.toString('hex')));
  const matched = new Map<string, FolderKeys>();
  for (const keys of folders) {
    const expected = claimTag(keys, ekm, peerRole).toString('hex');
    if (wanted.has(expected)) matched.set(expected, keys);
  }
  return matched;
}

/** What a proof covers: an access level, or "grant" for a grantee's proof with its grant key. */
export type ProofLevel = Access | 'grant';

/** The bytes a proof at `level` covers: label ‖ level ‖ ekm ‖ prover role ‖ prover device ID ‖ folder ID. */
export function proofInput(level: ProofLevel, ekm: Buffer, proverRole: Role, proverDeviceId: string, folderId: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(PROOF_LABEL),
    lengthPrefixed(level),
    ekm,
    Buffer.of(ROLE_BYTE[proverRole]),
    lengthPrefixed(proverDeviceId),
    folderId,
  ]);
}

function mac(keys: FolderKeys, level: 'ro' | 'enc', input: Buffer): Buffer {
  return createHmac('sha256', keys.proofKey(level)).update(input).digest();
}

/**
 * Our proofs for one folder, at every level we hold, naming it by the peer's tag. A grantee
 * proves ENC with N, and its grant's level with the signed grant plus a signature by the grant key.
 */
export function makeProof(keys: FolderKeys, peerTag: Buffer, ekm: Buffer, role: Role, deviceId: string): FolderProof {
  const input = (level: ProofLevel): Buffer => proofInput(level, ekm, role, deviceId, keys.folderId);
  const proof: FolderProof = { tag: peerTag, enc: mac(keys, 'enc', input('enc')) };
  if (keys.readSecret) proof.ro = mac(keys, 'ro', input('ro'));
  if (keys.holdsFolderKey) proof.rw = keys.sign(input('rw'));
  if (keys.grant) {
    proof.grant = keys.grant.bytes;
    proof.grantProof = keys.grant.signWithGrantKey(input('grant'));
  }
  return proof;
}

/** A grant the peer presented that is genuine but not good now (expired, revoked, another device's). */
export class GrantRefusedError extends FerryError {}

/** What the peer proved for a folder: its access, and the grant that gave it (if it is a grantee). */
export interface VerifiedProof {
  access: Access;
  /** The peer signed with the folder key (it holds S, like an RW key). */
  folderKey: boolean;
  grant?: Grant;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The access the peer proved for a folder, checking every level we can (ENC needs the ENC
 * proof key, RO the RO proof key, RW only the verify key every level holds). A proof that we
 * can check and that fails is a HANDSHAKE error: honest peers never send one. A grantee's grant
 * must carry the folder key's signature and be signed over this session by its grant key
 * (HANDSHAKE otherwise); a genuine grant that is expired, revoked or for another device throws
 * GrantRefusedError (GRANT_EXPIRED, GRANT_REVOKED, GRANT_INVALID): the folder is refused.
 */
export function verifyProof(
  keys: FolderKeys,
  proof: FolderProof,
  ekm: Buffer,
  proverRole: Role,
  proverDeviceId: string,
  isRevoked: (grantIdHex: string) => boolean = () => false,
  nowMs = Date.now(),
): VerifiedProof {
  const input = (level: ProofLevel): Buffer => proofInput(level, ekm, proverRole, proverDeviceId, keys.folderId);
  const failed = (level: ProofLevel): FerryError =>
    new FerryError('HANDSHAKE', `peer's ${level} proof for a shared folder does not verify`);
  if (!sameBytes(proof.enc, mac(keys, 'enc', input('enc')))) throw failed('enc');
  let access: Access = 'enc';
  if (proof.ro && keys.readSecret) {
    if (!sameBytes(proof.ro, mac(keys, 'ro', input('ro')))) throw failed('ro');
    access = 'ro';
  }
  let folderKey = false;
  if (proof.rw) {
    if (!keys.verify(input('rw'), proof.rw)) throw failed('rw');
    access = 'rw';
    folderKey = true;
  }
  if (!proof.grant || !proof.grantProof) return { access, folderKey };
  // A grantee: the folder key signed its grant, and it holds the grant key (bound to this session).
  let grant: Grant;
  try {
    grant = verifyGrant(keys, proof.grant);
  } catch (err) {
    throw new FerryError('HANDSHAKE', `peer presented a grant the folder key did not sign: ${(err as Error).message}`);
  }
  if (!grantProofValid(grant, input('grant'), proof.grantProof)) throw failed('grant');
  const refusal = grantRefusal(grant, nowMs, isRevoked(grant.idHex), proverDeviceId);
  if (refusal) throw new GrantRefusedError(refusal.code, refusal.message);
  return { access: accessAtLeast(access, grant.level) ? access : grant.level, folderKey, grant };
}
