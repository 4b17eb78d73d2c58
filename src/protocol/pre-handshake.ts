// What a peer may send before its handshake completes: handshake messages only, each at most 256 KiB, within per-connection and total byte budgets.

import { FerryError } from '../errors.js';
import { MESSAGE_CODES, maxBytesForType, messageNameOf } from './messages.js';

const KIB = 1024;

/** Largest `type + body` of any frame accepted before the handshake completes. */
export const PRE_HANDSHAKE_MAX_FRAME_BYTES = 256 * KIB;
/** Bytes one connection may send before its handshake completes (its four handshake messages fit with room to spare). */
export const PRE_HANDSHAKE_CONNECTION_BYTES = 1024 * KIB;
/** Bytes all connections still in their handshake may have sent together (@default of PreHandshakeBudget). */
export const PRE_HANDSHAKE_TOTAL_BYTES = 16 * 1024 * KIB;

/** Message codes accepted before the handshake completes. */
export const PRE_HANDSHAKE_CODES: ReadonlySet<number> = new Set([
  MESSAGE_CODES.Hello,
  MESSAGE_CODES.FolderClaims,
  MESSAGE_CODES.FolderProofs,
  MESSAGE_CODES.ClusterState,
  MESSAGE_CODES.Ping,
  MESSAGE_CODES.Close,
]);

/** The peer's last handshake message: what follows it waits until our side of the handshake accepted the peer. */
export const LAST_HANDSHAKE_CODE = MESSAGE_CODES.ClusterState;

/** The FrameDecoder limit before the handshake completes: PROTOCOL for any other message type. */
export function preHandshakeMaxBytes(code: number): number | undefined {
  const limit = maxBytesForType(code);
  if (limit === undefined) return undefined;
  if (!PRE_HANDSHAKE_CODES.has(code)) {
    throw new FerryError('PROTOCOL', `${messageNameOf(code)} is not allowed before the handshake completes`);
  }
  return Math.min(limit, PRE_HANDSHAKE_MAX_FRAME_BYTES);
}

/**
 * Bytes received by connections still in their handshake, shared by all of them (one per
 * connection manager): a connection that would take the total past `limitBytes` is closed.
 */
export class PreHandshakeBudget {
  private used = 0;

  constructor(readonly limitBytes = PRE_HANDSHAKE_TOTAL_BYTES) {}

  get usedBytes(): number {
    return this.used;
  }

  /** Takes `bytes` from the budget; false (and nothing taken) when they do not fit. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}
