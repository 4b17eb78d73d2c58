// Grantees in the handshake over TLS on loopback: proven access from a grant, refusals (expired, revoked, other device, forged).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type tls from 'node:tls';
import { isFerryError } from '../../src/errors.js';
import { FolderKeys, issueGrant, parseInvite, type DeviceIdentity } from '../../src/keys/index.js';
import { MESSAGE_CODES, type Message } from '../../src/protocol/messages.js';
import { makeProof, verifyProof, GrantRefusedError } from '../../src/protocol/proofs.js';
import { establishPeer } from '../../src/protocol/tls.js';
import { decodeMessage } from '../../src/protocol/validate.js';
import { makeIdentities, tlsPair, type TempIdentities } from './helpers.js';

let temp: TempIdentities;
let alice: DeviceIdentity;
let bob: DeviceIdentity;
const HOUR = 3_600_000;

before(async () => {
  temp = await makeIdentities(2);
  [alice, bob] = temp.identities as [DeviceIdentity, DeviceIdentity];
});
after(() => temp.cleanup());

type Captured = { direction: 'in' | 'out'; type: number; body: Buffer }[];

function establish(socket: tls.TLSSocket, role: 'client' | 'server', identity: DeviceIdentity, folders: FolderKeys[], revoked: Set<string>, frames: Captured) {
  return establishPeer(socket, {
    role,
    identity,
    softwareVersion: 'test',
    folders,
    isGrantRevoked: (_keys, id) => revoked.has(id),
    handshakeTimeoutMs: 5000,
    closeTimeoutMs: 500,
    observer: (direction, type, body) => frames.push({ direction, type, body: Buffer.from(body) }),
  });
}

/** alice (the grantee, client) and bob (a holder of the folder, server). */
async function handshake(aliceFolders: FolderKeys[], bobFolders: FolderKeys[], revoked = new Set<string>()) {
  const pair = await tlsPair(alice, bob);
  const bFrames: Captured = [];
  const [a, b] = await Promise.allSettled([
    establish(pair.client, 'client', alice, aliceFolders, revoked, []),
    establish(pair.server, 'server', bob, bobFolders, revoked, bFrames),
  ]);
  const close = async (): Promise<void> => {
    if (a.status === 'fulfilled') await a.value.connection.close();
    if (b.status === 'fulfilled') await b.value.connection.close();
    await pair.close();
  };
  const bobClose = bFrames.find((f) => f.direction === 'out' && f.type === MESSAGE_CODES.Close);
  const closeMessage = bobClose ? (decodeMessage(bobClose.type, bobClose.body) as Extract<Message, { type: 'Close' }>) : undefined;
  return { a, b, close, closeMessage };
}

