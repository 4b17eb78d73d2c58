// Handshake over real TLS 1.3 on loopback: proven access per level, blinded claims, replay and hostile peers.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type tls from 'node:tls';
import { isFerryError } from '../../src/errors.js';
import { FolderKeys, type DeviceIdentity } from '../../src/keys/index.js';
import { PeerConnection } from '../../src/protocol/connection.js';
import { encodeFrame, encodeBody } from '../../src/protocol/frames.js';
import { NO_SHARED_FOLDER } from '../../src/protocol/handshake.js';
import { HELLO_MAGIC, MESSAGE_CODES, PROTOCOL_VERSION, type Message } from '../../src/protocol/messages.js';
import { makeClaims, makeProof, matchClaims, sessionKeyingMaterial } from '../../src/protocol/proofs.js';
import { establishPeer, peerDeviceId, TLS_CIPHERSUITE } from '../../src/protocol/tls.js';
import { decodeMessage } from '../../src/protocol/validate.js';
import { eventually, makeIdentities, tlsPair, type TempIdentities } from './helpers.js';

let temp: TempIdentities;
let alice: DeviceIdentity;
let bob: DeviceIdentity;
let carol: DeviceIdentity;

before(async () => {
  temp = await makeIdentities(3);
  [alice, bob, carol] = temp.identities as [DeviceIdentity, DeviceIdentity, DeviceIdentity];
});
after(() => temp.cleanup());

type Captured = { direction: 'in' | 'out'; type: number; body: Buffer }[];

function establish(socket: tls.TLSSocket, role: 'client' | 'server', identity: DeviceIdentity, folders: FolderKeys[], frames: Captured = []) {
  return establishPeer(socket, {
    role,
    identity,
    softwareVersion: 'test',
    folders,
    handshakeTimeoutMs: 5000,
    closeTimeoutMs: 500,
    observer: (direction, type, body) => frames.push({ direction, type, body: Buffer.from(body) }),
  });
}

async function handshakeBoth(aFolders: FolderKeys[], bFolders: FolderKeys[]) {
  const pair = await tlsPair(alice, bob);
  const aFrames: Captured = [];
  const bFrames: Captured = [];
  const [a, b] = await Promise.allSettled([
    establish(pair.client, 'client', alice, aFolders, aFrames),
    establish(pair.server, 'server', bob, bFolders, bFrames),
  ]);
  return { pair, a, b, aFrames, bFrames };
}

