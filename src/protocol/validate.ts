// Decode, then validate: one validator per message type turns an untrusted msgpack value into a typed message.

import { isIP } from 'node:net';
import type { Access } from '../keys/types.js';
import { FerryError, isFerryError } from '../errors.js';
import type { FileRecord } from '../index/records.js';
import { decodeBody, MAX_BLOCK_BYTES } from './frames.js';
import {
  checkArray,
  checkBoolean,
  checkByteRange,
  checkBytes,
  checkDeviceId,
  checkObject,
  checkOneOf,
  checkRelativePath,
  checkString,
  checkUint,
  protocolError,
} from './checks.js';
import { LIMITS } from './limits.js';
import {
  FOLDER_STATES,
  INTRODUCE_FAILURES,
  MAX_MESSAGE_BYTES,
  RESPONSE_ERRORS,
  messageNameOf,
  type ClusterFolder,
  type FolderProof,
  type HashingMessage,
  type Message,
  type MessageName,
  type RejectedRecord,
} from './messages.js';
import { RELAY_MAX_DATA_BYTES, RELAY_REFUSALS } from './relay-messages.js';
import { recordFromWire, versionFromWire } from './records.js';

const ACCESS_LEVELS: readonly Access[] = ['rw', 'ro', 'enc'];
const U32_MAX = 0xffffffff;

type Fields = Record<string, unknown>;
type Validator = (fields: Fields) => Message;

function checkFolderId(value: unknown, where: string): Buffer {
  return checkBytes(value, where, LIMITS.folderIdBytes);
}

function checkIndexBatch(type: 'Index' | 'IndexUpdate', f: Fields): Message {
  const firstSequence = checkUint(f.firstSequence, `${type}.firstSequence`);
  const lastSequence = checkUint(f.lastSequence, `${type}.lastSequence`);
  if (firstSequence > lastSequence) throw protocolError(type, 'firstSequence after lastSequence');
  // One record that fails validation is skipped and reported, never a reason to refuse the batch
  // (and with it every later record of the folder): the sequence stream goes on past it.
  const records: FileRecord[] = [];
  const rejected: RejectedRecord[] = [];
  for (const [i, value] of checkArray(f.records, `${type}.records`, LIMITS.maxRecordsPerBatch).entries()) {
    try {
      records.push(recordFromWire(value, `${type}.records[${i}]`));
    } catch (err) {
      if (!isFerryError(err, 'PROTOCOL') && !isFerryError(err, 'PATH_UNSAFE')) throw err;
      const path = (value as { path?: unknown } | null)?.path;
      rejected.push({ path: typeof path === 'string' ? path.slice(0, 1024) : '', reason: err.message });
    }
  }
  let previous = -1;
  for (const record of records) {
    if (record.sequence <= previous || record.sequence < firstSequence || record.sequence > lastSequence) {
      throw protocolError(`${type}.records`, 'sequences not ascending within [firstSequence, lastSequence]');
    }
    previous = record.sequence;
  }
  return {
    type,
    folderId: checkFolderId(f.folderId, `${type}.folderId`),
    indexId: checkBytes(f.indexId, `${type}.indexId`, LIMITS.indexIdBytes),
    firstSequence,
    lastSequence,
    records,
    ...(rejected.length > 0 ? { rejected } : {}),
  };
}

function checkProof(value: unknown, where: string): FolderProof {
  const p = checkObject(value, where);
  const proof: FolderProof = {
    tag: checkBytes(p.tag, `${where}.tag`, LIMITS.tagBytes),
    enc: checkBytes(p.enc, `${where}.enc`, LIMITS.macBytes),
  };
  if (p.ro !== undefined) proof.ro = checkBytes(p.ro, `${where}.ro`, LIMITS.macBytes);
  if (p.rw !== undefined) proof.rw = checkBytes(p.rw, `${where}.rw`, LIMITS.signatureBytes);
  if ((p.grant === undefined) !== (p.grantProof === undefined)) throw protocolError(where, 'grant and grantProof come together');
  if (p.grant !== undefined) {
    proof.grant = checkBytes(p.grant, `${where}.grant`, LIMITS.grantBytes);
    proof.grantProof = checkBytes(p.grantProof, `${where}.grantProof`, LIMITS.signatureBytes);
  }
  return proof;
}

