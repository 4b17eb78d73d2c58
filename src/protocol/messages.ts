// The closed set of protocol messages: names, numeric codes, TypeScript shapes, size limits and encoding.

import type { Access } from '../keys/types.js';
import type { FileRecord, VersionVector } from '../index/records.js';
import { encodeBody, encodeFrame, MAX_FRAME_BYTES, type Frame } from './frames.js';
import { toWireRecord, versionToWire } from './records.js';
import { RELAY_MAX_DATA_BYTES, type RelayMessage } from './relay-messages.js';

export * from './relay-messages.js';

export { LIMITS } from './limits.js';

/** "FRRY": fronts every Hello so a foreign or garbled peer gets a clear error. */
export const HELLO_MAGIC = 0x46525259;
/** Bumped on any incompatible change to framing, handshake or message shapes. */
export const PROTOCOL_VERSION = 3;

/**
 * Message codes on the wire. Never renumber: add new codes. docs/protocol.md has the same table
 * (test/protocol/docs.test.ts keeps them in step).
 */
export const MESSAGE_CODES = {
  Hello: 0x01,
  FolderClaims: 0x02,
  FolderProofs: 0x03,
  ClusterState: 0x04,
  Index: 0x10,
  IndexUpdate: 0x11,
  Request: 0x20,
  Response: 0x21,
  Have: 0x30,
  Progress: 0x31,
  Hashing: 0x32,
  Ping: 0x40,
  Close: 0x41,
  PeerExchange: 0x50,
  Grants: 0x60,
  IntroduceRequest: 0x70,
  Introduce: 0x71,
  IntroduceFailed: 0x72,
  // 0x78-0x7F: relaying through a common peer (src/relay/, docs/protocol.md "Relays").
  RelayOpen: 0x78,
  RelayConnect: 0x79,
  RelayAccept: 0x7a,
  RelayRefuse: 0x7b,
  RelayData: 0x7c,
  RelayWindow: 0x7d,
  RelayClose: 0x7e,
} as const;

export type MessageName = keyof typeof MESSAGE_CODES;

const KIB = 1024;

/** Per-type ceiling on `type + body`, checked from the frame header before the body is buffered. */
export const MAX_MESSAGE_BYTES: Record<MessageName, number> = {
  Hello: 4 * KIB,
  FolderClaims: 64 * KIB,
  FolderProofs: 256 * KIB,
  ClusterState: 256 * KIB,
  Index: MAX_FRAME_BYTES,
  IndexUpdate: MAX_FRAME_BYTES,
  Request: 8 * KIB,
  Response: MAX_FRAME_BYTES,
  Have: 1024 * KIB,
  Progress: 4 * KIB,
  Hashing: 64 * KIB,
  Ping: 1 * KIB,
  Close: 4 * KIB,
  PeerExchange: 64 * KIB,
  Grants: 512 * KIB,
  IntroduceRequest: 4 * KIB,
  Introduce: 4 * KIB,
  IntroduceFailed: 4 * KIB,
  RelayOpen: 1 * KIB,
  RelayConnect: 1 * KIB,
  RelayAccept: 1 * KIB,
  RelayRefuse: 4 * KIB,
  RelayData: RELAY_MAX_DATA_BYTES + 1 * KIB,
  RelayWindow: 1 * KIB,
  RelayClose: 4 * KIB,
};


export interface HelloMessage {
  type: 'Hello';
  magic: number;
  protocolVersion: number;
  deviceId: string;
  deviceName: string;
  softwareVersion: string;
  /** Optional: the sender's view of the receiver's address (IP-literal HOST:PORT), so a device behind NAT learns its external address. */
  observed?: string;
  /** Optional: true when the sender's end of this UDP link came from a simultaneous open (it was dialling the receiver too): a punched link. */
  punched?: boolean;
}

/** Blinded, per-session tags, one per folder held (plus decoys): no folder ID in clear. */
export interface FolderClaimsMessage {
  type: 'FolderClaims';
  tags: Buffer[];
}

/** Level proofs for one folder, named by the tag the *receiver* sent for it. */
export interface FolderProof {
  tag: Buffer;
  enc: Buffer;
  ro?: Buffer;
  rw?: Buffer;
  /** A grantee's signed grant (instead of ro/rw), with `grantProof`: a signature by the grant key over P("grant"). */
  grant?: Buffer;
  grantProof?: Buffer;
}

export interface FolderProofsMessage {
  type: 'FolderProofs';
  proofs: FolderProof[];
}

