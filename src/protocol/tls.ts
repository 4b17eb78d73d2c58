// TLS 1.3 settings for device links, the peer's device ID from its certificate, and one call to set up a peer.

import { isIP } from 'node:net';
import type { ConnectionOptions, TLSSocket, TlsOptions } from 'node:tls';
import { socketAddress } from '../util/address.js';
import { FerryError } from '../errors.js';
import { deviceIdFromCertificate, type DeviceIdentity, type FolderKeys } from '../keys/index.js';
import { PeerConnection, type PeerConnectionOptions } from './connection.js';
import { performHandshake, type FolderSyncState, type HandshakeResult } from './handshake.js';
import { PreHandshakeBudget } from './pre-handshake.js';
import { sessionKeyingMaterial, type Role } from './proofs.js';

export const TLS_VERSION = 'TLSv1.3';
export const TLS_CIPHERSUITE = 'TLS_AES_256_GCM_SHA384';

type Identity = Pick<DeviceIdentity, 'certPem' | 'keyPem'>;

/**
 * Server side: ask for the client's certificate but accept any, since devices are self-signed;
 * the peer is identified by its key (peerDeviceId), and trusted only after its proofs.
 */
export function serverTlsOptions(identity: Identity): TlsOptions {
  return {
    cert: identity.certPem,
    key: identity.keyPem,
    minVersion: TLS_VERSION,
    maxVersion: TLS_VERSION,
    ciphers: TLS_CIPHERSUITE,
    requestCert: true,
    rejectUnauthorized: false,
  };
}

/** Client side: our certificate, any server certificate (identified by peerDeviceId afterwards). */
export function clientTlsOptions(identity: Identity): ConnectionOptions {
  return {
    cert: identity.certPem,
    key: identity.keyPem,
    minVersion: TLS_VERSION,
    maxVersion: TLS_VERSION,
    ciphers: TLS_CIPHERSUITE,
    rejectUnauthorized: false,
  };
}

/** The device ID the peer's certificate proves (it completed TLS with that key); HANDSHAKE if none. */
export function peerDeviceId(socket: TLSSocket): string {
  if (socket.getProtocol() !== TLS_VERSION) throw new FerryError('HANDSHAKE', `peer negotiated ${socket.getProtocol()}`);
  const cert = socket.getPeerX509Certificate();
  if (!cert) throw new FerryError('HANDSHAKE', 'peer presented no certificate');
  try {
    return deviceIdFromCertificate(cert);
  } catch (err) {
    throw new FerryError('HANDSHAKE', 'peer certificate carries no usable key', { cause: err });
  }
}

/** The remote end of a TCP socket as an IP literal (IPv4-mapped shown as IPv4); undefined over other transports. */
function observedAddress(socket: TLSSocket): string | undefined {
  const { remoteAddress, remotePort } = socket;
  if (!remoteAddress || !remotePort || isIP(remoteAddress) === 0 || remoteAddress.includes('%')) return undefined;
  return socketAddress(remoteAddress, remotePort);
}

export interface EstablishOptions extends PeerConnectionOptions {
  role: Role;
  identity: Pick<DeviceIdentity, 'id' | 'name'>;
  softwareVersion: string;
  folders: readonly FolderKeys[];
  folderState?: (folder: FolderKeys, peerDeviceId: string) => FolderSyncState;
  isGrantRevoked?: (folder: FolderKeys, grantIdHex: string) => boolean;
  handshakeTimeoutMs?: number;
  signal?: AbortSignal;
  /** Shared by every link of one device still in its handshake. @default a budget of this link alone */
  preHandshakeBudget?: PreHandshakeBudget;
  /** Whether our end of the link came from a simultaneous open (a punched UDP link), read when our Hello goes out. */
  punched?: () => boolean;
}

/**
 * Wraps a TLS socket whose TLS handshake finished ('secureConnect' / 'secureConnection') and
 * runs the Ferry handshake. The link counts as established only here, after the peer's first
 * application messages arrived and verified: in TLS 1.3 a client whose certificate the server
 * refuses still sees a finished handshake. On failure the socket is closed and the error thrown.
 */
export async function establishPeer(
  socket: TLSSocket,
  options: EstablishOptions,
): Promise<{ connection: PeerConnection; handshake: HandshakeResult }> {
  // Until the handshake accepted the peer it may send only handshake messages (pre-handshake.ts).
  const connection = new PeerConnection(socket, { ...options, preHandshake: options.preHandshakeBudget ?? new PreHandshakeBudget() });
  try {
    const remoteId = peerDeviceId(socket);
    const ekm = sessionKeyingMaterial(socket);
    await connection.open();
    const handshake = await performHandshake(connection, {
      role: options.role,
      ekm,
      deviceId: options.identity.id,
      deviceName: options.identity.name,
      softwareVersion: options.softwareVersion,
      observed: observedAddress(socket),
      punched: options.punched?.() === true,
      peerDeviceId: remoteId,
      folders: options.folders,
      folderState: options.folderState,
      isGrantRevoked: options.isGrantRevoked,
      timeoutMs: options.handshakeTimeoutMs,
      signal: options.signal,
    });
    connection.handshakeDone();
    return { connection, handshake };
  } catch (err) {
    await connection.close(err instanceof FerryError ? err.code : 'INTERNAL', err instanceof Error ? err.message : String(err));
    throw err;
  }
}
