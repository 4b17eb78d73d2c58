// Grants, revocations and invites: signatures, layouts, what an invite holds (never S or R), record signatures under grants.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import {
  FolderKeys,
  GRANT_BYTES,
  GRANT_SIGNATURE_BYTES,
  GrantBook,
  REVOCATION_BYTES,
  SIGNATURE_BYTES,
  decodeGrant,
  grantRefusal,
  issueGrant,
  parseFolderKey,
  parseInvite,
  revokeGrant,
  verifyGrant,
  verifyRevocation,
  type RecordSignatureCheck,
} from '../../src/keys/index.js';
import { LIMITS } from '../../src/protocol/limits.js';

/** A refused check that asks the caller to pass the record over (unknown, expired or revoked grant), not to punish the peer. */
const passedOver = (check: RecordSignatureCheck): boolean => !check.ok && check.skip;

const DEVICE = 'A'.repeat(51) + 'Q';
const HOUR = 3_600_000;

function code(err: unknown): string | undefined {
  return isFerryError(err) ? err.code : undefined;
}

describe('grants', () => {
  test('a grant is signed with the folder key and decodes to what was issued', () => {
    const rw = FolderKeys.generate();
    const expiresAtMs = Date.now() + HOUR;
    const { grant } = issueGrant(rw, { level: 'ro', expiresAtMs, device: DEVICE });
    assert.equal(grant.bytes.length, GRANT_BYTES);
    assert.equal(GRANT_BYTES, LIMITS.grantBytes);
    assert.equal(GRANT_SIGNATURE_BYTES, LIMITS.grantSignatureBytes);
    assert.equal(grant.level, 'ro');
    assert.equal(grant.expiresAtMs, expiresAtMs);
    assert.equal(grant.device, DEVICE);
    assert.ok(grant.folderId.equals(rw.folderId));
    // Every level of the folder checks it; another folder does not.
    assert.equal(verifyGrant(rw.weaken('enc'), grant.bytes).idHex, grant.idHex);
    assert.throws(() => verifyGrant(FolderKeys.generate(), grant.bytes), (e) => code(e) === 'SIGNATURE_INVALID');
    // A flipped bit anywhere (level, expiry, key) breaks the signature.
    for (const offset of [37, 40, 50, 100]) {
      const forged = Buffer.from(grant.bytes);
      forged[offset]! ^= 1;
      assert.throws(() => verifyGrant(rw, forged), (e) => ['SIGNATURE_INVALID', 'KEY_INVALID'].includes(code(e) ?? ''));
    }
  });

  test('only the RW key issues grants and revocations', () => {
    const rw = FolderKeys.generate();
    for (const weaker of [rw.weaken('ro'), rw.weaken('enc')]) {
      assert.throws(() => issueGrant(weaker, { level: 'ro', expiresAtMs: Date.now() + HOUR }), (e) => code(e) === 'KEY_ACCESS');
    }
    const { invite } = issueGrant(rw, { level: 'rw', expiresAtMs: Date.now() + HOUR });
    const grantee = parseInvite(invite);
    assert.throws(() => issueGrant(grantee, { level: 'ro', expiresAtMs: Date.now() + HOUR }), (e) => code(e) === 'KEY_ACCESS');
    assert.throws(() => revokeGrant(grantee, Buffer.alloc(16)), (e) => code(e) === 'KEY_ACCESS');
  });

  test('an invite gives the ENC material and the grant, never S or R', () => {
    const rw = FolderKeys.generate();
    const { grant, invite } = issueGrant(rw, { level: 'rw', expiresAtMs: Date.now() + HOUR });
    assert.match(invite, /^G[A-Z2-7]+$/);
    const keys = parseFolderKey(invite.toLowerCase());
    assert.equal(keys.folderIdHex, rw.folderIdHex);
    assert.equal(keys.access, 'rw');
    assert.equal(keys.grant?.idHex, grant.idHex);
    assert.equal(keys.secret, undefined);
    assert.equal(keys.readSecret, undefined);
    assert.equal(keys.holdsFolderKey, false);
    assert.equal(keys.canSign, true);
    assert.ok(keys.encSecret.equals(rw.encSecret));
    assert.equal(keys.format(), invite);
    assert.equal(keys.format('enc'), rw.format('enc'));
    assert.throws(() => keys.format('ro'), (e) => code(e) === 'KEY_ACCESS');
    assert.throws(() => keys.proofKey('ro'), (e) => code(e) === 'KEY_ACCESS');
    assert.throws(() => keys.contentKey(), (e) => code(e) === 'KEY_ACCESS');
    // Neither S nor R appears anywhere in the invite's bytes.
    const text = Buffer.from(invite);
    for (const secret of [rw.secret!, rw.readSecret!]) assert.equal(text.includes(secret.toString('hex')), false);
    assert.equal(JSON.stringify(keys), JSON.stringify({ folderId: rw.folderIdHex, access: 'rw', grant: grant.idHex }));
  });

  test('a typo in an invite is a checksum error; a grant from another folder is refused', () => {
    const rw = FolderKeys.generate();
    const { invite } = issueGrant(rw, { level: 'ro', expiresAtMs: Date.now() + HOUR });
    const typo = invite.slice(0, 20) + (invite[20] === 'A' ? 'B' : 'A') + invite.slice(21);
    assert.throws(() => parseInvite(typo), (e) => code(e) === 'KEY_CHECKSUM');
  });

  test('refusals: expired, revoked, another device', () => {
    const rw = FolderKeys.generate();
    const now = Date.now();
    const { grant } = issueGrant(rw, { level: 'ro', expiresAtMs: now + 1000, device: DEVICE });
    assert.equal(grantRefusal(grant, now, false, DEVICE), undefined);
    assert.equal(code(grantRefusal(grant, now + 1000, false, DEVICE)), 'GRANT_EXPIRED');
    assert.equal(code(grantRefusal(grant, now, true, DEVICE)), 'GRANT_REVOKED');
    assert.equal(code(grantRefusal(grant, now, false, 'B'.repeat(52))), 'GRANT_INVALID');
  });

  test('revocations are signed with the folder key and kept in the book', () => {
    const rw = FolderKeys.generate();
    const { grant } = issueGrant(rw, { level: 'rw', expiresAtMs: Date.now() + HOUR });
    const revocation = revokeGrant(rw, grant.id);
    assert.equal(revocation.bytes.length, REVOCATION_BYTES);
    assert.equal(REVOCATION_BYTES, LIMITS.revocationBytes);
    const ro = rw.weaken('ro');
    assert.equal(verifyRevocation(ro, revocation.bytes).grantIdHex, grant.idHex);
    const forged = Buffer.from(revocation.bytes);
    forged[5]! ^= 1;
    assert.throws(() => verifyRevocation(ro, forged), (e) => code(e) === 'SIGNATURE_INVALID');
    assert.throws(() => verifyRevocation(FolderKeys.generate(), revocation.bytes), (e) => code(e) === 'SIGNATURE_INVALID');

    const book = new GrantBook(ro);
    assert.equal(book.addGrant(grant), true);
    assert.equal(book.addGrant(grant), false);
    assert.equal(book.status(grant), 'active');
    assert.equal(book.addRevocation(revocation), true);
    assert.equal(book.addRevocation(revocation), false);
    assert.equal(book.status(grant), 'revoked');
    assert.deepEqual(book.list().map((g) => [g.id, g.status]), [[grant.idHex, 'revoked']]);
    // The stored form loads back, and damaged entries are dropped.
    const stored = book.toJSON();
    const loaded = GrantBook.load(ro, { grants: [...stored.grants, 'garbage'], revocations: stored.revocations });
    assert.deepEqual(loaded.list(), book.list());
  });

  test('record signatures: folder key, or a valid RW grant; others are skipped or refused', () => {
    const rw = FolderKeys.generate();
    const now = Date.now();
    const data = Buffer.from('record bytes');
    const rwGrant = issueGrant(rw, { level: 'rw', expiresAtMs: now + HOUR });
    const roGrant = issueGrant(rw, { level: 'ro', expiresAtMs: now + HOUR });
    const writer = parseInvite(rwGrant.invite);
    const signature = writer.sign(data);
    assert.equal(signature.length, GRANT_SIGNATURE_BYTES);
    assert.throws(() => parseInvite(roGrant.invite).sign(data), (e) => code(e) === 'KEY_ACCESS');

    const book = new GrantBook(rw.weaken('enc'));
    assert.deepEqual(book.checkRecordSignature(data, rw.sign(data), now), { ok: true });
    assert.equal(rw.sign(data).length, SIGNATURE_BYTES);
    // Unknown grant: skipped, not an offence (a relay may know more than we do).
    assert.equal(book.checkRecordSignature(data, signature, now).ok, false);
    assert.equal(passedOver(book.checkRecordSignature(data, signature, now)), true);
    book.addGrant(rwGrant.grant);
    assert.deepEqual(book.checkRecordSignature(data, signature, now), { ok: true });
    // Forged: refused.
    const forged = Buffer.from(signature);
    forged[40]! ^= 1;
    assert.deepEqual({ ...book.checkRecordSignature(data, forged, now), reason: '' }, { ok: false, skip: false, reason: '' });
    // Expired, or revoked: skipped.
    assert.equal(passedOver(book.checkRecordSignature(data, signature, now + HOUR)), true);
    book.addRevocation(revokeGrant(rw, rwGrant.grant.id));
    assert.equal(passedOver(book.checkRecordSignature(data, signature, now)), true);
    // An RO grant's key never signs records.
    book.addGrant(roGrant.grant);
    assert.equal(decodeGrant(roGrant.grant.bytes).level, 'ro');
    assert.equal(book.checkRecordSignature(data, undefined, now).ok, false);
  });
});
