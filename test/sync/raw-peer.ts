// A scripted peer for sync tests: does the real handshake with a device, then sends whatever the test says.

import { randomBytes } from 'node:crypto';
import type { FolderKeys } from '../../src/keys/index.js';
import type { FileRecord } from '../../src/index/records.js';
import { PeerConnection } from '../../src/protocol/connection.js';
import { performHandshake } from '../../src/protocol/handshake.js';
import { recordSigningBytes } from '../../src/protocol/records.js';
import { PeerSession } from '../../src/sync/peer-session.js';
import { duplexPair } from '../protocol/helpers.js';
import { captureLogger, deviceIdOf, type Cleanups, type Device } from './helpers.js';

export interface RawPeer {
  conn: PeerConnection;
  /** The victim's side of the connection. */
  victimConn: PeerConnection;
  indexId: Buffer;
  keys: FolderKeys;
  id: string;
}

export async function rawPeer(cleanups: Cleanups, victim: Device, keys: FolderKeys, name = 'mallory', maxSequence = 10): Promise<RawPeer> {
  const [sx, sy] = duplexPair();
  const conn = new PeerConnection(sx, { closeTimeoutMs: 100 });
  const victimConn = new PeerConnection(sy, { closeTimeoutMs: 100 });
  await Promise.all([conn.open(), victimConn.open()]);
  const ekm = randomBytes(32);
  const indexId = randomBytes(8);
  const id = deviceIdOf(name);
  const [, victimSide] = await Promise.all([
    performHandshake(conn, {
      role: 'client',
      ekm,
      deviceId: id,
      deviceName: name,
      softwareVersion: 'test',
      peerDeviceId: victim.id,
      folders: [keys],
      folderState: () => ({ indexId, maxSequence, receivedIndexId: Buffer.alloc(8), receivedSequence: 0 }),
    }),
    performHandshake(victimConn, {
      role: 'server',
      ekm,
      deviceId: victim.id,
      deviceName: victim.name,
      softwareVersion: 'test',
      peerDeviceId: id,
      folders: [victim.keys],
    }),
  ]);
  const session = new PeerSession(victimConn, victimSide, (hex) => (hex === victim.keys.folderIdHex ? victim.sync : undefined), captureLogger().logger);
  await session.start();
  cleanups.push(() => session.close());
  return { conn, victimConn, indexId, keys, id };
}

export function record(path: string, fields: Partial<FileRecord> = {}): FileRecord {
  return {
    path,
    type: 'file',
    size: 0,
    mode: 0o644,
    mtimeMs: 1_700_000_000_000,
    inode: 0,
    version: { MALLORY: 1 },
    modifiedBy: 'MALLORY',
    blockSize: 131072,
    blocks: [],
    deleted: false,
    sequence: 1,
    ...fields,
  };
}

export function signed(keys: FolderKeys, r: FileRecord): FileRecord {
  return { ...r, signature: keys.sign(recordSigningBytes(keys.folderId, r)) };
}

/** Sends records as one IndexUpdate (wire objects may be passed as records to bypass the encoder's types). */
export async function sendRecords(peer: RawPeer, records: FileRecord[], first = records[0]?.sequence ?? 1, last = records.at(-1)?.sequence ?? first): Promise<void> {
  await peer.conn.send({
    type: 'IndexUpdate',
    folderId: peer.keys.folderId,
    indexId: peer.indexId,
    firstSequence: first,
    lastSequence: last,
    records,
  });
}

/** Answers every block request of the peer with `error` (a source that has nothing). */
export function answerNothing(peer: RawPeer): void {
  void (async () => {
    for await (const message of peer.conn) {
      if (message.type === 'Request') await peer.conn.send({ type: 'Response', id: message.id, error: 'NO_SUCH_FILE' }).catch(() => undefined);
    }
  })().catch(() => undefined);
}
