// Hostile peer without any key: large frames before the handshake must not grow the daemon's memory (issue 25, item 4).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { HELLO_MAGIC, MESSAGE_CODES, PROTOCOL_VERSION, encodeMessageFrame } from '../../src/protocol/index.js';
import type { DeviceIdentity } from '../../src/keys/index.js';
import { DaemonProcess, removeDir, tempDir } from '../helpers/daemon.js';
import { closed, dialTlsAs, listenAddress, rssBytes, strangerIdentity } from './hostile-peer.js';

const MIB = 1024 * 1024;
const ATTACKERS = 32;
/** Most of a 16 MiB frame, as in the report. */
const SENT_BYTES = 16 * MIB - 64 * 1024;

/** Writes `header` then up to SENT_BYTES of filler; stops when the daemon closes. Resolves with the bytes written. */
async function flood(socket: TLSSocket, header: Buffer): Promise<number> {
  const filler = Buffer.alloc(256 * 1024, 0x41);
  const gone = closed(socket);
  let isGone = false;
  void gone.then(() => (isGone = true));
  socket.on('error', () => undefined);
  socket.write(header);
  let written = 0;
  while (written < SENT_BYTES && !isGone) {
    written += filler.length;
    if (!socket.write(filler)) {
      await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), gone]);
    }
  }
  return written;
}

/** The header of a frame of `type` announcing 16 MiB + 1 bytes. */
function bigHeader(type: number): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(16 * MIB + 1, 0);
  header[4] = type;
  return header;
}

describe('pre-handshake frames from a keyless peer', () => {
  let base: string;
  let daemon: DaemonProcess;
  let stranger: DeviceIdentity;
  let address: string;

  before(async () => {
    base = await tempDir('sec-prehs');
    daemon = new DaemonProcess(join(base, 'home'));
    await daemon.ready();
    stranger = await strangerIdentity(base);
    address = await listenAddress(daemon);
  });

  after(async () => {
    await daemon.stop();
    await removeDir(base);
  });

  test('32 TLS connections sending a 16 MiB Index frame are closed at its header; memory stays flat', async () => {
    const baseline = await rssBytes(daemon.child.pid!);
    // From four loopback addresses: at most 8 pending handshakes per address are kept (handshake-slots.ts).
    const sockets = await Promise.all(Array.from({ length: ATTACKERS }, (_, i) => dialTlsAs(stranger, address, `127.0.0.${2 + (i % 4)}`)));
    const written = await Promise.all(sockets.map((socket) => flood(socket, bigHeader(MESSAGE_CODES.Index))));
    const peak = await rssBytes(daemon.child.pid!);
    assert.ok(peak - baseline < 96 * MIB, `daemon RSS grew by ${Math.round((peak - baseline) / MIB)} MiB (from ${Math.round(baseline / MIB)} MiB) for ${written.length} connections`);
    await Promise.all(sockets.map((socket) => closed(socket)));
    assert.match(daemon.log, /Index is not allowed before the handshake completes/);
    assert.equal(daemon.child.exitCode, null);
  });

  test('a full handshake by a stranger followed at once by a 16 MiB Index is not read', async () => {
    const baseline = await rssBytes(daemon.child.pid!);
    const sockets = await Promise.all(Array.from({ length: 8 }, (_, i) => dialTlsAs(stranger, address, `127.0.0.${2 + (i % 4)}`)));
    const pipelined = Buffer.concat([
      encodeMessageFrame({ type: 'Hello', magic: HELLO_MAGIC, protocolVersion: PROTOCOL_VERSION, deviceId: stranger.id, deviceName: 'x', softwareVersion: 'x' }),
      encodeMessageFrame({ type: 'FolderClaims', tags: [randomBytes(32)] }),
      encodeMessageFrame({ type: 'FolderProofs', proofs: [] }),
      encodeMessageFrame({ type: 'ClusterState', folders: [] }),
      bigHeader(MESSAGE_CODES.Index),
    ]);
    const written = await Promise.all(sockets.map((socket) => flood(socket, pipelined)));
    const peak = await rssBytes(daemon.child.pid!);
    assert.ok(peak - baseline < 48 * MIB, `daemon RSS grew by ${Math.round((peak - baseline) / MIB)} MiB for ${written.length} connections`);
    await Promise.all(sockets.map((socket) => closed(socket)));
    assert.equal(daemon.child.exitCode, null);
  });

  test('a handshake message over 256 KiB is refused before the handshake', async () => {
    const socket = await dialTlsAs(stranger, address);
    const header = Buffer.alloc(5);
    header.writeUInt32BE(256 * 1024 + 2, 0);
    header[4] = MESSAGE_CODES.ClusterState;
    await flood(socket, header);
    await closed(socket);
    assert.match(daemon.log, /frame of type 4 with 262146 bytes exceeds 262144/);
  });
});
