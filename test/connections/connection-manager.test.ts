// ConnectionManager over real TLS on loopback: connect, refuse strangers, one link per pair, reconnect, refresh.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLOSE_DUPLICATE, CLOSE_SUPERSEDED } from '../../src/connections/index.js';
import { FolderKeys, type DeviceIdentity } from '../../src/keys/index.js';
import { TEST_BACKOFF, TestNode, closedPort, eventually, makeIdentities, sameConnection, type TempIdentities } from './helpers.js';

let temp: TempIdentities;
let alice: DeviceIdentity;
let bob: DeviceIdentity;

before(async () => {
  temp = await makeIdentities(2);
  [alice, bob] = temp.identities as [DeviceIdentity, DeviceIdentity];
});
after(() => temp.cleanup());

/** Opens nodes and closes them after `body`, whatever happens. */
async function withNodes(nodes: TestNode[], body: () => Promise<void>): Promise<void> {
  try {
    for (const node of nodes) await node.open();
    await body();
  } finally {
    await Promise.all(nodes.map((node) => node.manager.close()));
  }
}

describe('ConnectionManager', () => {
  test('two devices sharing a folder connect through addAddress and both see the peer and the folder', async () => {
    const folder = FolderKeys.generate();
    const a = new TestNode(alice, [folder]);
    const b = new TestNode(bob, [FolderKeys.parse(folder.format('ro'))]);
    await withNodes([a, b], async () => {
      a.manager.addAddress(b.address);
      a.manager.addAddress(b.address); // idempotent
      await eventually(() => a.peersSeen.length === 1 && b.peersSeen.length === 1, 'both onPeer');
      const [atA] = a.peersSeen;
      const [atB] = b.peersSeen;
      assert.equal(atA!.deviceId, bob.id);
      assert.equal(atA!.deviceName, 'device1');
      assert.equal(atA!.direction, 'out');
      assert.equal(atA!.source, 'known');
      assert.equal(atB!.deviceId, alice.id);
      assert.equal(atB!.direction, 'in');
      assert.equal(atB!.source, 'incoming');
      assert.ok(sameConnection(atA!, atB!));
      assert.deepEqual(atA!.handshake.folders.map((f) => [f.keys.folderIdHex, f.peerAccess]), [[folder.folderIdHex, 'ro']]);
      assert.deepEqual(atB!.handshake.folders.map((f) => [f.keys.folderIdHex, f.peerAccess]), [[folder.folderIdHex, 'rw']]);
      const [status] = a.manager.addresses();
      assert.equal(a.manager.addresses().length, 1);
      assert.equal(status!.address, b.address);
      assert.equal(status!.deviceId, bob.id);
      assert.equal(status!.connected, true);
      assert.ok(status!.lastSeenMs! > 0);
      assert.deepEqual(a.manager.peers().map((p) => p.deviceId), [bob.id]);
    });
    // close() reported the end of each kept connection
    assert.equal(a.peersClosed.length, 1);
    assert.equal(b.peersClosed.length, 1);
  });

  test('a device with no folder in common is refused on both sides, the reason logged, the dialler backing off', async () => {
    const a = new TestNode(alice, [FolderKeys.generate()]);
    const b = new TestNode(bob, [FolderKeys.generate()]);
    await withNodes([a, b], async () => {
      a.manager.addAddress(b.address);
      await eventually(() => (a.manager.addresses()[0]?.consecutiveFailures ?? 0) >= 3, 'three failed dials');
      const [status] = a.manager.addresses();
      assert.equal(status!.connected, false);
      assert.equal(status!.deviceId, bob.id);
      assert.match(status!.lastError!, /no folder in common|NO_SHARED_FOLDER/);
      // full-jitter backoff: after the third failure the delay is at least half of 4 × initial
      assert.ok(status!.retryDelayMs! >= TEST_BACKOFF.initialMs * 2, `retry delay ${status!.retryDelayMs}`);
      assert.ok(status!.retryDelayMs! <= TEST_BACKOFF.maxMs);
      assert.ok(status!.nextDialAtMs !== undefined || a.manager.addresses()[0]!.dialAttempts > status!.dialAttempts);
      assert.equal(a.peersSeen.length, 0);
      assert.equal(b.peersSeen.length, 0);
      assert.deepEqual(a.manager.peers(), []);
      assert.deepEqual(b.manager.peers(), []);
      assert.ok(a.logged('dial failed'));
      assert.ok(b.logged('refused an incoming connection') || b.logged('incoming connection failed'));
      assert.ok(b.logs.some((line) => /no folder in common|NO_SHARED_FOLDER/.test(line)));
    });
  });

  test('both devices dialling each other at once end with the same single connection, which stays up', async () => {
    const folder = FolderKeys.generate();
    const a = new TestNode(alice, [folder]);
    const b = new TestNode(bob, [folder]);
    await withNodes([a, b], async () => {
      a.manager.addAddress(b.address);
      b.manager.addAddress(a.address);
      await eventually(() => {
        const atA = a.onlyPeer();
        const atB = b.onlyPeer();
        return atA !== undefined && atB !== undefined && sameConnection(atA, atB);
      }, 'one shared connection');
      const atA = a.onlyPeer()!;
      const atB = b.onlyPeer()!;
      // The kept link is the one dialled by the smaller device ID.
      const dialler = alice.id < bob.id ? alice.id : bob.id;
      assert.equal(atA.direction, dialler === alice.id ? 'out' : 'in');
      // Let any redial timers run a few times: nothing changes. The clock: an address that refuses, dialled by each
      // side until its backoff has reached the maximum (50, 100, 200, 400, 400 ms).
      const refusing = `127.0.0.1:${await closedPort()}`;
      const attempts = (node: TestNode): number => node.manager.addresses().find((s) => s.address === refusing)?.dialAttempts ?? 0;
      a.manager.addAddress(refusing);
      b.manager.addAddress(refusing);
      await eventually(() => attempts(a) >= 6 && attempts(b) >= 6, 'six dials of the refusing address on each side');
      assert.equal(a.onlyPeer(), atA);
      assert.equal(b.onlyPeer(), atB);
      assert.equal(atA.connection.closed, false);
      assert.ok(a.manager.addresses()[0]!.connected);
      assert.ok(b.manager.addresses()[0]!.connected);
      // Every onPeer beyond the kept one was followed by its onPeerClosed.
      assert.equal(a.peersSeen.length - a.peersClosed.length, 1);
      assert.equal(b.peersSeen.length - b.peersClosed.length, 1);
      // A second link is refused (DUPLICATE), or, when the first had been kept already, the first drains and closes (SUPERSEDED).
      for (const closed of [...a.peersClosed, ...b.peersClosed]) assert.ok([CLOSE_DUPLICATE, CLOSE_SUPERSEDED].includes(closed.connection.closeCode!), closed.connection.closeCode);
    });
  });

  test('after the peer restarts on the same port, the dialler reconnects by itself', async () => {
    const folder = FolderKeys.generate();
    const a = new TestNode(alice, [folder]);
    const b1 = new TestNode(bob, [folder]);
    await b1.open();
    const port = b1.manager.address().port;
    let b2: TestNode | undefined;
    try {
      await withNodes([a], async () => {
        a.manager.addAddress(b1.address);
        await eventually(() => a.onlyPeer() !== undefined && b1.onlyPeer() !== undefined, 'first connection');
        const first = a.onlyPeer()!;
        await b1.manager.close();
        await eventually(() => a.peersClosed.length === 1, 'a notices the peer left');
        assert.equal(a.peersClosed[0], first);
        assert.equal(first.connection.closeCode, 'SHUTDOWN');
        b2 = new TestNode(bob, [folder], { listen: { host: '127.0.0.1', port } });
        await b2.open();
        await eventually(() => a.onlyPeer() !== undefined && b2!.onlyPeer() !== undefined, 'reconnected');
        assert.notEqual(a.onlyPeer(), first);
        assert.equal(a.onlyPeer()!.deviceId, bob.id);
        assert.equal(a.peersSeen.length, 2);
        assert.equal(b2.peersSeen[0]!.deviceId, alice.id);
      });
    } finally {
      await b1.manager.close();
      await b2?.manager.close();
    }
  });

  test('refresh() after a folder is added on both sides redoes the handshake with the new folder', async () => {
    const first = FolderKeys.generate();
    const second = FolderKeys.generate();
    const a = new TestNode(alice, [first]);
    const b = new TestNode(bob, [first]);
    await withNodes([a, b], async () => {
      a.manager.addAddress(b.address);
      await eventually(() => a.onlyPeer() !== undefined && b.onlyPeer() !== undefined, 'connected');
      const before = a.onlyPeer()!;
      assert.deepEqual(before.handshake.folders.map((f) => f.keys.folderIdHex), [first.folderIdHex]);

      a.folders.push(second);
      b.folders.push(second);
      a.manager.refresh();
      b.manager.refresh();
      const hasBoth = (node: TestNode): boolean => {
        const peer = node.onlyPeer();
        return peer !== undefined && peer.handshake.folders.length === 2;
      };
      await eventually(() => hasBoth(a) && hasBoth(b) && sameConnection(a.onlyPeer()!, b.onlyPeer()!), 'new handshake with both folders');
      assert.ok(before.connection.closed);
      assert.deepEqual(
        a.onlyPeer()!.handshake.folders.map((f) => f.keys.folderIdHex).sort(),
        [first.folderIdHex, second.folderIdHex].sort(),
      );
    });
  });

  test('a dial refused while the dialler added the shared folder is tried again at once, not after its backoff', async () => {
    const folder = FolderKeys.generate();
    const slowBackoff = { initialMs: 60_000, maxMs: 120_000 };
    let added = false;
    const a: TestNode = new TestNode(alice, [], {
      backoff: slowBackoff,
      // The handshake reads the folder set here; the folder arrives (and refresh() runs) while it goes on.
      folders: () => {
        const now = [...a.folders];
        if (!added) {
          added = true;
          setImmediate(() => {
            a.folders.push(folder);
            a.manager.refresh();
          });
        }
        return now;
      },
    });
    const b = new TestNode(bob, [folder], { backoff: slowBackoff });
    await withNodes([a, b], async () => {
      a.manager.addAddress(b.address);
      await eventually(() => a.onlyPeer() !== undefined && b.onlyPeer() !== undefined, 'connected with the new folder');
      assert.ok(a.logged('dial under an older folder set failed'), 'the first dial was refused');
      assert.deepEqual(a.onlyPeer()!.handshake.folders.map((f) => f.keys.folderIdHex), [folder.folderIdHex]);
    });
  });

  test('refresh() on the accepting side alone makes the dialler reconnect at once', async () => {
    const first = FolderKeys.generate();
    const second = FolderKeys.generate();
    const a = new TestNode(alice, [first, second]);
    const b = new TestNode(bob, [first]);
    await withNodes([a, b], async () => {
      a.manager.addAddress(b.address);
      await eventually(() => b.onlyPeer() !== undefined, 'connected');
      b.folders.push(second);
      b.manager.refresh(); // b only accepted: a redials on the RECONNECT close code
      await eventually(() => b.onlyPeer()?.handshake.folders.length === 2, 'b sees both folders');
      assert.equal(b.onlyPeer()!.direction, 'in');
    });
  });
});

