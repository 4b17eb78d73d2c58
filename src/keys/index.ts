// Public API of keys/: folder capability keys, their text form, and the device identity.

export type { Access } from './types.js';
export { ACCESS_RANK, accessAtLeast } from './types.js';
export { FolderKeys, SIGNATURE_BYTES } from './capability.js';
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
