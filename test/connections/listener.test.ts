// The peer listener under hostile input, the handshake bound, dialling ourselves, and close() leaving nothing behind.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { isFerryError } from '../../src/errors.js';
import { FolderKeys, type DeviceIdentity } from '../../src/keys/index.js';
import { clientTlsOptions } from '../../src/protocol/index.js';
import { TestNode, closedPort, eventually, makeIdentities, type TempIdentities } from './helpers.js';

let temp: TempIdentities;
let alice: DeviceIdentity;
let bob: DeviceIdentity;
let carol: DeviceIdentity;

before(async () => {
  temp = await makeIdentities(3);
  [alice, bob, carol] = temp.identities as [DeviceIdentity, DeviceIdentity, DeviceIdentity];
});
after(() => temp.cleanup());

function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
}

function tcpClient(port: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.resume(); // read, so the server's hang-up is noticed
  return socket;
}

function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap' || name === 'TCPServerWrap').length;
}

describe('peer listener', () => {
  test('garbage, a silent TCP client, a TLS client without certificate and a stranger do not disturb a connection', async () => {
    const folder = FolderKeys.generate();
    const a = await new TestNode(alice, [folder]).open();
    const b = await new TestNode(bob, [folder], { handshakeTimeoutMs: 300 }).open();
    try {
      a.manager.addAddress(b.address);
      await eventually(() => a.onlyPeer() !== undefined && b.onlyPeer() !== undefined, 'connected');
      const kept = b.onlyPeer()!;
      const { port } = b.manager.address();

      const garbage = tcpClient(port);
      garbage.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      const silent = tcpClient(port);
      const noCert = tls.connect({ host: '127.0.0.1', port, minVersion: 'TLSv1.3', rejectUnauthorized: false });
      noCert.on('error', () => undefined);
      noCert.resume();
      // A device with a good certificate that speaks nonsense after TLS.
      const stranger = tls.connect({ ...clientTlsOptions(carol), host: '127.0.0.1', port });
      stranger.on('error', () => undefined);
      stranger.resume();
      stranger.once('secureConnect', () => stranger.write(Buffer.alloc(64, 0xff)));

      await Promise.all([closed(garbage), closed(silent), closed(noCert), closed(stranger)]);
      await b.logLine('TLS handshake with a peer failed');
      await b.logLine('refused an incoming connection', 'no certificate');
      assert.equal(b.onlyPeer(), kept);
      assert.equal(kept.connection.closed, false);
      assert.equal(a.onlyPeer()!.connection.closed, false);
      assert.equal(b.peersSeen.length, 1);
      assert.equal(b.peersClosed.length, 0);
      // The connection still carries messages.
      await a.onlyPeer()!.connection.send({ type: 'Progress', folderId: folder.folderId, state: 'idle', needFiles: 0, needBytes: 0, globalFiles: 1, globalBytes: 2 });
      const message = await kept.connection.receive({ timeoutMs: 5_000 });
      assert.equal(message.type, 'Progress');
    } finally {
      await a.manager.close();
      await b.manager.close();
    }
  });

  test('at most maxPendingHandshakes sockets wait in a handshake; a new one evicts the oldest, so idle sockets cannot keep a peer out', async () => {
    const folder = FolderKeys.generate();
    const b = await new TestNode(bob, [folder], { maxPendingHandshakes: 2, handshakeTimeoutMs: 1_500 }).open();
    const a = new TestNode(alice, [folder]);
    try {
      const { port } = b.manager.address();
      const first = tcpClient(port);
      const second = tcpClient(port);
      await Promise.all([first, second].map((s) => new Promise((resolve) => s.once('connect', resolve))));
      await eventually(() => b.manager.pendingHandshakes === 2, 'both accepted');
      const third = tcpClient(port);
      await closed(first);
      assert.equal(second.destroyed, false);
      assert.equal(third.destroyed, false);
      await b.logLine('dropped the oldest pending handshake');
      // A real peer gets in while the silent ones still hold their slots.
      await a.open();
      a.manager.addAddress(b.address);
      await eventually(() => b.onlyPeer() !== undefined, 'connected past the idle sockets');
      second.destroy();
      third.destroy();
    } finally {
      await a.manager.close();
      await b.manager.close();
    }
  });

  test('an address that leads to this device itself is marked and not dialled again', async () => {
    const a = await new TestNode(alice, [FolderKeys.generate()]).open();
    try {
      a.manager.addAddress(a.address);
      await eventually(() => a.manager.addresses()[0]?.self === true, 'marked as self');
      const status = a.manager.addresses()[0]!;
      assert.equal(status.deviceId, undefined);
      assert.equal(status.connected, false);
      assert.equal(status.nextDialAtMs, undefined);
      // A second address that refuses is dialled again and again (backoff, then refresh): its dials are the clock
      // by which the first one would have been dialled again too.
      const refusing = `127.0.0.1:${await closedPort()}`;
      a.manager.addAddress(refusing);
      const attempts = (address: string): number => a.manager.addresses().find((s) => s.address === address)?.dialAttempts ?? 0;
      await eventually(() => attempts(refusing) >= 3, 'the refusing address dialled three times');
      assert.equal(attempts(a.address), 1);
      const before = attempts(refusing);
      a.manager.refresh();
      await eventually(() => attempts(refusing) > before, 'the refresh dialling the refusing address');
      assert.equal(attempts(a.address), 1);
      assert.equal(a.peersSeen.length, 0);
    } finally {
      await a.manager.close();
    }
  });

  test('addAddress rejects malformed addresses; removeAddress stops dialling', async () => {
    const a = await new TestNode(alice, [FolderKeys.generate()]).open();
    try {
      assert.throws(() => a.manager.addAddress('nope'), (err) => isFerryError(err, 'USAGE'));
      assert.throws(() => a.manager.addAddress('host:99999'), (err) => isFerryError(err, 'USAGE'));
      // A port with no listener: the dial fails and is retried until removed.
      const port = await closedPort();
      a.manager.addAddress(`127.0.0.1:${port}`);
      await eventually(() => (a.manager.addresses()[0]?.consecutiveFailures ?? 0) >= 2, 'failing dials');
      assert.match(a.manager.addresses()[0]!.lastError!, /ECONNREFUSED/);
      a.manager.removeAddress(`127.0.0.1:${port}`);
      assert.deepEqual(a.manager.addresses(), []);
    } finally {
      await a.manager.close();
    }
  });

  test('listening on a busy port fails with IO', async () => {
    const a = await new TestNode(alice, [FolderKeys.generate()]).open();
    const b = new TestNode(bob, [FolderKeys.generate()], { listen: a.manager.address() });
    try {
      await assert.rejects(b.open(), (err) => isFerryError(err, 'IO'));
    } finally {
      await b.manager.close();
      await a.manager.close();
    }
  });

  test('close() during a dial and with connections up leaves no sockets and is idempotent', async () => {
    const baseline = tcpSockets();
    const folder = FolderKeys.generate();
    // A listener that accepts TCP and never answers TLS: the dial to it stays in progress.
    const tarpit = net.createServer((socket) => socket.on('error', () => undefined).resume());
    await new Promise<void>((resolve) => tarpit.listen(0, '127.0.0.1', resolve));
    const a = await new TestNode(alice, [folder], { handshakeTimeoutMs: 60_000 }).open();
    const b = await new TestNode(bob, [folder]).open();
    a.manager.addAddress(b.address);
    a.manager.addAddress(`127.0.0.1:${(tarpit.address() as net.AddressInfo).port}`);
    await eventually(() => a.onlyPeer() !== undefined && b.onlyPeer() !== undefined, 'connected');
    const peer = a.onlyPeer()!;
    const closing = a.manager.close();
    assert.equal(a.manager.close(), closing);
    await closing;
    await b.manager.close();
    await new Promise<void>((resolve) => tarpit.close(() => resolve()));
    assert.equal(peer.connection.closed, true);
    assert.equal(peer.connection.closeCode, 'SHUTDOWN');
    assert.deepEqual(a.manager.peers(), []);
    assert.equal(a.peersClosed.length, 1);
    assert.equal(b.peersClosed.length, 1);
    await eventually(() => tcpSockets() === baseline, 'all sockets released');
    // Nothing happens after close.
    a.manager.addAddress(b.address);
    a.manager.refresh();
    assert.deepEqual(a.manager.addresses().filter((s) => s.connected), []);
  });
});