describe('links made by hole punching', () => {
  test('both ends say "udp punched" also when only one of them saw the simultaneous open', async () => {
    // The race of a punch: both dial each other, but A's SYNs never reach B (dropped here, as a NAT
    // does before B's own SYN opened it), so the one link is B's dial, which A accepts. A knows it was
    // punched (it was dialling B when B's SYN came); B never sees a SYN of A's: A's Hello tells it.
    const folder = FolderKeys.generate();
    const a = new TestNode(alice, [folder]);
    const b = new TestNode(bob, [folder]);
    await withNodes([a, b], async () => {
      const socketA = a.manager.udpSocket()!;
      const send = socketA.send.bind(socketA);
      socketA.send = (buf: Buffer, port: number, host: string) => {
        if (buf[0] === 0x41) return; // µTP ST_SYN, version 1
        send(buf, port, host);
      };
      const toA = a.manager.address();
      const toB = b.manager.address();
      const stopA = new AbortController();
      const dialA = a.manager.punchDial(bob.id, { host: toB.host, port: toB.port }, 'introduced via test', stopA.signal);
      const result = await b.manager.punchDial(alice.id, { host: toA.host, port: toA.port }, 'introduced via test');
      assert.deepEqual(result, { connected: true });
      stopA.abort();
      await dialA;
      await eventually(() => a.onlyPeer() !== undefined, 'A to keep the link');
      assert.equal(a.onlyPeer()!.path(), 'udp punched', 'the accepting end saw the punch');
      assert.equal(b.onlyPeer()?.path(), 'udp punched', "the dialling end learns it from the peer's Hello");
    });
  });
});

