// Tests for the device identity: creation, file modes, reload, damage handling, and mutual TLS 1.3 with it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { isFerryError } from '../../src/errors.js';
import {
  deviceIdFromCertificate,
  isDeviceId,
  loadOrCreateDeviceIdentity,
  shortIdOf,
  type DeviceIdentity,
} from '../../src/keys/index.js';
import { createLogger } from '../../src/util/log.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'ferry-keys-device-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirCount = 0;
function freshDir(): string {
  return join(root, `home-${++dirCount}`, 'device');
}

function isIdentityError(err: unknown): boolean {
  assert.ok(isFerryError(err, 'IO'), `expected an IO FerryError, got ${String(err)}`);
  assert.match(err.message, /device identity/);
  return true;
}

describe('device identity on disk', () => {
  test('is created once with private modes and reloads identically', async () => {
    const dir = freshDir();
    const lines: string[] = [];
    const logger = createLogger({ component: 'test', level: 'debug', sink: { write: (line) => lines.push(line) } });
    const identity = await loadOrCreateDeviceIdentity(dir, { logger });
    assert.ok(lines.some((line) => line.includes('created device identity')));

    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, 'key.pem'))).mode & 0o777, 0o600);
    assert.equal(await readFile(join(dir, 'key.pem'), 'utf8'), identity.keyPem);
    assert.equal(await readFile(join(dir, 'cert.pem'), 'utf8'), identity.certPem);

    assert.ok(isDeviceId(identity.id), identity.id);
    assert.equal(identity.id.length, 52);
    assert.equal(identity.shortId, identity.id.slice(0, 12));
    assert.equal(shortIdOf(identity.id), identity.shortId);
    assert.equal(identity.name, hostname());

    const again = await loadOrCreateDeviceIdentity(dir, { name: 'nas-1' });
    assert.deepEqual(again, { ...identity, name: 'nas-1' });
  });

  test('the ID is the one computed from the certificate, in object or DER form', async () => {
    const identity = await loadOrCreateDeviceIdentity(freshDir());
    const cert = new X509Certificate(identity.certPem);
    assert.equal(deviceIdFromCertificate(cert), identity.id);
    assert.equal(deviceIdFromCertificate(cert.raw), identity.id);
    assert.equal(cert.publicKey.asymmetricKeyType, 'ed25519');
    assert.ok(cert.verify(cert.publicKey), 'self-signed');
    assert.ok(cert.checkPrivateKey(createPrivateKey(identity.keyPem)));
    assert.ok(Date.parse(cert.validTo) > Date.now() + 50 * 365 * 24 * 3600 * 1000, cert.validTo);
    assert.ok(Date.parse(cert.validFrom) <= Date.now());
    assert.notEqual((await loadOrCreateDeviceIdentity(freshDir())).id, identity.id);
  });

  test('damaged or mismatched files are a clear error and are left alone', async () => {
    const dir = freshDir();
    const identity = await loadOrCreateDeviceIdentity(dir);
    const other = await loadOrCreateDeviceIdentity(freshDir());
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');

    await writeFile(keyPath, 'not a key');
    await assert.rejects(loadOrCreateDeviceIdentity(dir), isIdentityError);
    assert.equal(await readFile(keyPath, 'utf8'), 'not a key');

    await writeFile(keyPath, identity.keyPem);
    await writeFile(certPath, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    await assert.rejects(loadOrCreateDeviceIdentity(dir), isIdentityError);

    await writeFile(certPath, other.certPem);
    await assert.rejects(loadOrCreateDeviceIdentity(dir), /does not belong/);

    await writeFile(certPath, identity.certPem);
    await unlink(keyPath);
    await assert.rejects(loadOrCreateDeviceIdentity(dir), /key\.pem is missing/);
    assert.equal(await readFile(certPath, 'utf8'), identity.certPem);
  });

  test('an unreadable file is an IO error, not a new identity', async () => {
    const dir = freshDir();
    await loadOrCreateDeviceIdentity(dir);
    const keyPath = join(dir, 'key.pem');
    await rm(keyPath);
    // A directory where the key should be cannot be read as a file, even by root.
    await mkdir(keyPath);
    await assert.rejects(loadOrCreateDeviceIdentity(dir), (err: unknown) => isFerryError(err, 'IO'));
  });

  test('a missing certificate is re-issued for the same key, keeping the device ID', async () => {
    const dir = freshDir();
    const identity = await loadOrCreateDeviceIdentity(dir);
    await unlink(join(dir, 'cert.pem'));
    const again = await loadOrCreateDeviceIdentity(dir);
    assert.equal(again.id, identity.id);
    assert.equal(again.keyPem, identity.keyPem);
    assert.notEqual(again.certPem, identity.certPem);
    assert.equal(deviceIdFromCertificate(new X509Certificate(again.certPem)), identity.id);
  });

  test('a key readable by others is restricted to the owner', async () => {
    const dir = freshDir();
    const identity = await loadOrCreateDeviceIdentity(dir);
    await chmod(join(dir, 'key.pem'), 0o644);
    assert.equal((await loadOrCreateDeviceIdentity(dir)).id, identity.id);
    assert.equal((await stat(join(dir, 'key.pem'))).mode & 0o777, 0o600);
  });

  test('shortIdOf refuses text that is not a device ID', () => {
    assert.throws(() => shortIdOf('abc'), (err: unknown) => isFerryError(err, 'KEY_INVALID'));
  });
});