describe('handshake over TLS on loopback', () => {
  test('negotiates TLS 1.3 with AES-256-GCM and identifies peers by certificate', async () => {
    const pair = await tlsPair(alice, bob);
    try {
      assert.equal(pair.client.getCipher().standardName, TLS_CIPHERSUITE);
      assert.equal(peerDeviceId(pair.client), bob.id);
      assert.equal(peerDeviceId(pair.server), alice.id);
      assert.deepEqual(sessionKeyingMaterial(pair.client), sessionKeyingMaterial(pair.server));
    } finally {
      await pair.close();
    }
  });

  const combos: Array<[FolderKeys['access'], FolderKeys['access'], FolderKeys['access'], FolderKeys['access']]> = [
    // alice's key, bob's key, what alice proves to bob (as bob checks it), what bob proves to alice
    ['rw', 'rw', 'rw', 'rw'],
    ['rw', 'ro', 'rw', 'ro'],
    ['ro', 'rw', 'ro', 'rw'],
    ['rw', 'enc', 'rw', 'enc'],
    ['ro', 'enc', 'enc', 'enc'], // an ENC holder cannot check an RO proof
    ['enc', 'ro', 'enc', 'enc'],
    ['ro', 'ro', 'ro', 'ro'],
    ['enc', 'enc', 'enc', 'enc'],
    ['enc', 'rw', 'enc', 'rw'], // RW signatures are checkable with the verify key alone
  ];
  for (const [aliceKey, bobKey, aliceProven, bobProven] of combos) {
    test(`alice ${aliceKey} / bob ${bobKey}: bob sees ${aliceProven}, alice sees ${bobProven}`, async () => {
      const folder = FolderKeys.generate();
      const other = FolderKeys.generate();
      const { pair, a, b } = await handshakeBoth([other, folder.weaken(aliceKey)], [folder.weaken(bobKey)]);
      try {
        assert.equal(a.status, 'fulfilled');
        assert.equal(b.status, 'fulfilled');
        if (a.status !== 'fulfilled' || b.status !== 'fulfilled') return;
        assert.equal(a.value.handshake.peer.deviceId, bob.id);
        assert.equal(b.value.handshake.peer.deviceId, alice.id);
        // Name and version arrive in ClusterState, after the proofs.
        assert.equal(a.value.handshake.peer.deviceName, bob.name);
        assert.equal(b.value.handshake.peer.softwareVersion, 'test');
        assert.equal(a.value.handshake.folders.length, 1);
        assert.equal(b.value.handshake.folders.length, 1);
        const [aShared] = a.value.handshake.folders;
        const [bShared] = b.value.handshake.folders;
        assert.equal(aShared!.keys.folderIdHex, folder.folderIdHex);
        assert.equal(aShared!.peerAccess, bobProven);
        assert.equal(bShared!.peerAccess, aliceProven);
        // Only an RW key holds the folder key (records on a link of two such go unsigned).
        assert.equal(aShared!.peerHoldsFolderKey, bobKey === 'rw');
        assert.equal(bShared!.peerHoldsFolderKey, aliceKey === 'rw');
        // Each side learns what the other verified for it.
        assert.equal(aShared!.peerState.peerAccess, aliceProven);
        await a.value.connection.close();
        await b.value.connection.close();
      } finally {
        await pair.close();
      }
    });
  }

  test('a peer holding a different folder learns nothing and both sides close', async () => {
    const aliceFolder = FolderKeys.generate();
    const bobFolder = FolderKeys.generate();
    const { pair, a, b, aFrames, bFrames } = await handshakeBoth([aliceFolder], [bobFolder]);
    try {
      for (const result of [a, b]) {
        assert.equal(result.status, 'rejected');
        assert.ok(isFerryError((result as PromiseRejectedResult).reason));
      }
      const aliceSent = Buffer.concat(aFrames.filter((f) => f.direction === 'out').map((f) => f.body));
      const bobSent = Buffer.concat(bFrames.filter((f) => f.direction === 'out').map((f) => f.body));
      for (const [sent, keys] of [[aliceSent, aliceFolder], [bobSent, bobFolder]] as const) {
        assert.equal(sent.includes(keys.folderId), false, 'folder ID bytes were sent');
        assert.equal(sent.includes(Buffer.from(keys.folderIdHex)), false, 'folder ID hex was sent');
        assert.equal(sent.includes(keys.verifyKey), false, 'verify key was sent');
      }
      // What each received: Hello, FolderClaims (8 opaque tags), an empty FolderProofs, then Close.
      const bobReceived = bFrames.filter((f) => f.direction === 'in').map((f) => decodeMessage(f.type, f.body));
      // A Hello without the device's name or software version: a keyless visitor learns neither.
      const hello = bobReceived.find((m) => m.type === 'Hello') as Extract<Message, { type: 'Hello' }>;
      assert.equal(hello.deviceId, alice.id);
      assert.equal(hello.deviceName, '');
      assert.equal(hello.softwareVersion, '');
      const bobGot = Buffer.concat(bFrames.filter((f) => f.direction === 'in').map((f) => f.body));
      assert.equal(bobGot.includes(Buffer.from(alice.name)), false, "alice's name was sent");
      const proofs = bobReceived.find((m) => m.type === 'FolderProofs');
      assert.deepEqual(proofs, { type: 'FolderProofs', proofs: [] });
      const claims = bobReceived.find((m) => m.type === 'FolderClaims') as Extract<Message, { type: 'FolderClaims' }>;
      assert.equal(claims.tags.length, 8);
      // Both decide at once, so each sends its own Close with the reason (and may skip the other's).
      const bobClose = bFrames.find((f) => f.direction === 'out' && f.type === MESSAGE_CODES.Close)!;
      const close = decodeMessage(bobClose.type, bobClose.body) as Extract<Message, { type: 'Close' }>;
      assert.equal(close.code, NO_SHARED_FOLDER);
      assert.match(close.reason, /no folder/);
    } finally {
      await pair.close();
    }
  });

  test('a peer with no folder at all is closed with a reason', async () => {
    const folder = FolderKeys.generate();
    const { pair, a, b } = await handshakeBoth([], [folder]);
    try {
      assert.equal(b.status, 'rejected');
      assert.equal(a.status, 'rejected');
      const err = (b as PromiseRejectedResult).reason;
      assert.ok(isFerryError(err, 'HANDSHAKE'), String(err));
      assert.match(err.message, /no folder/);
    } finally {
      await pair.close();
    }
  });
});