describe('redial backoff after links that close at once', () => {
  test('a peer that closes every link right after the handshake is redialled ever more slowly, and the close is shown', async () => {
    const folder = FolderKeys.generate();
    const a = new TestNode(alice, [folder]);
    const b = new TestNode(bob, [folder], { onPeer: (peer) => void peer.connection.close('PROTOCOL', 'test: every link refused') });
    await withNodes([a, b], async () => {
      a.manager.addAddress(b.address);
      // Each link counts as a success of the dial; only a stable link would reset the backoff.
      await eventually(() => a.peersClosed.length >= 4, 'four links closed by the peer');
      await eventually(() => (a.manager.addresses()[0]?.retryDelayMs ?? 0) >= TEST_BACKOFF.initialMs * 2, 'the redial delay grows');
      const [status] = a.manager.addresses();
      assert.match(status!.lastClose ?? '', /PROTOCOL: .*every link refused/);
      assert.equal(status!.lastCloseStable, false);
      assert.ok(a.logged('link closed soon after it opened'));
    });
  });

  test('a link that stayed up long enough resets the backoff', async () => {
    const folder = FolderKeys.generate();
    const a = new TestNode(alice, [folder], { stableLinkMs: 0 });
    const b = new TestNode(bob, [folder], { onPeer: (peer) => void peer.connection.close('PROTOCOL', 'test') });
    await withNodes([a, b], async () => {
      a.manager.addAddress(b.address);
      await eventually(() => a.peersClosed.length >= 4, 'four links closed by the peer');
      const [status] = a.manager.addresses();
      assert.equal(status!.lastCloseStable, true);
      assert.ok(status!.retryDelayMs! <= TEST_BACKOFF.initialMs, `retry delay ${status!.retryDelayMs}`);
    });
  });
});
