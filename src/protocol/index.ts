// Public API of protocol/: framing, messages and validators, proofs, handshake, PeerConnection, TLS settings.

export { MAX_BLOCK_BYTES, MAX_FRAME_BYTES, FrameDecoder, decodeBody, encodeBody, encodeFrame, type Frame } from './frames.js';
export * from './messages.js';
export { checkRelativePath } from './checks.js';
export { recordFromWire, recordSigningBytes, toWireRecord, versionFromWire, versionToWire, type WireRecord } from './records.js';
export { decodeMessage } from './validate.js';
export { EKM_LABEL, claimTag, makeClaims, makeProof, matchClaims, sessionKeyingMaterial, verifyProof, type Role } from './proofs.js';
export {
  HANDSHAKE_TIMEOUT_MS,
  NO_SHARED_FOLDER,
  NoSharedFolderError,
  performHandshake,
  type FolderSyncState,
  type HandshakeOptions,
  type HandshakeResult,
  type PeerHello,
  type SharedFolder,
} from './handshake.js';
export { PeerConnection, RequestFailedError, type PeerConnectionOptions, type RequestParams } from './connection.js';
export { TLS_CIPHERSUITE, TLS_VERSION, clientTlsOptions, establishPeer, peerDeviceId, serverTlsOptions, type EstablishOptions } from './tls.js';
export {
  LAST_HANDSHAKE_CODE,
  PRE_HANDSHAKE_CONNECTION_BYTES,
  PRE_HANDSHAKE_MAX_FRAME_BYTES,
  PRE_HANDSHAKE_TOTAL_BYTES,
  PreHandshakeBudget,
  preHandshakeMaxBytes,
} from './pre-handshake.js';