/** A hostile peer speaking raw frames over TLS. */
class ScriptedPeer {
  readonly received: Message[] = [];
  readonly frames: { type: number; body: Buffer }[] = [];
  private buffer = Buffer.alloc(0);
  ended = false;

  constructor(readonly socket: tls.TLSSocket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      while (this.buffer.length >= 4 && this.buffer.length >= 4 + this.buffer.readUInt32BE(0)) {
        const length = this.buffer.readUInt32BE(0);
        const frame = { type: this.buffer[4]!, body: Buffer.from(this.buffer.subarray(5, 4 + length)) };
        this.buffer = this.buffer.subarray(4 + length);
        this.frames.push(frame);
        this.received.push(decodeMessage(frame.type, frame.body));
      }
    });
    socket.on('close', () => (this.ended = true));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(name: keyof typeof MESSAGE_CODES, fields: object): void {
    this.sendRaw(encodeFrame(MESSAGE_CODES[name], encodeBody(fields)));
  }

  hello(identity: DeviceIdentity): void {
    this.send('Hello', { magic: HELLO_MAGIC, protocolVersion: PROTOCOL_VERSION, deviceId: identity.id, deviceName: 'mallory', softwareVersion: 'x' });
  }

  async waitFor(type: Message['type']): Promise<Message> {
    await eventually(() => this.received.some((m) => m.type === type));
    return this.received.find((m) => m.type === type)!;
  }
}

