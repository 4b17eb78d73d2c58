// Public API of keys/: folder capability keys, their text form, and the device identity.

export type { Access } from './types.js';
export { ACCESS_RANK, accessAtLeast } from './types.js';
export { FolderKeys, SIGNATURE_BYTES, type GrantCredential } from './capability.js';
export {
  GRANT_BYTES,
  GRANT_ID_BYTES,
  GRANT_SIGNATURE_BYTES,
  GrantBook,
  REVOCATION_BYTES,
  decodeGrant,
  grantProofValid,
  grantRefusal,
  isInviteText,
  issueGrant,
  parseFolderKey,
  parseInvite,
  revokeGrant,
  verifyGrant,
  verifyRevocation,
  type Grant,
  type GrantLevel,
  type GrantListing,
  type GrantStatus,
  type RecordSignatureCheck,
  type Revocation,
} from './grants.js';
export { FOLDER_ID_BYTES, SECRET_BYTES, VERIFY_KEY_BYTES } from './derive.js';
export {
  CERT_FILE,
  DEVICE_ID_LENGTH,
  KEY_FILE,
  SHORT_ID_LENGTH,
  deviceIdFromCertificate,
  deviceIdFromPublicKey,
  isDeviceId,
  loadOrCreateDeviceIdentity,
  shortIdOf,
  type DeviceIdentity,
} from './device.js';
