// The application handshake after TLS: Hello, blinded FolderClaims, FolderProofs, ClusterState; result = shared folders.

import { FerryError, isFerryError } from '../errors.js';
import type { FolderKeys } from '../keys/index.js';
import type { Access } from '../keys/types.js';
import type { PeerConnection } from './connection.js';
import { CLUSTER_FEATURES, HELLO_MAGIC, LIMITS, PROTOCOL_VERSION, type ClusterFolder, type Message } from './messages.js';
import type { Grant } from '../keys/index.js';
import { GrantRefusedError, makeClaims, makeProof, matchClaims, otherRole, verifyProof, type Role } from './proofs.js';

/** @default of HandshakeOptions.timeoutMs */
export const HANDSHAKE_TIMEOUT_MS = 20_000;

/** Close code sent to a peer with which we share no folder. */
export const NO_SHARED_FOLDER = 'NO_SHARED_FOLDER';

/** Where our index of a folder stands, as told to one peer in ClusterState. */
export interface FolderSyncState {
  indexId: Buffer;
  maxSequence: number;
  /** The peer's index ID we last received from, zeros if none. */
  receivedIndexId: Buffer;
  receivedSequence: number;
}

const NO_INDEX = Buffer.alloc(LIMITS.indexIdBytes);
const EMPTY_STATE: FolderSyncState = { indexId: NO_INDEX, maxSequence: 0, receivedIndexId: NO_INDEX, receivedSequence: 0 };

