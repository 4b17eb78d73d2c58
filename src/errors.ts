// FerryError and its closed list of codes; codes become exit codes, HTTP statuses and wire reasons only at the edges.

export const ERROR_CODES = [
  // keys
  'KEY_NOT_FERRY', // text is not a Ferry key at all
  'KEY_CHECKSUM', // looks like a key, but a character is wrong (a typo)
  'KEY_UNKNOWN_TYPE', // prefix letter is not one we know
  'KEY_INVALID', // decodes, but the material is inconsistent
  'KEY_ACCESS', // operation needs a stronger key than the one held
  'SIGNATURE_INVALID',
  // grants
  'GRANT_EXPIRED', // a grant's time is up
  'GRANT_REVOKED', // a grant was revoked by the folder's RW holder
  'GRANT_INVALID', // a grant for another device or folder, or a forged one
  'GRANT_UNKNOWN', // no grant with that ID is known here
  // folders
  'FOLDER_NOT_FOUND', // path does not exist
  'FOLDER_NOT_DIRECTORY',
  'FOLDER_OVERLAP', // inside or around another shared folder
  'FOLDER_EXISTS', // this folder ID is already shared here
  'FOLDER_UNKNOWN', // no such folder in this daemon
  'FOLDER_NOT_EMPTY', // joining into a directory that has files, without --merge
  'CONFLICT_UNKNOWN', // no current conflict at that path
  'PEER_UNKNOWN', // no added peer address matches (`ferry peers remove`)
  // daemon and control endpoint
  'DAEMON_NOT_RUNNING',
  'DAEMON_RUNNING',
  'CONTROL_PROTOCOL',
  'USAGE',
  // storage
  'INDEX_SCHEMA', // index written by a newer Ferry, or a failed migration
  'INDEX_CORRUPT',
  'IO',
  'DISK_FULL', // no space left for the index under the home (or for a file in a folder)
  // peers
  'PROTOCOL', // malformed or unexpected message from a peer
  'FRAME_TOO_LARGE',
  'HANDSHAKE',
  'PATH_UNSAFE', // path from a peer that would escape the folder or is malformed
  'BLOCK_MISMATCH',
  'REQUEST_FAILED', // a peer answered a block request with an error code
  'TIMEOUT',
  'ABORTED',
  'CLOSED',
  'INTERNAL',
  'ADMIN_PASSWORD_SET', // first-start setup asked for after the admin password is set
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class FerryError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FerryError';
    this.code = code;
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isFerryError(err: unknown, code?: ErrorCode): err is FerryError {
  return err instanceof FerryError && (code === undefined || err.code === code);
}

/** Wraps a Node system error (ENOENT, EACCES, …) as an IO FerryError, keeping the cause. */
export function ioError(what: string, err: unknown): FerryError {
  const detail = err instanceof Error ? err.message : String(err);
  return new FerryError('IO', `${what}: ${detail}`, { cause: err });
}

/** The system error code behind an error, following `cause` links (EADDRINUSE under an IO FerryError, say). */
export function rootCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof FerryError) continue;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * A listen that failed because the address is taken names the setting to change and the likely cause;
 * other errors pass through unchanged.
 */
export function explainListenError(err: unknown, flag: string, address: string): unknown {
  if (rootCode(err) !== 'EADDRINUSE') return err;
  return new FerryError(
    'IO',
    `${address} is already in use (${flag}): another Ferry is probably running with another home, or another program holds the port; ` +
      `stop it or choose another address with ${flag} HOST:PORT`,
    { cause: err },
  );
}

/** Out of space (or quota) on a disk: ENOSPC, EDQUOT, or DISK_FULL, also as the cause of another error. */
export function isDiskFull(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'DISK_FULL') return true;
  }
  return false;
}