function checkClusterFolder(value: unknown, where: string): ClusterFolder {
  const c = checkObject(value, where);
  return {
    folderId: checkFolderId(c.folderId, `${where}.folderId`),
    peerAccess: checkOneOf(c.peerAccess, `${where}.peerAccess`, ACCESS_LEVELS),
    indexId: checkBytes(c.indexId, `${where}.indexId`, LIMITS.indexIdBytes),
    maxSequence: checkUint(c.maxSequence, `${where}.maxSequence`),
    receivedIndexId: checkBytes(c.receivedIndexId, `${where}.receivedIndexId`, LIMITS.indexIdBytes),
    receivedSequence: checkUint(c.receivedSequence, `${where}.receivedSequence`),
  };
}

/** An IP-literal `HOST:PORT` ([v6]:PORT), so a peer can never make us resolve a name. */
function checkPeerAddress(value: unknown, where: string): string {
  const text = checkString(value, where, 64);
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : 0;
  const host = match?.[1] ?? match?.[2] ?? '';
  if (!match || !(port >= 1 && port <= 65535) || isIP(host) !== (match[1] !== undefined ? 6 : 4)) {
    throw protocolError(where, 'not an IP-literal HOST:PORT');
  }
  return text;
}

function noDuplicates(keys: Buffer[], where: string): void {
  const seen = new Set(keys.map((key) => key.toString('hex')));
  if (seen.size !== keys.length) throw protocolError(where, 'duplicate entries');
}

function checkIntroduceAddresses(value: unknown, where: string, min: number): string[] {
  const addresses = checkArray(value, where, LIMITS.maxIntroduceAddresses).map((a, i) => checkPeerAddress(a, `${where}[${i}]`));
  if (addresses.length < min) throw protocolError(where, `fewer than ${min} entries`);
  if (new Set(addresses).size !== addresses.length) throw protocolError(where, 'duplicate entries');
  return addresses;
}

function checkHashing(f: Fields): Omit<HashingMessage, 'folderId'> {
  checkRelativePath(f.path);
  const size = checkUint(f.size, 'Hashing.size');
  if (size === 0) throw protocolError('Hashing.size', 'zero');
  const blockSize = checkUint(f.blockSize, 'Hashing.blockSize', LIMITS.maxBlockSize);
  if (blockSize === 0) throw protocolError('Hashing.blockSize', 'zero');
  const blockCount = Math.ceil(size / blockSize);
  if (blockCount > LIMITS.maxBlocksPerRecord) throw protocolError('Hashing.size', `more than ${LIMITS.maxBlocksPerRecord} blocks`);
  const firstBlock = checkUint(f.firstBlock, 'Hashing.firstBlock', LIMITS.maxBlocksPerRecord - 1);
  const hashes = checkByteRange(f.hashes, 'Hashing.hashes', LIMITS.hashBytes * LIMITS.maxHashingHashes);
  if (hashes.length === 0 || hashes.length % LIMITS.hashBytes !== 0) {
    throw protocolError('Hashing.hashes', `not 1 to ${LIMITS.maxHashingHashes} ${LIMITS.hashBytes}-byte hashes`);
  }
  if (firstBlock + hashes.length / LIMITS.hashBytes > blockCount) throw protocolError('Hashing.hashes', 'blocks past the announced size');
  return { type: 'Hashing', path: f.path, tag: checkBytes(f.tag, 'Hashing.tag', LIMITS.hashingTagBytes), size, blockSize, firstBlock, hashes };
}

