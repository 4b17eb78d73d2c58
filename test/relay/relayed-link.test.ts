// A link through a relay: TLS 1.3 and the Ferry handshake end to end over a RelayStream between two
// ConnectionManagers, path `relay via NAME`; a direct link to the same device then replaces it.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { EstablishedPeer } from '../../src/connections/index.js';
import { FolderKeys, type DeviceIdentity } from '../../src/keys/index.js';
import { isRelayMessage } from '../../src/protocol/index.js';
import { CLOSE_SUPERSEDED } from '../../src/protocol/connection.js';
import { RelayNode, type Carrier } from '../../src/relay/index.js';
import { TestNode, eventually, makeIdentities, type TempIdentities } from '../connections/helpers.js';

let temp: TempIdentities;
before(async () => {
  temp = await makeIdentities(3);
});
after(() => temp.cleanup());

/** A TestNode with a RelayNode fed by every kept link's relay messages, as the daemon's relay service does. */
class RelayingNode {
  readonly test: TestNode;
  readonly relay: RelayNode;
  private readonly carriers = new Map<EstablishedPeer['connection'], Carrier>();
  /** Block Requests are answered (with the path's bytes) once this resolves. */
  answerRequests: Promise<void> = Promise.resolve();
  requestsSeen = 0;

  constructor(identity: DeviceIdentity, folders: FolderKeys[]) {
    this.test = new TestNode(identity, folders, {
      onPeer: (peer) => {
        this.test.peersSeen.push(peer);
        void this.readRelay(peer);
      },
      onPeerClosed: (peer) => {
        this.test.peersClosed.push(peer);
        const carrier = this.carriers.get(peer.connection);
        if (carrier) this.relay.detach(carrier);
      },
    });
    this.relay = new RelayNode({
      relay: true,
      carrierFor: (deviceId) => {
        const peer = this.test.manager.peers().find((p) => p.deviceId === deviceId);
        return peer ? this.carrierOf(peer) : undefined;
      },
      onIncoming: (stream, _from, via) => {
        const label = this.test.manager.peers().find((p) => p.deviceId === via.deviceId)!.deviceName;
        void this.test.manager.connectOver(stream, 'server', { address: `relay:${label}`, path: () => `relay via ${label}`, rttMs: () => stream.rttMs }).catch(() => undefined);
      },
    });
  }

  carrierOf(peer: EstablishedPeer): Carrier {
    let carrier = this.carriers.get(peer.connection);
    if (!carrier) {
      carrier = {
        deviceId: peer.deviceId,
        direction: peer.direction,
        folderIds: new Set(peer.handshake.folders.map((f) => f.keys.folderIdHex)),
        relayed: peer.path().startsWith('relay'),
        send: (m) => peer.connection.send(m),
      };
      this.carriers.set(peer.connection, carrier);
    }
    return carrier;
  }

  peer(deviceId: string): EstablishedPeer | undefined {
    return this.test.manager.peers().find((p) => p.deviceId === deviceId && !p.connection.closed);
  }

  private async readRelay(peer: EstablishedPeer): Promise<void> {
    for await (const message of peer.connection) {
      if (isRelayMessage(message)) this.relay.receive(this.carrierOf(peer), message);
      else if (message.type === 'Request') {
        this.requestsSeen++;
        void this.answerRequests.then(() => peer.connection.send({ type: 'Response', id: message.id, data: Buffer.from(message.path) }).catch(() => undefined));
      }
    }
  }

  async close(): Promise<void> {
    this.relay.close();
    await this.test.manager.close();
  }
}

test('two devices that reach only a common peer connect through it: TLS and handshake end to end, path "relay via", then a direct link replaces it', async () => {
  const [alice, bob, carol] = temp.identities as [DeviceIdentity, DeviceIdentity, DeviceIdentity];
  const folder = FolderKeys.generate();
  const a = new RelayingNode(alice, [folder]);
  const b = new RelayingNode(bob, [FolderKeys.parse(folder.format('ro'))]);
  const c = new RelayingNode(carol, [FolderKeys.parse(folder.format('enc'))]);
  try {
    for (const node of [a, b, c]) await node.test.open();
    a.test.manager.addAddress(c.test.address);
    b.test.manager.addAddress(c.test.address);
    await eventually(() => c.peer(alice.id) !== undefined && c.peer(bob.id) !== undefined, 'A and B connected to C');

    const stream = await a.relay.open(a.carrierOf(a.peer(carol.id)!), bob.id);
    await a.test.manager.connectOver(stream, 'client', { address: 'relay:device2', path: () => 'relay via device2', rttMs: () => stream.rttMs, device: bob.id });
    await eventually(() => b.peer(alice.id) !== undefined, 'B kept the relayed link');
    const atA = a.peer(bob.id)!;
    const atB = b.peer(alice.id)!;
    assert.equal(atA.path(), 'relay via device2');
    assert.equal(atB.path(), 'relay via device2');
    assert.equal(atA.address, 'relay:device2');
    assert.ok(atA.rttMs() !== undefined);
    // The handshake ran end to end: each proved the folder to the other (RO to RW), which the relay (ENC) could not have forged.
    assert.deepEqual(atA.handshake.folders.map((f) => [f.keys.folderIdHex, f.peerAccess]), [[folder.folderIdHex, 'ro']]);
    assert.deepEqual(atB.handshake.folders.map((f) => [f.keys.folderIdHex, f.peerAccess]), [[folder.folderIdHex, 'rw']]);
    assert.equal(c.relay.relaying, 1);
    assert.ok(c.relay.counters.relayedBytes > 0);
    // A relayed link carries no relayed stream.
    await assert.rejects(a.relay.open(a.carrierOf(atA), carol.id), /relayed link/);

    // A direct dial succeeds later: the direct link replaces the relayed one on both sides, and the relay forgets the stream.
    a.test.manager.addAddress(b.test.address);
    await eventually(() => a.peer(bob.id)?.path() === 'tcp' && b.peer(alice.id)?.path() === 'tcp', 'the direct link kept on both sides');
    await eventually(() => c.relay.relaying === 0, 'the relayed stream ended at the relay');
    assert.ok(atA.connection.closed);
  } finally {
    await Promise.all([a, b, c].map((node) => node.close()));
  }
});

