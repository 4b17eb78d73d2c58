// WebDAV write locks (RFC 4918 §6-7): exclusive or shared, depth 0 or infinity, with timeouts, held in memory
// (a restart ends them, as clients expect of a server restart), bounded, and owned by the app password that took them.

import { randomUUID } from 'node:crypto';

export interface DavLock {
  token: string;
  folderId: string;
  /** Folder-relative path of the locked resource ('' = the folder itself). */
  root: string;
  depth: '0' | 'infinity';
  scope: 'exclusive' | 'shared';
  /** The client's owner element as sent (XML), or ''. */
  owner: string;
  /** The app password that took it: only its holder may use the token. */
  user: string;
  timeoutS: number;
  expiresMs: number;
}

const MAX_LOCKS = 10_000;
export const MAX_LOCK_TIMEOUT_S = 3600;
export const DEFAULT_LOCK_TIMEOUT_S = 600;

/** `a` is a strict ancestor of `b` (both folder-relative; '' is the folder). */
export function isAncestor(a: string, b: string): boolean {
  return a === '' ? b !== '' : b.startsWith(`${a}/`);
}

/** The Timeout header's first acceptable value, capped. */
export function parseTimeout(header: string | undefined): number {
  if (!header) return DEFAULT_LOCK_TIMEOUT_S;
  for (const part of header.split(',')) {
    const value = part.trim();
    if (/^infinite$/i.test(value)) return MAX_LOCK_TIMEOUT_S;
    const match = /^Second-(\d{1,10})$/i.exec(value);
    if (match) return Math.max(1, Math.min(MAX_LOCK_TIMEOUT_S, Number(match[1])));
  }
  return DEFAULT_LOCK_TIMEOUT_S;
}

export class LockTable {
  private readonly locks = new Map<string, DavLock>();

  constructor(private readonly now: () => number = Date.now) {}

  private expire(): void {
    const now = this.now();
    for (const [token, lock] of this.locks) if (lock.expiresMs <= now) this.locks.delete(token);
  }

  get(token: string): DavLock | undefined {
    this.expire();
    return this.locks.get(token);
  }

  /** Locks that apply to `path`: on it, or depth-infinity on an ancestor. */
  covering(folderId: string, path: string): DavLock[] {
    this.expire();
    return [...this.locks.values()].filter(
      (l) => l.folderId === folderId && (l.root === path || (l.depth === 'infinity' && isAncestor(l.root, path))),
    );
  }

  /** Locks rooted strictly below `path`. */
  below(folderId: string, path: string): DavLock[] {
    this.expire();
    return [...this.locks.values()].filter((l) => l.folderId === folderId && isAncestor(path, l.root));
  }

  /** A new lock, or undefined when it conflicts with one held (423). */
  create(lock: Omit<DavLock, 'token' | 'expiresMs'>): DavLock | undefined {
    const others = [...this.covering(lock.folderId, lock.root), ...(lock.depth === 'infinity' ? this.below(lock.folderId, lock.root) : [])];
    if (others.some((o) => o.scope === 'exclusive' || lock.scope === 'exclusive')) return undefined;
    if (this.locks.size >= MAX_LOCKS) return undefined;
    const created: DavLock = { ...lock, token: `urn:uuid:${randomUUID()}`, expiresMs: this.now() + lock.timeoutS * 1000 };
    this.locks.set(created.token, created);
    return created;
  }

  refresh(lock: DavLock, timeoutS: number): void {
    lock.timeoutS = timeoutS;
    lock.expiresMs = this.now() + timeoutS * 1000;
  }

  remove(token: string): void {
    this.locks.delete(token);
  }

  /** The resource (and what is under it) went away or moved: its locks end. */
  removeAt(folderId: string, path: string): void {
    for (const [token, lock] of this.locks) {
      if (lock.folderId === folderId && (lock.root === path || isAncestor(path, lock.root))) this.locks.delete(token);
    }
  }
}

/** One condition of an If header list. */
export interface IfCondition {
  not: boolean;
  token?: string;
  etag?: string;
}

export interface IfList {
  /** Tagged lists: the resource's URL (absolute or a path) as sent. */
  resource?: string;
  conditions: IfCondition[];
}

/** Parses an If header (RFC 4918 §10.4); undefined when it is malformed. */
export function parseIfHeader(header: string): IfList[] | undefined {
  const lists: IfList[] = [];
  let i = 0;
  let resource: string | undefined;
  const skip = (): void => {
    while (i < header.length && /\s/.test(header[i]!)) i++;
  };
  skip();
  while (i < header.length) {
    if (header[i] === '<') {
      const end = header.indexOf('>', i);
      if (end < 0) return undefined;
      resource = header.slice(i + 1, end);
      i = end + 1;
      skip();
      if (header[i] !== '(') return undefined;
      continue;
    }
    if (header[i] !== '(') return undefined;
    i++;
    const conditions: IfCondition[] = [];
    for (;;) {
      skip();
      if (header[i] === ')') {
        i++;
        break;
      }
      let not = false;
      if (/^not\b/i.test(header.slice(i, i + 4)) || header.slice(i, i + 3).toLowerCase() === 'not') {
        not = true;
        i += 3;
        skip();
      }
      if (header[i] === '<') {
        const end = header.indexOf('>', i);
        if (end < 0) return undefined;
        conditions.push({ not, token: header.slice(i + 1, end) });
        i = end + 1;
      } else if (header[i] === '[') {
        const end = header.indexOf(']', i);
        if (end < 0) return undefined;
        conditions.push({ not, etag: header.slice(i + 1, end) });
        i = end + 1;
      } else return undefined;
    }
    if (conditions.length === 0) return undefined;
    lists.push({ ...(resource !== undefined ? { resource } : {}), conditions });
    skip();
  }
  return lists.length ? lists : undefined;
}
