// A second implementation of the protocol, written from docs/protocol.md alone (test/interop/ferry_peer.py, Python
// with Debian's cryptography, pyOpenSSL and msgpack), against a real daemon over real sockets: it derives everything
// from a key's text, passes the handshake both as TLS client and as TLS server, checks the daemon's proofs and record
// signatures, fetches a file's blocks, and serves a file the daemon fetches and writes byte for byte.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';
import { needs, PYTHON3 } from '../helpers/needs.js';

/** The peer beside this test's source (the test runs from build/test/interop/). */
const PEER = resolve(fileURLToPath(import.meta.url), '../../../../test/interop/ferry_peer.py');

const skip = needs.python(['cryptography', 'python3-cryptography'], ['OpenSSL', 'python3-openssl'], ['msgpack', 'python3-msgpack']);

interface PeerEvent {
  event: string;
  [field: string]: unknown;
}

/** ferry_peer.py ARGS as a child; its JSON lines as events, waitable one by one. */
class PythonPeer {
  readonly child: ChildProcess;
  readonly events: PeerEvent[] = [];
  stderr = '';
  private readonly exit: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(PYTHON3, [PEER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let partial = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (line.trim() !== '') this.events.push(JSON.parse(line) as PeerEvent);
    });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exit = new Promise((r) => this.child.on('close', (code) => r(code)));
  }

  event(name: string): Promise<PeerEvent> {
    return waitFor(async () => {
      const found = this.events.find((e) => e.event === name);
      if (found) return found;
      const error = this.events.find((e) => e.event === 'error');
      if (error) throw new Error(`python peer failed: ${JSON.stringify(error)}`);
      if (this.child.exitCode !== null) throw new Error(`python peer exited ${this.child.exitCode}: ${JSON.stringify(this.events)} ${this.stderr}`);
      return undefined;
    }, `python peer event ${name}`);
  }

  exited(): Promise<number | null> {
    return this.exit;
  }

  async done(): Promise<number | null> {
    const code = await this.exit;
    assert.equal(code, 0, `python peer: ${JSON.stringify(this.events)} ${this.stderr}`);
    return code;
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

interface Keys {
  folderId: string;
  rw: string;
  ro: string;
  enc: string;
}

describe('a second implementation from docs/protocol.md (Python) against a Ferry daemon', { skip }, () => {
  let root: string;
  let daemon: DaemonProcess;
  let deviceId: string;
  let listen: string;
  const peers: PythonPeer[] = [];

  before(async () => {
    root = await tempDir('py-interop');
    await mkdir(join(root, 'home'));
    daemon = new DaemonProcess(join(root, 'home'));
    await daemon.ready();
    const status = (await daemon.status()) as StatusJson & { listen: string };
    deviceId = status.device.id;
    listen = status.listen;
  });

  after(async () => {
    for (const peer of peers) peer.stop();
    await daemon?.stop();
    if (root) await removeDir(root);
  });

  async function share(dir: string): Promise<Keys> {
    const shared = await ferry(['share', dir, '--json', '--home', daemon.home]);
    assert.equal(shared.code, 0, shared.stderr);
    return JSON.parse(shared.stdout) as Keys;
  }

  function python(args: string[]): PythonPeer {
    const peer = new PythonPeer(args);
    peers.push(peer);
    return peer;
  }

  test('with the RO key: it dials, proves RO, verifies the daemon\'s RW proof and every record signature, fetches a file block by block', async () => {
    const dir = join(root, 'source');
    await mkdir(join(dir, 'nested'), { recursive: true });
    const content = randomBytes(700_000); // several blocks, one run of adjacent blocks
    await writeFile(join(dir, 'nested', 'photo.bin'), content);
    await writeFile(join(dir, 'note.txt'), 'a small file\n');
    const keys = await share(dir);
    await waitFor(async () => (await daemon.status()).folders.find((f) => f.id === keys.folderId && f.localFiles === 2 && f.state === 'idle'), 'the folder scanned');

    const out = join(root, 'fetched.bin');
    const peer = python(['fetch', '--key', keys.ro, '--connect', listen, '--path', 'nested/photo.bin', '--out', out]);
    const device = await peer.event('device');
    assert.equal(device.folderId, keys.folderId, 'the folder ID derived from the RO key text alone');
    const handshake = await peer.event('handshake');
    assert.equal(handshake.peerDeviceId, deviceId, 'the daemon\'s device ID from its certificate');
    assert.equal(handshake.peerAccess, 'rw', 'the daemon\'s RW proof (a folder-key signature) verified');
    assert.equal(handshake.ourAccess, 'ro', 'the daemon verified our RO proof');
    const index = await peer.event('index');
    assert.deepEqual(index.paths, ['nested', 'nested/photo.bin', 'note.txt']);
    assert.equal(index.signed, index.records, 'to an RO peer every record is signed, and each signature verified');
    const fetched = await peer.event('fetched');
    await peer.done();
    assert.equal(fetched.size, content.length);
    assert.equal(fetched.sha256, createHash('sha256').update(content).digest('hex'));
    assert.ok((fetched.blocks as number) > 1);
    assert.deepEqual(await readFile(out), content, 'the bytes on disk are the file\'s');
  });

  test('with an invite (G key): it proves ENC plus the grant, fetches as an RO grantee; once revoked, the daemon refuses it (GRANT_REVOKED)', async () => {
    const dir = join(root, 'granted');
    await mkdir(dir);
    const content = randomBytes(200_000);
    await writeFile(join(dir, 'shared.bin'), content);
    const keys = await share(dir);
    await waitFor(async () => (await daemon.status()).folders.find((f) => f.id === keys.folderId && f.localFiles === 1 && f.state === 'idle'), 'the folder scanned');
    const granted = await ferry(['grant', dir, '--ro', '--expires', '1h', '--json', '--home', daemon.home]);
    assert.equal(granted.code, 0, granted.stderr);
    const grant = JSON.parse(granted.stdout) as { id: string; invite: string; folderId: string };

    const out = join(root, 'granted.bin');
    const peer = python(['fetch', '--key', grant.invite, '--connect', listen, '--path', 'shared.bin', '--out', out]);
    assert.equal((await peer.event('device')).folderId, keys.folderId, 'the folder ID derived from the invite text alone');
    assert.equal((await peer.event('handshake')).ourAccess, 'ro', 'the daemon verified our grant and grant proof: RO access');
    await peer.done();
    assert.deepEqual(await readFile(out), content);

    const revoked = await ferry(['revoke', grant.id, '--home', daemon.home]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const refused = python(['fetch', '--key', grant.invite, '--connect', listen, '--path', 'shared.bin', '--out', join(root, 'refused.bin')]);
    assert.equal(await refused.exited(), 1);
    const error = refused.events.find((e) => e.event === 'error');
    assert.match(String(error?.message), /PEER_CLOSED: GRANT_REVOKED/, JSON.stringify(refused.events));
  });

  test('a proof bound to another session is refused: the daemon closes with HANDSHAKE and sends nothing of the folder', async () => {
    const dir = join(root, 'guarded');
    await mkdir(dir);
    await writeFile(join(dir, 'kept.txt'), 'not for a forger\n');
    const keys = await share(dir);
    const peer = python(['fetch', '--key', keys.ro, '--forge-proof', '--connect', listen, '--path', 'kept.txt', '--out', join(root, 'forged.txt')]);
    assert.equal(await peer.exited(), 1);
    const error = peer.events.find((e) => e.event === 'error');
    assert.match(String(error?.message), /PEER_CLOSED: HANDSHAKE/, JSON.stringify(peer.events));
    assert.equal(peer.events.find((e) => e.event === 'handshake'), undefined, 'no ClusterState reached the forger');
  });

  test('with the ENC key: it proves ENC only, verifies the signed sealed records, fetches stored blocks one per request; with R it opens them to the file', async () => {
    const dir = join(root, 'enc-source');
    await mkdir(dir);
    const content = randomBytes(400_000);
    await writeFile(join(dir, 'secret.bin'), content);
    const keys = await share(dir);
    await waitFor(async () => (await daemon.status()).folders.find((f) => f.id === keys.folderId && f.localFiles === 1 && f.state === 'idle'), 'the folder scanned');

    const out = join(root, 'opened.bin');
    const peer = python(['fetch', '--key', keys.enc, '--open-with', keys.ro, '--connect', listen, '--path', 'secret.bin', '--out', out]);
    assert.equal((await peer.event('device')).folderId, keys.folderId, 'the folder ID derived from the ENC key text alone');
    const handshake = await peer.event('handshake');
    assert.equal(handshake.ourAccess, 'enc', 'the daemon verified our ENC proof, and only that');
    const index = await peer.event('index');
    assert.equal(index.signed, index.records);
    const fetched = await peer.event('fetched');
    await peer.done();
    assert.notEqual(fetched.storedPath, 'secret.bin', 'the ENC peer sees an encrypted name');
    assert.equal(fetched.requests, fetched.blocks, 'one stored block per request');
    assert.equal(fetched.sha256, createHash('sha256').update(content).digest('hex'));
    assert.deepEqual(await readFile(out), content);
  });

  test('with the RW key as TLS client (role 1): it dials, announces an unsigned record (both proved the folder key), serves it, the daemon writes it', async () => {
    const dir = join(root, 'target-dialled');
    await mkdir(dir);
    const keys = await share(dir);
    const source = join(root, 'served-dialled.bin');
    const content = randomBytes(3_000_000); // more than one run of 2 MiB (docs/protocol.md, Blocks)
    await writeFile(source, content);
    const peer = python(['serve', '--key', keys.rw, '--connect', listen, '--path', 'dialled.bin', '--content', source, '--unsigned']);
    assert.equal((await peer.event('handshake')).ourAccess, 'rw');
    const installed = await peer.event('installed');
    await peer.done();
    assert.equal(installed.servedBytes, content.length);
    assert.ok((installed.requests as number) >= 2, `runs of at most 2 MiB: ${String(installed.requests)} requests`);
    assert.equal(installed.signed, false, 'between two devices that proved the folder key, records go unsigned');
    assert.deepEqual(await readFile(join(dir, 'dialled.bin')), content, 'the daemon wrote the file byte for byte');
  });

  test('with the RW key: Ferry dials it, it announces a signed record and serves the blocks; the daemon writes the file byte for byte', async () => {
    const dir = join(root, 'target');
    await mkdir(dir);
    const keys = await share(dir);
    const source = join(root, 'served.bin');
    const content = randomBytes(300_000);
    await writeFile(source, content);

    // First in the batch, a validly signed record with an unsafe path: skipped and reported, never a reason to stop.
    const peer = python(['serve', '--key', keys.rw, '--listen', '127.0.0.1:0', '--path', 'from-python/served.bin', '--content', source, '--bad-record']);
    const listening = await peer.event('listening');
    const added = await ferry(['peers', 'add', listening.address as string, '--home', daemon.home]);
    assert.equal(added.code, 0, added.stderr);
    const handshake = await peer.event('handshake');
    assert.equal(handshake.peerAccess, 'rw');
    assert.equal(handshake.ourAccess, 'rw', 'the daemon verified our RW proof made as TLS server (role 2)');
    const installed = await peer.event('installed');
    await peer.done();
    assert.equal(installed.servedBytes, content.length, 'the daemon fetched every byte from the Python peer');
    assert.deepEqual(installed.peerVersion, [[(listening.deviceId as string).slice(0, 12), 1]], 'the daemon announced our version back');
    assert.equal(installed.signed, true, 'the global record goes back with the signature it was published with');
    assert.deepEqual(await readFile(join(dir, 'from-python', 'served.bin')), content, 'the daemon wrote the file byte for byte');
    await assert.rejects(readFile(join(root, 'escaped.bin')), { code: 'ENOENT' }, 'the unsafe path was written nowhere');
    const folder = (await daemon.status()).folders.find((f) => f.id === keys.folderId) as unknown as { failed?: Array<{ path: string; reason: string }> };
    assert.ok(folder.failed?.some((item) => item.path === '../escaped.bin'), `the skipped record is a failed item: ${JSON.stringify(folder.failed)}`);
  });
});