/** Where this side's index stands and what it has of the peer's, for one shared folder. */
export interface ClusterFolder {
  folderId: Buffer;
  /** The access the sender verified for the receiver. */
  peerAccess: Access;
  /** Identity of the sender's index (a new one means "forget what you had and take a full Index"). */
  indexId: Buffer;
  /** Highest sequence in the sender's index. */
  maxSequence: number;
  /** The receiver's index ID the sender last received from (zeros if none). */
  receivedIndexId: Buffer;
  /** Highest sequence of the receiver's index the sender has; the receiver resumes after it. */
  receivedSequence: number;
}

export interface ClusterStateMessage {
  type: 'ClusterState';
  folders: ClusterFolder[];
  /**
   * The sender's device name and software version, told only here, after the key proofs (a
   * keyless visitor gets an empty Hello.deviceName and softwareVersion). Absent from older peers,
   * whose Hello carries them instead.
   */
  deviceName?: string;
  softwareVersion?: string;
  /** Messages the sender takes that an older peer would refuse as unknown (CLUSTER_FEATURES); absent from older peers. */
  features?: string[];
}

/** Features this version lists in its ClusterState: `hashing` = it takes Hashing messages. */
export const CLUSTER_FEATURES = ['hashing'] as const;

/** Index starts a full transfer (replace what you know); IndexUpdate continues or increments it. */
export interface IndexMessage {
  type: 'Index' | 'IndexUpdate';
  folderId: Buffer;
  indexId: Buffer;
  /** Sequences of the records in this batch lie in [firstSequence, lastSequence], ascending. */
  firstSequence: number;
  lastSequence: number;
  records: FileRecord[];
  /**
   * Received only, never sent: records of this batch that failed validation, left out of `records`
   * (skipped and reported; the sequence stream goes on past them).
   */
  rejected?: RejectedRecord[];
}

/** A record of a received batch that failed validation: its path as far as known, and why. */
export interface RejectedRecord {
  /** The record's path when it was a string (cut to 1,024 characters), else ''. */
  path: string;
  reason: string;
}

export interface RequestMessage {
  type: 'Request';
  /** Chosen by the requester, unique among its outstanding requests (u32). */
  id: number;
  folderId: Buffer;
  path: string;
  /** Where the first block starts. */
  offset: number;
  /** Bytes of all the blocks named. */
  size: number;
  /** SHA-256 of each block, concatenated: one block, or a run of adjacent blocks of the file. */
  hash: Buffer;
}

export const RESPONSE_ERRORS = ['NO_SUCH_FILE', 'INVALID_REQUEST', 'HASH_MISMATCH', 'NOT_SHARED', 'BUSY', 'GENERIC'] as const;
export type ResponseError = (typeof RESPONSE_ERRORS)[number];

export interface ResponseMessage {
  type: 'Response';
  id: number;
  /** Exactly one of data and error. */
  data?: Buffer;
  error?: ResponseError;
}

/** Which blocks of a file in progress the sender already has (so peers can fetch them from it). */
export interface HaveMessage {
  type: 'Have';
  folderId: Buffer;
  path: string;
  version: VersionVector;
  blockIndexes: number[];
}

/**
 * Advisory and unsigned: block hashes of a file the sender is hashing now (blocks `firstBlock`…),
 * so the receiver can fetch them before the signed record exists (docs/protocol.md, Streaming large files).
 */
export interface HashingMessage {
  type: 'Hashing';
  folderId: Buffer;
  path: string;
  /** Random, one per hashing of the file: its provisional identity. */
  tag: Buffer;
  /** The file's size when the hash began. */
  size: number;
  blockSize: number;
  firstBlock: number;
  /** SHA-256 of each block from firstBlock on, concatenated. */
  hashes: Buffer;
  /**
   * Received only, never sent: why the message broke a rule (a path outside the folder, blocks past
   * its size, a bad hash list). It is advisory: dropped with this reason, the link stays.
   */
  rejected?: string;
}

export const FOLDER_STATES = ['idle', 'scanning', 'syncing', 'error'] as const;
export type FolderState = (typeof FOLDER_STATES)[number];

export interface ProgressMessage {
  type: 'Progress';
  folderId: Buffer;
  state: FolderState;
  needFiles: number;
  needBytes: number;
  globalFiles: number;
  globalBytes: number;
}

export interface PingMessage {
  type: 'Ping';
}