describe('grantees in the handshake', () => {
  for (const level of ['ro', 'rw'] as const) {
    for (const holder of ['rw', 'ro', 'enc'] as const) {
      test(`a ${level} grantee proves ${level} to a ${holder} holder`, async () => {
        const folder = FolderKeys.generate();
        const { grant, invite } = issueGrant(folder, { level, expiresAtMs: Date.now() + HOUR, device: alice.id });
        const { a, b, close } = await handshake([parseInvite(invite)], [folder.weaken(holder)]);
        try {
          assert.equal(b.status, 'fulfilled', b.status === 'rejected' ? String(b.reason) : '');
          assert.equal(a.status, 'fulfilled');
          if (b.status !== 'fulfilled' || a.status !== 'fulfilled') return;
          const [shared] = b.value.handshake.folders;
          assert.equal(shared!.peerAccess, level);
          assert.equal(shared!.peerGrant?.idHex, grant.idHex);
          // Even an RW grantee does not hold the folder key: its records stay signed.
          assert.equal(shared!.peerHoldsFolderKey, false);
          assert.equal(a.value.handshake.folders[0]!.peerHoldsFolderKey, holder === 'rw');
          // The grantee checks RW signatures; it cannot check an RO MAC (it holds no R), so an RO holder looks ENC to it.
          const [seen] = a.value.handshake.folders;
          assert.equal(seen!.peerAccess, holder === 'rw' ? 'rw' : 'enc');
        } finally {
          await close();
        }
      });
    }
  }

  test('an expired grant is refused with GRANT_EXPIRED, not even ENC access remains', async () => {
    const folder = FolderKeys.generate();
    const { invite } = issueGrant(folder, { level: 'rw', expiresAtMs: Date.now() - 1 });
    const { a, b, close, closeMessage } = await handshake([parseInvite(invite)], [folder]);
    try {
      assert.equal(b.status, 'rejected');
      assert.ok(isFerryError((b as PromiseRejectedResult).reason, 'GRANT_EXPIRED'));
      assert.equal(a.status, 'rejected');
      assert.equal(closeMessage?.code, 'GRANT_EXPIRED');
      assert.match(closeMessage!.reason, /expired at/);
    } finally {
      await close();
    }
  });

  test('a revoked grant is refused with GRANT_REVOKED; other folders on the connection stay', async () => {
    const folder = FolderKeys.generate();
    const other = FolderKeys.generate();
    const { grant, invite } = issueGrant(folder, { level: 'ro', expiresAtMs: Date.now() + HOUR });
    const refused = await handshake([parseInvite(invite)], [folder], new Set([grant.idHex]));
    try {
      assert.equal(refused.b.status, 'rejected');
      assert.equal(refused.closeMessage?.code, 'GRANT_REVOKED');
    } finally {
      await refused.close();
    }
    const mixed = await handshake([parseInvite(invite), other], [folder, other], new Set([grant.idHex]));
    try {
      assert.equal(mixed.b.status, 'fulfilled');
      if (mixed.b.status !== 'fulfilled') return;
      assert.deepEqual(mixed.b.value.handshake.folders.map((f) => f.keys.folderIdHex), [other.folderIdHex]);
    } finally {
      await mixed.close();
    }
  });

  test("a grant bound to another device is refused with GRANT_INVALID", async () => {
    const folder = FolderKeys.generate();
    const { invite } = issueGrant(folder, { level: 'ro', expiresAtMs: Date.now() + HOUR, device: bob.id });
    const { b, close, closeMessage } = await handshake([parseInvite(invite)], [folder]);
    try {
      assert.equal(b.status, 'rejected');
      assert.equal(closeMessage?.code, 'GRANT_INVALID');
    } finally {
      await close();
    }
  });

  test('a grant proof is bound to the session and the grant key: replays and stolen grants fail', () => {
    const folder = FolderKeys.generate();
    const grantee = parseInvite(issueGrant(folder, { level: 'rw', expiresAtMs: Date.now() + HOUR }).invite);
    const ekm = Buffer.alloc(32, 7);
    const tag = Buffer.alloc(32, 1);
    const proof = makeProof(grantee, tag, ekm, 'client', alice.id);
    assert.equal(verifyProof(folder, proof, ekm, 'client', alice.id).access, 'rw');
    // Another session, or relayed for another device: the grant proof fails (a HANDSHAKE error, not a refusal).
    for (const [otherEkm, device] of [[Buffer.alloc(32, 8), alice.id], [ekm, bob.id]] as const) {
      const replay = { ...proof, enc: makeProof(grantee, tag, otherEkm, 'client', device).enc };
      assert.throws(() => verifyProof(folder, replay, otherEkm, 'client', device), (e) => isFerryError(e, 'HANDSHAKE') && !(e instanceof GrantRefusedError));
    }
    // A grant of another folder (signed by another key) is forged here.
    const foreign = parseInvite(issueGrant(FolderKeys.generate(), { level: 'rw', expiresAtMs: Date.now() + HOUR }).invite);
    const stolen = { ...proof, grant: foreign.grant!.bytes, grantProof: foreign.grant!.signWithGrantKey(Buffer.alloc(1)) };
    assert.throws(() => verifyProof(folder, stolen, ekm, 'client', alice.id), (e) => isFerryError(e, 'HANDSHAKE'));
  });
});