export interface HandshakeOptions {
  role: Role;
  /** Exported keying material of this TLS session (sessionKeyingMaterial). */
  ekm: Buffer;
  deviceId: string;
  deviceName: string;
  softwareVersion: string;
  /** The peer's address as we see it (IP-literal HOST:PORT), told to it in our Hello. */
  observed?: string;
  /** Our end of this UDP link came from a simultaneous open (a punch), told to the peer in our Hello. */
  punched?: boolean;
  /** The peer's device ID as its TLS certificate proves it. */
  peerDeviceId: string;
  folders: readonly FolderKeys[];
  folderState?: (folder: FolderKeys, peerDeviceId: string) => FolderSyncState;
  /** Whether a grant of a folder was revoked (grants presented by grantees are refused then). */
  isGrantRevoked?: (folder: FolderKeys, grantIdHex: string) => boolean;
  /** @default HANDSHAKE_TIMEOUT_MS */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** The peer and we hold no folder in common: closed with NO_SHARED_FOLDER. */
export class NoSharedFolderError extends FerryError {
  constructor(detail: string) {
    super('HANDSHAKE', detail);
  }
}

export interface PeerHello {
  deviceId: string;
  deviceName: string;
  softwareVersion: string;
  /** Where the peer says it sees us (a claim, unverified: use it as a hint only). */
  observed?: string;
  /** The peer's end of this UDP link came from a simultaneous open (its Hello said so). */
  punched?: boolean;
  /** What its ClusterState listed in `features` (empty from older peers). */
  features?: string[];
}

export interface SharedFolder {
  keys: FolderKeys;
  /** What the peer proved to us. */
  peerAccess: Access;
  /** The peer proved it holds the folder key (an RW key, not a grant). */
  peerHoldsFolderKey: boolean;
  /** The grant that gave the peer its access, if it is a grantee (valid now; watch its expiry). */
  peerGrant?: Grant;
  /** What the peer says of itself and of us (its peerAccess is the access it verified for us). */
  peerState: ClusterFolder;
}

export interface HandshakeResult {
  peer: PeerHello;
  folders: SharedFolder[];
}

/**
 * Runs the handshake on an opened connection. Each step is sent before the peer's is awaited,
 * so both sides proceed in lockstep without deadlock. Throws HANDSHAKE (and closes the
 * connection with a reason) when the peer is foreign, lies about its ID, fails a proof, or
 * shares no folder; CLOSED when the peer closes first; TIMEOUT after timeoutMs.
 */
export async function performHandshake(conn: PeerConnection, options: HandshakeOptions): Promise<HandshakeResult> {
  const timeoutMs = options.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, deadline.signal]) : deadline.signal;
  try {
    return await handshakeSteps(conn, options, signal);
  } catch (err) {
    const error = deadline.signal.aborted && isFerryError(err, 'ABORTED')
      ? new FerryError('TIMEOUT', `handshake took longer than ${timeoutMs} ms`)
      : err;
    if (isFerryError(error)) await conn.close(error instanceof NoSharedFolderError ? NO_SHARED_FOLDER : error.code, error.message);
    else await conn.close('INTERNAL', String(error));
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function expect<T extends Message['type']>(conn: PeerConnection, type: T, signal: AbortSignal): Promise<Extract<Message, { type: T }>> {
  const message = await conn.receive({ signal });
  if (message.type !== type) throw new FerryError('PROTOCOL', `expected ${type} during the handshake, got ${message.type}`);
  return message as Extract<Message, { type: T }>;
}

async function handshakeSteps(conn: PeerConnection, options: HandshakeOptions, signal: AbortSignal): Promise<HandshakeResult> {
  const { role, ekm, peerDeviceId, folders } = options;
  const peerRole = otherRole(role);
  if (peerDeviceId === options.deviceId) throw new FerryError('HANDSHAKE', 'connected to ourselves');

  // 1. Hello: who we are; the peer's must match its certificate. Name and version wait for our
  // ClusterState, which only a peer that proved a folder gets.
  await conn.send({
    type: 'Hello',
    magic: HELLO_MAGIC,
    protocolVersion: PROTOCOL_VERSION,
    deviceId: options.deviceId,
    deviceName: '',
    softwareVersion: '',
    ...(options.observed ? { observed: options.observed } : {}),
    ...(options.punched ? { punched: true } : {}),
  });
  // 2. Blinded claims, sent before reading the peer's Hello so neither side waits on the other.
  const claims = makeClaims(folders, ekm, role);
  await conn.send({ type: 'FolderClaims', tags: claims.tags });

  const hello = await expect(conn, 'Hello', signal);
  if (hello.magic !== HELLO_MAGIC) throw new FerryError('HANDSHAKE', 'peer is not speaking the Ferry protocol');
  if (hello.protocolVersion !== PROTOCOL_VERSION) {
    throw new FerryError('HANDSHAKE', `peer speaks protocol version ${hello.protocolVersion}, we speak ${PROTOCOL_VERSION}`);
  }
  if (hello.deviceId !== peerDeviceId) throw new FerryError('HANDSHAKE', "peer's Hello names a device other than its certificate");
  const peer: PeerHello = { deviceId: hello.deviceId, deviceName: hello.deviceName, softwareVersion: hello.softwareVersion };
  if (hello.observed) peer.observed = hello.observed;
  if (hello.punched) peer.punched = true;

  // 3. Proofs, only for folders whose tag the peer sent: a stranger gets nothing.
  const peerClaims = await expect(conn, 'FolderClaims', signal);
  const matched = matchClaims(peerClaims.tags, folders, ekm, peerRole);
  const proofs = [...matched].map(([tagHex, keys]) => makeProof(keys, Buffer.from(tagHex, 'hex'), ekm, role, options.deviceId));
  await conn.send({ type: 'FolderProofs', proofs });

  // 4. Verify the peer's proofs; each must name one of the tags we sent.
  const peerProofs = await expect(conn, 'FolderProofs', signal);
  const proven = new Map<string, Omit<SharedFolder, 'peerState'>>();
  let refused: GrantRefusedError | undefined;
  for (const proof of peerProofs.proofs) {
    const keys = claims.byTag.get(proof.tag.toString('hex'));
    if (!keys) throw new FerryError('HANDSHAKE', 'peer sent a proof for a tag we did not send (replayed or forged)');
    const isRevoked = (grantIdHex: string): boolean => options.isGrantRevoked?.(keys, grantIdHex) ?? false;
    try {
      const verified = verifyProof(keys, proof, ekm, peerRole, peerDeviceId, isRevoked);
      proven.set(keys.folderIdHex, {
        keys,
        peerAccess: verified.access,
        peerHoldsFolderKey: verified.folderKey,
        ...(verified.grant ? { peerGrant: verified.grant } : {}),
      });
    } catch (err) {
      // A grantee whose grant is over gets nothing of that folder (not even ENC access).
      if (!(err instanceof GrantRefusedError)) throw err;
      refused ??= err;
    }
  }
  if (proven.size === 0) {
    if (refused) throw refused;
    throw new NoSharedFolderError('no folder in common: the peer proved none we hold');
  }

  // 5. ClusterState: which folders we accepted (by ID: the peer proved it holds them) and where our index stands.
  const describe = options.folderState ?? (() => EMPTY_STATE);
  await conn.send({
    type: 'ClusterState',
    folders: [...proven.values()].map(({ keys, peerAccess }) => ({
      folderId: keys.folderId,
      peerAccess,
      ...describe(keys, peerDeviceId),
    })),
    deviceName: options.deviceName,
    softwareVersion: options.softwareVersion,
    features: [...CLUSTER_FEATURES],
  });
  const peerState = await expect(conn, 'ClusterState', signal);
  // Older peers named themselves in their Hello only.
  if (peerState.deviceName !== undefined) peer.deviceName = peerState.deviceName;
  if (peerState.softwareVersion !== undefined) peer.softwareVersion = peerState.softwareVersion;
  if (peerState.features !== undefined) peer.features = peerState.features;

  // Shared = we accepted it and so did the peer; anything else the peer lists is ignored.
  const shared: SharedFolder[] = [];
  for (const state of peerState.folders) {
    const entry = proven.get(state.folderId.toString('hex'));
    if (entry) shared.push({ ...entry, peerState: state });
  }
  if (shared.length === 0) throw new NoSharedFolderError('no folder in common: the peer accepted none of ours');
  return { peer, folders: shared };
}