const VALIDATORS: Record<MessageName, Validator> = {
  Hello: (f) => ({
    type: 'Hello',
    magic: checkUint(f.magic, 'Hello.magic', U32_MAX),
    protocolVersion: checkUint(f.protocolVersion, 'Hello.protocolVersion', U32_MAX),
    deviceId: checkDeviceId(f.deviceId, 'Hello.deviceId'),
    deviceName: checkString(f.deviceName, 'Hello.deviceName', LIMITS.maxDeviceNameBytes),
    softwareVersion: checkString(f.softwareVersion, 'Hello.softwareVersion', LIMITS.maxSoftwareVersionBytes),
    ...(f.observed !== undefined && f.observed !== null ? { observed: checkPeerAddress(f.observed, 'Hello.observed') } : {}),
    ...(f.punched !== undefined && f.punched !== null && checkBoolean(f.punched, 'Hello.punched') ? { punched: true } : {}),
  }),
  FolderClaims: (f) => {
    const tags = checkArray(f.tags, 'FolderClaims.tags', LIMITS.maxFolderClaims).map((t, i) =>
      checkBytes(t, `FolderClaims.tags[${i}]`, LIMITS.tagBytes),
    );
    noDuplicates(tags, 'FolderClaims.tags');
    return { type: 'FolderClaims', tags };
  },
  FolderProofs: (f) => {
    const proofs = checkArray(f.proofs, 'FolderProofs.proofs', LIMITS.maxFolderClaims).map((p, i) =>
      checkProof(p, `FolderProofs.proofs[${i}]`),
    );
    noDuplicates(proofs.map((p) => p.tag), 'FolderProofs.proofs');
    return { type: 'FolderProofs', proofs };
  },
  ClusterState: (f) => {
    const folders = checkArray(f.folders, 'ClusterState.folders', LIMITS.maxFolderClaims).map((c, i) =>
      checkClusterFolder(c, `ClusterState.folders[${i}]`),
    );
    noDuplicates(folders.map((c) => c.folderId), 'ClusterState.folders');
    return {
      type: 'ClusterState',
      folders,
      ...(f.deviceName !== undefined && f.deviceName !== null
        ? { deviceName: checkString(f.deviceName, 'ClusterState.deviceName', LIMITS.maxDeviceNameBytes) }
        : {}),
      ...(f.softwareVersion !== undefined && f.softwareVersion !== null
        ? { softwareVersion: checkString(f.softwareVersion, 'ClusterState.softwareVersion', LIMITS.maxSoftwareVersionBytes) }
        : {}),
      ...(f.features !== undefined && f.features !== null
        ? {
            features: checkArray(f.features, 'ClusterState.features', LIMITS.maxFeatures).map((w, i) =>
              checkString(w, `ClusterState.features[${i}]`, LIMITS.maxFeatureBytes),
            ),
          }
        : {}),
    };
  },
  Index: (f) => checkIndexBatch('Index', f),
  IndexUpdate: (f) => checkIndexBatch('IndexUpdate', f),
  Request: (f) => {
    checkRelativePath(f.path);
    const size = checkUint(f.size, 'Request.size', MAX_BLOCK_BYTES);
    if (size === 0) throw protocolError('Request.size', 'zero');
    const hash = checkByteRange(f.hash, 'Request.hash', LIMITS.hashBytes * LIMITS.maxBlocksPerRequest);
    if (hash.length === 0 || hash.length % LIMITS.hashBytes !== 0) {
      throw protocolError('Request.hash', `not one or more ${LIMITS.hashBytes}-byte hashes`);
    }
    if (hash.length / LIMITS.hashBytes > size) throw protocolError('Request.hash', 'more blocks than bytes');
    return {
      type: 'Request',
      id: checkUint(f.id, 'Request.id', U32_MAX),
      folderId: checkFolderId(f.folderId, 'Request.folderId'),
      path: f.path,
      offset: checkUint(f.offset, 'Request.offset'),
      size,
      hash,
    };
  },
  Response: (f) => {
    const id = checkUint(f.id, 'Response.id', U32_MAX);
    if ((f.data === undefined) === (f.error === undefined)) throw protocolError('Response', 'needs exactly one of data and error');
    if (f.data !== undefined) return { type: 'Response', id, data: checkByteRange(f.data, 'Response.data', MAX_BLOCK_BYTES) };
    return { type: 'Response', id, error: checkOneOf(f.error, 'Response.error', RESPONSE_ERRORS) };
  },
  Have: (f) => {
    checkRelativePath(f.path);
    const blockIndexes = checkArray(f.blockIndexes, 'Have.blockIndexes', LIMITS.maxBlocksPerRecord).map((n, i) =>
      checkUint(n, `Have.blockIndexes[${i}]`, LIMITS.maxBlocksPerRecord - 1),
    );
    return {
      type: 'Have',
      folderId: checkFolderId(f.folderId, 'Have.folderId'),
      path: f.path,
      version: versionFromWire(f.version, 'Have.version'),
      blockIndexes,
    };
  },
  Hashing: (f) => {
    const folderId = checkFolderId(f.folderId, 'Hashing.folderId');
    // Advisory: a bad path, range or hash list drops this message with a reason, never the link.
    try {
      return { folderId, ...checkHashing(f) };
    } catch (err) {
      if (!isFerryError(err, 'PROTOCOL') && !isFerryError(err, 'PATH_UNSAFE')) throw err;
      const path = typeof f.path === 'string' ? f.path.slice(0, 1024) : '';
      return { type: 'Hashing', folderId, path, tag: Buffer.alloc(0), size: 0, blockSize: 0, firstBlock: 0, hashes: Buffer.alloc(0), rejected: err.message };
    }
  },
  Progress: (f) => ({
    type: 'Progress',
    folderId: checkFolderId(f.folderId, 'Progress.folderId'),
    state: checkOneOf(f.state, 'Progress.state', FOLDER_STATES),
    needFiles: checkUint(f.needFiles, 'Progress.needFiles'),
    needBytes: checkUint(f.needBytes, 'Progress.needBytes'),
    globalFiles: checkUint(f.globalFiles, 'Progress.globalFiles'),
    globalBytes: checkUint(f.globalBytes, 'Progress.globalBytes'),
  }),
  Ping: () => ({ type: 'Ping' }),
  Close: (f) => {
    const code = checkString(f.code, 'Close.code', 64);
    if (!/^[A-Z0-9_]+$/.test(code)) throw protocolError('Close.code', 'not an upper-case word');
    return { type: 'Close', code, reason: checkString(f.reason, 'Close.reason', LIMITS.maxReasonBytes) };
  },
  Grants: (f) => ({
    type: 'Grants',
    folderId: checkFolderId(f.folderId, 'Grants.folderId'),
    grants: checkArray(f.grants, 'Grants.grants', LIMITS.maxGrantsPerMessage).map((g, i) =>
      checkBytes(g, `Grants.grants[${i}]`, LIMITS.grantBytes),
    ),
    revocations: checkArray(f.revocations, 'Grants.revocations', LIMITS.maxGrantsPerMessage).map((r, i) =>
      checkBytes(r, `Grants.revocations[${i}]`, LIMITS.revocationBytes),
    ),
  }),
  IntroduceRequest: (f) => ({
    type: 'IntroduceRequest',
    folderId: checkFolderId(f.folderId, 'IntroduceRequest.folderId'),
    device: checkDeviceId(f.device, 'IntroduceRequest.device'),
    addresses: checkIntroduceAddresses(f.addresses, 'IntroduceRequest.addresses', 0),
  }),
  Introduce: (f) => ({
    type: 'Introduce',
    folderId: checkFolderId(f.folderId, 'Introduce.folderId'),
    device: checkDeviceId(f.device, 'Introduce.device'),
    addresses: checkIntroduceAddresses(f.addresses, 'Introduce.addresses', 1),
    delayMs: checkUint(f.delayMs, 'Introduce.delayMs', LIMITS.maxIntroduceDelayMs),
  }),
  IntroduceFailed: (f) => ({
    type: 'IntroduceFailed',
    folderId: checkFolderId(f.folderId, 'IntroduceFailed.folderId'),
    device: checkDeviceId(f.device, 'IntroduceFailed.device'),
    code: checkOneOf(f.code, 'IntroduceFailed.code', INTRODUCE_FAILURES),
  }),
  RelayOpen: (f) => ({ type: 'RelayOpen', stream: checkUint(f.stream, 'RelayOpen.stream', U32_MAX), device: checkDeviceId(f.device, 'RelayOpen.device') }),
  RelayConnect: (f) => ({ type: 'RelayConnect', stream: checkUint(f.stream, 'RelayConnect.stream', U32_MAX), device: checkDeviceId(f.device, 'RelayConnect.device') }),
  RelayAccept: (f) => ({ type: 'RelayAccept', stream: checkUint(f.stream, 'RelayAccept.stream', U32_MAX) }),
  RelayRefuse: (f) => ({
    type: 'RelayRefuse',
    stream: checkUint(f.stream, 'RelayRefuse.stream', U32_MAX),
    code: checkOneOf(f.code, 'RelayRefuse.code', RELAY_REFUSALS),
    reason: checkString(f.reason, 'RelayRefuse.reason', LIMITS.maxReasonBytes),
  }),
  RelayData: (f) => {
    const data = checkByteRange(f.data, 'RelayData.data', RELAY_MAX_DATA_BYTES);
    if (data.length === 0) throw protocolError('RelayData.data', 'empty');
    return { type: 'RelayData', stream: checkUint(f.stream, 'RelayData.stream', U32_MAX), data };
  },
  RelayWindow: (f) => {
    const credit = checkUint(f.credit, 'RelayWindow.credit', U32_MAX);
    if (credit === 0) throw protocolError('RelayWindow.credit', 'zero');
    return { type: 'RelayWindow', stream: checkUint(f.stream, 'RelayWindow.stream', U32_MAX), credit };
  },
  RelayClose: (f) => ({
    type: 'RelayClose',
    stream: checkUint(f.stream, 'RelayClose.stream', U32_MAX),
    ...(f.code !== undefined && f.code !== null ? { code: checkOneOf(f.code, 'RelayClose.code', RELAY_REFUSALS) } : {}),
    ...(f.reason !== undefined && f.reason !== null ? { reason: checkString(f.reason, 'RelayClose.reason', LIMITS.maxReasonBytes) } : {}),
  }),
  PeerExchange: (f) => ({
    type: 'PeerExchange',
    folderId: checkFolderId(f.folderId, 'PeerExchange.folderId'),
    listenPort: checkUint(f.listenPort, 'PeerExchange.listenPort', 65535),
    peers: checkArray(f.peers, 'PeerExchange.peers', LIMITS.maxExchangedPeers).map((value, i) => {
      const where = `PeerExchange.peers[${i}]`;
      const p = checkObject(value, where);
      return {
        device: checkDeviceId(p.device, `${where}.device`),
        addresses: checkArray(p.addresses, `${where}.addresses`, LIMITS.maxExchangedAddresses).map((a, j) =>
          checkPeerAddress(a, `${where}.addresses[${j}]`),
        ),
      };
    }),
  }),
};

/**
 * Decodes and validates the body of a frame of type `code`. Throws PROTOCOL (unknown type,
 * malformed msgpack, a field of the wrong type or size), FRAME_TOO_LARGE or PATH_UNSAFE.
 * Extra fields are ignored (a newer peer may add some); the result holds only the known ones.
 */
export function decodeMessage(code: number, body: Buffer): Message {
  const name = messageNameOf(code);
  if (name === undefined) throw new FerryError('PROTOCOL', `unknown message type ${code}`);
  if (body.length + 1 > MAX_MESSAGE_BYTES[name]) {
    throw new FerryError('FRAME_TOO_LARGE', `${name} of ${body.length + 1} bytes exceeds ${MAX_MESSAGE_BYTES[name]}`);
  }
  const fields = checkObject(decodeBody(body), name);
  return VALIDATORS[name](fields);
}
