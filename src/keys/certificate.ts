// Self-signed X.509 certificates for device identities, made with @peculiar/x509 over Node's WebCrypto.

import type * as X509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto';

/** How long a device certificate is valid. Peers pin the key, not the dates, but TLS still reads them. */
export const CERTIFICATE_VALID_YEARS = 100;
/** Backdating of notBefore, so a peer whose clock is behind still accepts a fresh certificate. */
const CLOCK_SKEW_MS = 24 * 60 * 60 * 1000;
const ED25519 = { name: 'Ed25519' } as const;

// The library types WebCrypto with the DOM's names; Node's objects are the same at run time.
type GeneratorParams = Parameters<typeof X509.X509CertificateGenerator.createSelfSigned>;

/**
 * @peculiar/x509 with what it needs, loaded when a certificate is made (a device's first start, a
 * restore), not by every start: it and its ASN.1 and DI libraries held 3.2 MiB of a daemon's heap.
 */
async function loadX509(): Promise<typeof X509> {
  // @peculiar/x509 2.x (through tsyringe) needs a Reflect metadata polyfill loaded before it.
  await import('reflect-metadata');
  return import('@peculiar/x509');
}

function randomSerialHex(): string {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive and without a leading zero byte, as DER wants
  return serial.toString('hex');
}

async function selfSign(keys: webcrypto.CryptoKeyPair, now: Date): Promise<string> {
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CERTIFICATE_VALID_YEARS);
  const x509 = await loadX509();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerialHex(),
      // The name carries nothing personal: peers identify a device by its key, never by this name.
      name: 'CN=ferry device',
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter,
      keys: keys as unknown as GeneratorParams[0]['keys'],
      signingAlgorithm: ED25519,
      extensions: [],
    },
    webcrypto as unknown as GeneratorParams[1],
  );
  return cert.toString('pem') + '\n';
}

/** A new Ed25519 key pair and a self-signed certificate for it, both PEM. */
export async function createSelfSignedIdentity(now = new Date()): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(ED25519, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();
  return { certPem: await selfSign(keys, now), keyPem };
}

/** A new self-signed certificate for an existing Ed25519 private key (PKCS#8 PEM). */
export async function certifyExistingKey(keyPem: string, now = new Date()): Promise<string> {
  const privateKeyObject = createPrivateKey(keyPem);
  const pkcs8 = privateKeyObject.export({ format: 'der', type: 'pkcs8' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, ED25519, false, ['sign']);
  const spki = createPublicKey(privateKeyObject).export({ format: 'der', type: 'spki' });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, ED25519, true, ['verify']);
  return selfSign({ privateKey, publicKey }, now);
}
