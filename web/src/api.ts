// Calls to Ferry's JSON API: the CSRF token on every state-changing call, errors as ApiError with the server's message.

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

let csrfToken = '';
let onLoggedOut: () => void = () => undefined;

export function setCsrf(token: string): void {
  csrfToken = token;
}

export function whenLoggedOut(handler: () => void): void {
  onLoggedOut = handler;
}

export async function api<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`/api${path}`, {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken },
      body: body === undefined ? (method === 'GET' ? undefined : '{}') : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'Ferry does not answer: is the daemon running?');
  }
  const data = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  if (!response.ok) {
    const error = new ApiError(response.status, data.error?.code ?? 'HTTP', data.error?.message ?? `HTTP ${response.status}`);
    if (response.status === 401 && !path.startsWith('/auth/')) onLoggedOut();
    throw error;
  }
  return data as T;
}

/** The shapes the daemon sends (src/web/daemon-api.ts). */
export interface PeerReport {
  device: string;
  name?: string;
  address: string;
  source: string;
  connected: boolean;
  inRateBps?: number;
  outRateBps?: number;
}

export interface FolderReport {
  id: string;
  path: string;
  access: 'rw' | 'ro' | 'enc';
  state: string;
  error?: string;
  localFiles: number;
  localBytes: number;
  globalFiles: number;
  globalBytes: number;
  needFiles: number;
  needBytes: number;
  localChanges: number;
  /** Folders joined with an invite: the grant this device holds them by. */
  grant?: GrantReport;
  peers: PeerReport[];
}

export interface GrantReport {
  id: string;
  level: 'ro' | 'rw';
  expiresAtMs: number;
  expiresAt: string;
  /** Bound to this device ID; absent for a bearer grant. */
  device?: string;
  status: 'active' | 'expired' | 'revoked';
  revokedAtMs?: number;
}

export interface IssuedGrantReport {
  id: string;
  folderId: string;
  level: 'ro' | 'rw';
  expiresAtMs: number;
  expiresAt: string;
  device?: string;
  invite: string;
}

export interface StatusReport {
  device: { id: string; name: string };
  version: string;
  listen: string | null;
  folders: FolderReport[];
  knownPeers: Array<{ address: string; deviceId?: string; connected: boolean; lastError?: string }>;
}

export interface KeysReport {
  folderId: string;
  path: string;
  rw?: string;
  ro?: string;
  enc: string;
}

export interface ArchiveListing {
  folderId: string;
  files: Array<{ path: string; archivePath: string; archivedAtMs: number; size: number }>;
  truncated: boolean;
}

export interface PeerInfo {
  device: string;
  name: string;
  address: string;
  source: string;
  direction: 'in' | 'out';
  connectedAtMs: number;
  bytesIn: number;
  bytesOut: number;
  inRateBps: number;
  outRateBps: number;
  folders: string[];
}

export interface EditableSettings {
  deviceName: string;
  listen: string;
  web: string;
  lan: boolean;
  nat: boolean;
  dht: boolean;
  trackers: boolean;
  trackerUrls: string[];
  archiveDays: number;
  uploadKBps: number;
  downloadKBps: number;
}

export interface SettingsReport {
  settings: EditableSettings;
  running: EditableSettings;
  overridden: string[];
  restartRequired: boolean;
}