describe('hostile peers', () => {
  test('a proof replayed from another TLS session is rejected', async () => {
    const folder = FolderKeys.generate();
    // Session 1: carol (ENC holder, scripted) talks to alice (RW) and records alice's RW proof.
    const s1 = await tlsPair(carol, alice);
    const mallory1 = new ScriptedPeer(s1.client);
    const aliceSide = establish(s1.server, 'server', alice, [folder]).catch((err: unknown) => err);
    const ekm1 = sessionKeyingMaterial(s1.client);
    mallory1.hello(carol);
    const encKeys = folder.weaken('enc');
    const claims1 = makeClaims([encKeys], ekm1, 'client');
    mallory1.send('FolderClaims', { tags: claims1.tags });
    const aliceClaims = (await mallory1.waitFor('FolderClaims')) as Extract<Message, { type: 'FolderClaims' }>;
    const matched = matchClaims(aliceClaims.tags, [encKeys], ekm1, 'server');
    assert.equal(matched.size, 1);
    const [[aliceTagHex]] = [...matched];
    mallory1.send('FolderProofs', { proofs: [makeProof(encKeys, Buffer.from(aliceTagHex!, 'hex'), ekm1, 'client', carol.id)] });
    const captured = (await mallory1.waitFor('FolderProofs')) as Extract<Message, { type: 'FolderProofs' }>;
    assert.ok(captured.proofs[0]!.rw, 'alice sent an RW proof');
    const zeros = Buffer.alloc(8);
    mallory1.send('ClusterState', {
      folders: [{ folderId: folder.folderId, peerAccess: 'rw', indexId: zeros, maxSequence: 0, receivedIndexId: zeros, receivedSequence: 0 }],
    });
    const aliceResult = await aliceSide;
    assert.equal((aliceResult as { handshake: { folders: { peerAccess: string }[] } }).handshake.folders[0]!.peerAccess, 'enc');
    await s1.close();

    // Session 2: carol replays alice's RW signature to bob, claiming RW access.
    const s2 = await tlsPair(carol, bob);
    try {
      const mallory2 = new ScriptedPeer(s2.client);
      const bobSide = establish(s2.server, 'server', bob, [folder.weaken('ro')]);
      const ekm2 = sessionKeyingMaterial(s2.client);
      mallory2.hello(carol);
      mallory2.send('FolderClaims', { tags: makeClaims([encKeys], ekm2, 'client').tags });
      const bobClaims = (await mallory2.waitFor('FolderClaims')) as Extract<Message, { type: 'FolderClaims' }>;
      const [[bobTagHex]] = [...matchClaims(bobClaims.tags, [encKeys], ekm2, 'server')];
      const forged = { ...makeProof(encKeys, Buffer.from(bobTagHex!, 'hex'), ekm2, 'client', carol.id), rw: captured.proofs[0]!.rw };
      mallory2.send('FolderProofs', { proofs: [forged] });
      await assert.rejects(bobSide, (err: unknown) => isFerryError(err, 'HANDSHAKE') && /rw proof/.test(err.message));
      const close = (await mallory2.waitFor('Close')) as Extract<Message, { type: 'Close' }>;
      assert.equal(close.code, 'HANDSHAKE');
    } finally {
      await s2.close();
    }
  });

  test('a whole FolderProofs message replayed from another session names unknown tags and is rejected', async () => {
    const folder = FolderKeys.generate();
    const s1 = await tlsPair(alice, bob);
    const aFrames: Captured = [];
    const [a1, b1] = await Promise.all([
      establish(s1.client, 'client', alice, [folder], aFrames),
      establish(s1.server, 'server', bob, [folder]),
    ]);
    const recorded = aFrames.filter((f) => f.direction === 'out' && f.type !== MESSAGE_CODES.Close);
    await a1.connection.close();
    await b1.connection.close();
    await s1.close();

    // Session 2: carol replays alice's recorded frames verbatim (Hello edited to carol's ID).
    const s2 = await tlsPair(carol, bob);
    try {
      const mallory = new ScriptedPeer(s2.client);
      const bobSide = establish(s2.server, 'server', bob, [folder]);
      mallory.hello(carol);
      for (const frame of recorded.filter((f) => f.type !== MESSAGE_CODES.Hello)) mallory.sendRaw(encodeFrame(frame.type, frame.body));
      await assert.rejects(bobSide, (err: unknown) => isFerryError(err, 'HANDSHAKE'));
    } finally {
      await s2.close();
    }
  });

  test('a Hello naming another device than the certificate is refused', async () => {
    const pair = await tlsPair(carol, bob);
    try {
      const mallory = new ScriptedPeer(pair.client);
      const bobSide = establish(pair.server, 'server', bob, [FolderKeys.generate()]);
      mallory.hello(alice);
      await assert.rejects(bobSide, (err: unknown) => isFerryError(err, 'HANDSHAKE') && /certificate/.test(err.message));
    } finally {
      await pair.close();
    }
  });

  const hostileInputs: Array<[string, Buffer]> = [
    ['a malformed body', encodeFrame(MESSAGE_CODES.Hello, Buffer.from([0x92, 0x01]))],
    ['an oversized frame', Buffer.from([0xff, 0xff, 0xff, 0xf0, MESSAGE_CODES.Index])],
    ['an unknown type', encodeFrame(0x7e, encodeBody({}))],
  ];
  for (const [what, bytes] of hostileInputs) {
    test(`a peer sending ${what} is disconnected; another connection stays healthy`, async () => {
      const folder = FolderKeys.generate();
      const good = await tlsPair(alice, bob);
      const bad = await tlsPair(carol, bob);
      try {
        const [a, b] = await Promise.all([
          establish(good.client, 'client', alice, [folder]),
          establish(good.server, 'server', bob, [folder]),
        ]);
        const mallory = new ScriptedPeer(bad.client);
        const bobSide = establish(bad.server, 'server', bob, [folder]);
        mallory.sendRaw(bytes);
        await assert.rejects(bobSide, (err: unknown) => isFerryError(err, 'CLOSED'));
        await eventually(() => mallory.ended);
        // The healthy connection still carries messages both ways.
        await a.connection.send({ type: 'Progress', folderId: folder.folderId, state: 'idle', needFiles: 0, needBytes: 0, globalFiles: 1, globalBytes: 2 });
        const got = await b.connection.receive({ timeoutMs: 5000 });
        assert.equal(got.type, 'Progress');
        assert.equal(b.connection.closed, false);
        await a.connection.close();
        await b.connection.close();
      } finally {
        await good.close();
        await bad.close();
      }
    });
  }

  test('establishPeer accepts a PeerConnection only after the peer spoke (silent peer times out)', async () => {
    const pair = await tlsPair(carol, bob);
    try {
      const bobSide = establishPeer(pair.server, {
        role: 'server', identity: bob, softwareVersion: 'test', folders: [FolderKeys.generate()], handshakeTimeoutMs: 200, closeTimeoutMs: 100,
      });
      await assert.rejects(bobSide, (err: unknown) => isFerryError(err, 'TIMEOUT'));
      assert.ok(PeerConnection);
    } finally {
      await pair.close();
    }
  });
});