describe('mutual TLS 1.3 between two device identities', () => {
  const TLS_OPTIONS = {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphersuites: 'TLS_AES_256_GCM_SHA384',
  } as const;
  const EXPORTER_LABEL = 'EXPORTER-ferry-proof';

  interface SideView {
    peerId: string;
    cipher: string;
    protocol: string | null;
    exported: Buffer;
  }

  function viewOf(socket: tls.TLSSocket): SideView {
    const peerCert = socket.getPeerX509Certificate();
    assert.ok(peerCert, 'peer presented a certificate');
    return {
      peerId: deviceIdFromCertificate(peerCert),
      cipher: socket.getCipher().name,
      protocol: socket.getProtocol(),
      exported: socket.exportKeyingMaterial(32, EXPORTER_LABEL, Buffer.alloc(0)),
    };
  }

  async function handshake(server: DeviceIdentity, client: DeviceIdentity): Promise<[SideView, SideView]> {
    const tlsServer = tls.createServer({
      ...TLS_OPTIONS,
      key: server.keyPem,
      cert: server.certPem,
      requestCert: true,
      rejectUnauthorized: false,
    });
    try {
      const serverView = new Promise<SideView>((resolve, reject) => {
        tlsServer.once('secureConnection', (socket: tls.TLSSocket) => {
          try {
            const view = viewOf(socket);
            // Reply so the client knows the server accepted it (TLS 1.3 client auth finishes after the client's handshake).
            socket.end('ok');
            resolve(view);
          } catch (err) {
            reject(err);
          }
        });
        tlsServer.once('tlsClientError', reject);
      });
      tlsServer.listen(0, '127.0.0.1');
      await once(tlsServer, 'listening');
      const { port } = tlsServer.address() as AddressInfo;
      const socket = tls.connect({
        ...TLS_OPTIONS,
        host: '127.0.0.1',
        port,
        key: client.keyPem,
        cert: client.certPem,
        rejectUnauthorized: false,
      });
      try {
        await once(socket, 'secureConnect');
        const clientView = viewOf(socket);
        socket.setEncoding('utf8');
        let reply = '';
        socket.on('data', (chunk: string) => (reply += chunk));
        await once(socket, 'end');
        assert.equal(reply, 'ok');
        return [await serverView, clientView];
      } finally {
        socket.destroy();
      }
    } finally {
      tlsServer.close();
    }
  }

  test('each side derives the other device ID from its certificate; cipher and exporter agree', async () => {
    const alice = await loadOrCreateDeviceIdentity(freshDir(), { name: 'alice' });
    const bob = await loadOrCreateDeviceIdentity(freshDir(), { name: 'bob' });
    const [atServer, atClient] = await handshake(alice, bob);
    assert.equal(atServer.peerId, bob.id);
    assert.equal(atClient.peerId, alice.id);
    for (const view of [atServer, atClient]) {
      assert.equal(view.protocol, 'TLSv1.3');
      assert.equal(view.cipher, 'TLS_AES_256_GCM_SHA384');
      assert.equal(view.exported.length, 32);
    }
    assert.deepEqual(atServer.exported, atClient.exported);

    // A second session between the same devices exports different material: proofs cannot be replayed.
    const [again] = await handshake(alice, bob);
    assert.notDeepEqual(again.exported, atServer.exported);
  });

  test('the certificates also work pinned as the only trusted CA, and a stranger is refused', async () => {
    const alice = await loadOrCreateDeviceIdentity(freshDir());
    const bob = await loadOrCreateDeviceIdentity(freshDir());
    const mallory = await loadOrCreateDeviceIdentity(freshDir());
    const tlsServer = tls.createServer({
      ...TLS_OPTIONS,
      key: alice.keyPem,
      cert: alice.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      ca: [bob.certPem],
    });
    tlsServer.on('secureConnection', (socket: tls.TLSSocket) => socket.end(socket.authorized ? 'ok' : 'no'));
    tlsServer.on('tlsClientError', () => {}); // the stranger's handshake fails here
    tlsServer.listen(0, '127.0.0.1');
    await once(tlsServer, 'listening');
    const { port } = tlsServer.address() as AddressInfo;
    const talk = async (client: DeviceIdentity): Promise<string> => {
      const socket = tls.connect({
        ...TLS_OPTIONS,
        host: '127.0.0.1',
        port,
        key: client.keyPem,
        cert: client.certPem,
        ca: [alice.certPem],
        checkServerIdentity: () => undefined, // pinned by the CA list, not by host name
      });
      let reply = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (reply += chunk));
      socket.on('error', () => {});
      await once(socket, 'close');
      return reply;
    };
    try {
      assert.equal(await talk(bob), 'ok');
      assert.equal(await talk(mallory), '');
    } finally {
      tlsServer.close();
    }
  });
});
