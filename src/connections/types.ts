// The connection manager's options and what it reports for each connected peer.

import type { DeviceIdentity, FolderKeys } from '../keys/index.js';
import type { FolderSyncState, HandshakeResult, PeerConnection, PeerConnectionOptions } from '../protocol/index.js';
import type { BackoffOptions } from '../util/backoff.js';
import type { Logger } from '../util/log.js';
import type { HostPort } from '../util/address.js';
import type { Direction } from './duplicates.js';
import type { LinkPath } from './udp-transport.js';

export interface ConnectionManagerOptions {
  identity: DeviceIdentity;
  /** Port 0 = any free port. */
  listen: HostPort;
  softwareVersion: string;
  /** The current folders, read at each handshake. */
  folders: () => readonly FolderKeys[];
  folderState?: (keys: FolderKeys, peerDeviceId: string) => FolderSyncState;
  /** Whether a folder's grant was revoked: the handshake refuses grantees presenting it. */
  isGrantRevoked?: (keys: FolderKeys, grantIdHex: string) => boolean;
  /**
   * After a successful handshake, once per kept connection. May return a promise of the link being
   * in use (the session attached to its folders): a relayed link this one replaces drains only after it.
   */
  onPeer: (peer: EstablishedPeer) => unknown;
  /** When a connection onPeer reported has ended (or was replaced by another to the same device). */
  onPeerClosed?: (peer: EstablishedPeer) => void;
  logger?: Logger;
  /** Options for each PeerConnection (timeouts, for tests). */
  connection?: PeerConnectionOptions;
  /** @default DEFAULT_BACKOFF */
  backoff?: BackoffOptions;
  /**
   * How long a link must have stayed up for its close to reset the redial backoff. A link the peer
   * closes sooner (a protocol fault, say) is redialled ever more slowly, never in a tight loop.
   * @default STABLE_LINK_MS
   */
  stableLinkMs?: number;
  /** Deadline of TCP connect + TLS, and separately of the Ferry handshake. @default HANDSHAKE_TIMEOUT_MS */
  handshakeTimeoutMs?: number;
  /** @default MAX_PENDING_HANDSHAKES */
  maxPendingHandshakes?: number;
  /** Listen and dial over TCP. @default true */
  tcp?: boolean;
  /** Listen and dial over UDP (µTP on the same port number). @default true */
  udp?: boolean;
}

export interface EstablishedPeer {
  deviceId: string;
  deviceName: string;
  /** The remote HOST:PORT as seen. */
  address: string;
  /** Our end of the connection, HOST:PORT. */
  localAddress: string;
  direction: Direction;
  /** 'known' for dialled known hosts, 'incoming' for accepted ones; discovery adds 'lan', 'tracker', … */
  source: string;
  connection: PeerConnection;
  handshake: HandshakeResult;
  connectedAtMs: number;
  /** How the connection runs: 'tcp', 'udp', or 'udp punched' (both sides sent SYNs at once). */
  path: () => LinkPath;
  /** The transport's smoothed round-trip time now, ms (UDP only). */
  rttMs: () => number | undefined;
}
