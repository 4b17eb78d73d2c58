// Device identity: the installation's TLS key pair and certificate on disk, and device IDs derived from keys.

import { X509Certificate, createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { base32nopad } from '@scure/base';
import { FerryError, ioError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';

export interface DeviceIdentity {
  /** Base32 (RFC 4648, uppercase, no padding) of SHA-256 of the public key (SPKI DER): 52 characters. */
  id: string;
  /** First SHORT_ID_LENGTH characters of `id`; used in version vectors. */
  shortId: string;
  /** Human-readable name shown to peers; not part of the identity. */
  name: string;
  certPem: string;
  keyPem: string;
}

export const KEY_FILE = 'key.pem';
export const CERT_FILE = 'cert.pem';
export const SHORT_ID_LENGTH = 12;
/** Length of a device ID: base32 of 32 bytes without padding. */
export const DEVICE_ID_LENGTH = 52;
const DEVICE_ID_PATTERN = /^[A-Z2-7]{52}$/;
/** Key types a device may use; Ed25519 is what Ferry creates, ECDSA P-256 is accepted for older homes. */
const SUPPORTED_KEY_TYPES = ['ed25519', 'ec'];

/** The device ID of a public key: base32 of SHA-256 over its SPKI DER encoding. */
export function deviceIdFromPublicKey(key: KeyObject): string {
  const spki = key.export({ format: 'der', type: 'spki' });
  return base32nopad.encode(createHash('sha256').update(spki).digest());
}

/** The device ID of whoever holds the certificate's key (a peer's TLS certificate, or DER bytes of one). */
export function deviceIdFromCertificate(cert: X509Certificate | Uint8Array): string {
  const parsed = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  return deviceIdFromPublicKey(parsed.publicKey);
}

/** Whether `text` has the form of a device ID. */
export function isDeviceId(text: string): boolean {
  return DEVICE_ID_PATTERN.test(text);
}

/** The short ID of a device ID, as used in version vectors. */
export function shortIdOf(deviceId: string): string {
  if (!isDeviceId(deviceId)) throw new FerryError('KEY_INVALID', `not a device ID: ${JSON.stringify(deviceId)}`);
  return deviceId.slice(0, SHORT_ID_LENGTH);
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`cannot read device identity file ${path}`, err);
  }
}

/** Writes via a temporary file, fsync and rename, so a crash never leaves half a file under `path`. */
export async function writeFileAtomically(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.tmp`;
  const handle = await open(temporary, 'w', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await chmod(temporary, mode); // the umask may have removed bits; never added any
  await rename(temporary, path);
}

function corrupt(dir: string, detail: string, cause?: unknown): FerryError {
  return new FerryError(
    'IO',
    `the device identity in ${dir} is damaged: ${detail}. Restore ${KEY_FILE} and ${CERT_FILE} from a backup, ` +
      'or move both away to start as a new device (peers will then see a different device ID)',
    { cause },
  );
}

/** Checks that the PEM files hold a usable key and a certificate for that same key; returns the device ID. */
function checkIdentityFiles(dir: string, keyPem: string, certPem: string): string {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (err) {
    throw corrupt(dir, `${KEY_FILE} does not hold a readable private key`, err);
  }
  if (!SUPPORTED_KEY_TYPES.includes(privateKey.asymmetricKeyType ?? '')) {
    throw corrupt(dir, `${KEY_FILE} holds a ${privateKey.asymmetricKeyType} key; Ferry uses Ed25519 or ECDSA`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw corrupt(dir, `${CERT_FILE} does not hold a readable certificate`, err);
  }
  const keyId = deviceIdFromPublicKey(createPublicKey(privateKey));
  if (deviceIdFromCertificate(cert) !== keyId) throw corrupt(dir, `${CERT_FILE} does not belong to ${KEY_FILE}`);
  return keyId;
}

/**
 * Loads the device identity kept in `dir`, creating it on first use (the directory with mode
 * 0700, `key.pem` 0600, `cert.pem`). An existing key is never replaced: damaged files are a
 * FerryError. A missing certificate next to a good key (a crash between the two writes) is
 * re-issued for the same key, so the device ID does not change.
 */
export async function loadOrCreateDeviceIdentity(
  dir: string,
  options: { name?: string; logger?: Logger } = {},
): Promise<DeviceIdentity> {
  const logger = options.logger ?? silentLogger;
  const name = options.name ?? hostname();
  const keyPath = join(dir, KEY_FILE);
  const certPath = join(dir, CERT_FILE);
  try {
    const created = await mkdir(dir, { recursive: true, mode: 0o700 });
    if (created !== undefined) await chmod(dir, 0o700);
  } catch (err) {
    throw ioError(`cannot create the device identity directory ${dir}`, err);
  }

  let keyPem = await readIfPresent(keyPath);
  let certPem = await readIfPresent(certPath);
  try {
    if (keyPem === undefined && certPem !== undefined) {
      throw corrupt(dir, `${CERT_FILE} is there but ${KEY_FILE} is missing`);
    }
    if (keyPem === undefined) {
      // Loaded only when a certificate is made: the X.509 library costs ~13 MiB of memory.
      const { createSelfSignedIdentity } = await import('./certificate.js');
      ({ keyPem, certPem } = await createSelfSignedIdentity());
      await writeFileAtomically(keyPath, keyPem, 0o600);
      await writeFileAtomically(certPath, certPem, 0o644);
      const id = checkIdentityFiles(dir, keyPem, certPem);
      logger.info('created device identity', { id, dir });
      return { id, shortId: shortIdOf(id), name, certPem, keyPem };
    }
    if (certPem === undefined) {
      try {
        const { certifyExistingKey } = await import('./certificate.js');
        certPem = await certifyExistingKey(keyPem);
      } catch (err) {
        throw corrupt(dir, `${CERT_FILE} is missing and ${KEY_FILE} holds no usable Ed25519 key`, err);
      }
      await writeFileAtomically(certPath, certPem, 0o644);
      logger.warn('device certificate was missing; issued a new one for the same key', { dir });
    }
    const id = checkIdentityFiles(dir, keyPem, certPem);
    await tightenKeyMode(keyPath, logger);
    return { id, shortId: shortIdOf(id), name, certPem, keyPem };
  } catch (err) {
    if (err instanceof FerryError) throw err;
    throw ioError(`cannot set up the device identity in ${dir}`, err);
  }
}

/** A private key readable by others is fixed (and said so), not refused: the owner meant to keep it. */
async function tightenKeyMode(keyPath: string, logger: Logger): Promise<void> {
  const { mode } = await stat(keyPath);
  if ((mode & 0o077) !== 0) {
    await chmod(keyPath, 0o600);
    logger.warn('device key was readable by others; restricted it to the owner', {
      path: keyPath,
      mode: (mode & 0o777).toString(8),
    });
  }
}