test('handover: requests in flight on the relayed link are answered there after a direct link replaces it, which then closes with SUPERSEDED', async () => {
  const [alice, bob, carol] = temp.identities as [DeviceIdentity, DeviceIdentity, DeviceIdentity];
  const folder = FolderKeys.generate();
  const a = new RelayingNode(alice, [folder]);
  const b = new RelayingNode(bob, [FolderKeys.parse(folder.format('rw'))]);
  const c = new RelayingNode(carol, [FolderKeys.parse(folder.format('enc'))]);
  try {
    for (const node of [a, b, c]) await node.test.open();
    a.test.manager.addAddress(c.test.address);
    b.test.manager.addAddress(c.test.address);
    await eventually(() => c.peer(alice.id) !== undefined && c.peer(bob.id) !== undefined, 'A and B connected to C');
    const stream = await a.relay.open(a.carrierOf(a.peer(carol.id)!), bob.id);
    await a.test.manager.connectOver(stream, 'client', { address: 'relay:device2', path: () => 'relay via device2', rttMs: () => stream.rttMs, device: bob.id });
    await eventually(() => b.peer(alice.id) !== undefined, 'B kept the relayed link');
    const relayedAtA = a.peer(bob.id)!;
    const relayedAtB = b.peer(alice.id)!;

    // Both ask the other for blocks over the relayed link; nobody answers yet.
    let releaseA!: () => void;
    let releaseB!: () => void;
    a.answerRequests = new Promise((resolve) => (releaseA = resolve));
    b.answerRequests = new Promise((resolve) => (releaseB = resolve));
    const request = (path: string) => ({ folderId: folder.folderId, path, offset: 0, size: 4, hash: Buffer.alloc(32) });
    const fromB = ['x1', 'x2', 'x3'].map((path) => relayedAtA.connection.request(request(path)));
    const fromA = ['y1', 'y2'].map((path) => relayedAtB.connection.request(request(path)));
    await eventually(() => b.requestsSeen === 3 && a.requestsSeen === 2, 'the requests to arrive over the relay');

    // The direct link comes up and is kept at both ends; the relayed link stays open while its requests wait.
    a.test.manager.addAddress(b.test.address);
    await eventually(() => a.peer(bob.id)?.path() === 'tcp' && b.peer(alice.id)?.path() === 'tcp', 'the direct link kept on both sides');
    assert.equal(relayedAtA.connection.closed, false);
    assert.equal(relayedAtB.connection.closed, false);
    assert.ok(!a.test.peersClosed.includes(relayedAtA), 'the relayed peer is reported closed only once drained');
    releaseA();
    releaseB();
    assert.deepEqual((await Promise.all(fromB)).map(String), ['x1', 'x2', 'x3']);
    assert.deepEqual((await Promise.all(fromA)).map(String), ['y1', 'y2']);
    await eventually(() => relayedAtA.connection.closed && relayedAtB.connection.closed, 'the relayed link to close once drained');
    assert.equal(relayedAtA.connection.closeCode, CLOSE_SUPERSEDED);
    assert.equal(relayedAtB.connection.closeCode, CLOSE_SUPERSEDED);
    await eventually(() => a.test.peersClosed.includes(relayedAtA) && b.test.peersClosed.includes(relayedAtB), 'the relayed peers reported closed');
    await eventually(() => c.relay.relaying === 0, 'the relayed stream ended at the relay');
    // The direct link is untouched.
    assert.equal(a.peer(bob.id)?.connection.closed, false);
  } finally {
    await Promise.all([a, b, c].map((node) => node.close()));
  }
});