export interface CloseMessage {
  type: 'Close';
  /** An ErrorCode-like word (PROTOCOL, HANDSHAKE, NO_SHARED_FOLDER, SHUTDOWN, …). */
  code: string;
  reason: string;
}

/** Peer exchange: other devices of a shared folder and where the sender reached them. */
export interface PeerExchangeEntry {
  device: string;
  /** IP-literal `HOST:PORT` (IPv6 in brackets); never a name to resolve. */
  addresses: string[];
}

export interface PeerExchangeMessage {
  type: 'PeerExchange';
  folderId: Buffer;
  /** The sender's own sync port (0: not known), reachable at the address the receiver sees it at. */
  listenPort: number;
  peers: PeerExchangeEntry[];
}

/** Grants and revocations of a shared folder, each signed with the folder key: what the sender knows, or what it just learned. */
export interface GrantsMessage {
  type: 'Grants';
  folderId: Buffer;
  grants: Buffer[];
  revocations: Buffer[];
}

/**
 * Hole punching through a third device (DCUtR-style): the sender asks the receiver, a peer of
 * folder `folderId` on this connection, to introduce it to `device`, another device of that folder
 * connected to the receiver. `addresses`: the sender's own external UDP endpoints as far as it
 * knows them (STUN, a port mapping, a peer's view over UDP), IP-literal HOST:PORT.
 */
export interface IntroduceRequestMessage {
  type: 'IntroduceRequest';
  folderId: Buffer;
  device: string;
  addresses: string[];
}

/**
 * From an introducer, to both devices of a pair at once: `device`, a device of folder `folderId`
 * (the receiver's too), is dialling the receiver over UDP now at the addresses it has; dial it at
 * `addresses` after `delayMs` (so both start together).
 */
export interface IntroduceMessage {
  type: 'Introduce';
  folderId: Buffer;
  device: string;
  addresses: string[];
  delayMs: number;
}

export const INTRODUCE_FAILURES = ['NOT_CONNECTED', 'NO_ADDRESS', 'RATE_LIMITED', 'SELF'] as const;
export type IntroduceFailure = (typeof INTRODUCE_FAILURES)[number];

/** The introducer's answer to an IntroduceRequest it cannot serve. */
export interface IntroduceFailedMessage {
  type: 'IntroduceFailed';
  folderId: Buffer;
  device: string;
  code: IntroduceFailure;
}

export type Message =
  | HelloMessage
  | FolderClaimsMessage
  | FolderProofsMessage
  | ClusterStateMessage
  | IndexMessage
  | RequestMessage
  | ResponseMessage
  | HaveMessage
  | HashingMessage
  | ProgressMessage
  | PingMessage
  | CloseMessage
  | PeerExchangeMessage
  | GrantsMessage
  | IntroduceRequestMessage
  | IntroduceMessage
  | IntroduceFailedMessage
  | RelayMessage;

const NAMES_BY_CODE = new Map<number, MessageName>(
  Object.entries(MESSAGE_CODES).map(([name, code]) => [code, name as MessageName]),
);

export function messageNameOf(code: number): MessageName | undefined {
  return NAMES_BY_CODE.get(code);
}

/** For FrameDecoder: the per-type limit, or undefined for an unknown type. */
export function maxBytesForType(code: number): number | undefined {
  const name = NAMES_BY_CODE.get(code);
  return name === undefined ? undefined : MAX_MESSAGE_BYTES[name];
}

/** The wire object of a message: its fields without `type`, records in wire form. */
function wireBody(message: Message): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  // Absent optional fields are left out, not sent as msgpack `undefined` (an extension type).
  for (const [key, value] of Object.entries(message)) if (key !== 'type' && key !== 'rejected' && value !== undefined) fields[key] = value;
  switch (message.type) {
    case 'Index':
    case 'IndexUpdate':
      fields.records = message.records.map(toWireRecord);
      break;
    case 'FolderProofs':
      fields.proofs = message.proofs.map((proof) => Object.fromEntries(Object.entries(proof).filter(([, v]) => v !== undefined)));
      break;
    case 'Have':
      fields.version = versionToWire(message.version);
      break;
  }
  return fields;
}

export function encodeMessage(message: Message): Frame {
  return { type: MESSAGE_CODES[message.type], body: encodeBody(wireBody(message)) };
}

/** The message as one frame's bytes; FRAME_TOO_LARGE if it exceeds its type's limit. */
export function encodeMessageFrame(message: Message): Buffer {
  const { type, body } = encodeMessage(message);
  return encodeFrame(type, body, MAX_MESSAGE_BYTES[message.type]);
}
