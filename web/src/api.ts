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

/** The session's CSRF token, for the file browser's WebDAV requests. */
export function csrf(): string {
  return csrfToken;
}

/** The WebDAV URL path of a folder-relative path (each segment encoded). */
export function davPath(folderId: string, path: string, collection = false): string {
  const encoded = path === '' ? '' : path.split('/').map(encodeURIComponent).join('/');
  return `/dav/${encodeURIComponent(folderId)}/${encoded}${collection && encoded ? '/' : ''}`;
}

/** A WebDAV request with the session (cookie) and its CSRF token; ApiError unless 2xx. */
export async function dav(method: string, path: string, options: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'x-csrf-token': csrfToken, ...(options.headers ?? {}) },
      ...(options.body !== undefined ? { body: options.body } : {}),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'Ferry does not answer: is the daemon running?');
  }
  if (!response.ok) {
    const data = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
    if (response.status === 401) onLoggedOut();
    throw new ApiError(response.status, data.error?.code ?? 'HTTP', data.error?.message ?? `HTTP ${response.status}`);
  }
  return response;
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
// The API's shapes come from the server's own declaration (type-only: nothing of it is bundled).
export type {
  AddedPeerReport,
  ArchiveListing,
  ArchivePlanReport,
  SelectionReport,
  TreeEntry,
  VersionsReport,
  ConflictListing,
  ConflictReport,
  ConflictVersionReport,
  JoinCheckReport,
  EditableSettings,
  FolderReport,
  GrantReport,
  IssuedGrantReport,
  KeysReport,
  PeerInfo,
  PeerReport,
  SettingsReport,
  StatusReport,
} from '../../src/web/daemon-api.js';
export type { DirectoryPage, DirectoryEntry } from '../../src/web/dav/types.js';
export type { AppPasswordReport, IssuedAppPassword } from '../../src/web/app-passwords.js';
