// App passwords: per-client credentials for WebDAV (HTTP Basic), never the admin password. Each is
// argon2id-hashed, read-only or read-write, for one folder or all; created, listed and revoked by name.

import { createHash, createHmac, randomBytes } from 'node:crypto';
import { base32 } from '@scure/base';
import { FerryError } from '../errors.js';
import { ARGON2_OPTIONS, argon2 } from './auth.js';

/** As stored with the settings (the hash only, never the password). */
export interface AppPasswordRecord {
  name: string;
  /** argon2id PHC string of the password. */
  hash: string;
  /** The one folder (ID) it opens; absent: every folder. */
  folder?: string;
  readOnly: boolean;
  createdMs: number;
}

/** As listed (`ferry app-passwords list`, GET /api/app-passwords). */
export interface AppPasswordReport {
  name: string;
  folder?: string;
  readOnly: boolean;
  createdMs: number;
  createdAt: string;
  /** When it last opened a request since the daemon started. */
  lastUsedMs?: number;
}

/** What `add` hands back once: the Basic credentials. */
export interface IssuedAppPassword {
  user: string;
  password: string;
  folder?: string;
  readOnly: boolean;
}

export interface AppPasswordStore {
  get(): AppPasswordRecord[];
  set(records: AppPasswordRecord[]): Promise<void>;
  /** Resolves a folder ID or path to the folder's ID (FOLDER_UNKNOWN otherwise). */
  folderId(folder: string): string;
}

export const APP_PASSWORD_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_APP_PASSWORDS = 256;
/** A verified credential is trusted this long without argon2 again (a WebDAV client sends it on every request). */
const VERIFIED_TTL_MS = 10 * 60_000;
const MAX_VERIFIED = 256;
const MAX_PASSWORD_CHARS = 256;

/** The account a request was opened with. */
export interface AppPasswordAccess {
  name: string;
  folder?: string;
  readOnly: boolean;
}

export class AppPasswords {
  private readonly cacheKey = randomBytes(32);
  /** HMAC(user, password) → who it is, for credentials verified lately. */
  private readonly verified = new Map<string, { access: AppPasswordAccess; untilMs: number }>();
  /** Checks running now, by credential: parallel requests with the same credentials share one argon2 run. */
  private readonly checking = new Map<string, Promise<AppPasswordAccess | undefined>>();
  private readonly lastUsed = new Map<string, number>();
  /** argon2 verifications run (what a guessing flood costs). */
  checks = 0;

  constructor(private readonly store: AppPasswordStore, private readonly now: () => number = Date.now) {}

  list(): AppPasswordReport[] {
    return this.store.get().map((r) => ({
      name: r.name,
      ...(r.folder ? { folder: r.folder } : {}),
      readOnly: r.readOnly,
      createdMs: r.createdMs,
      createdAt: new Date(r.createdMs).toISOString(),
      ...(this.lastUsed.has(r.name) ? { lastUsedMs: this.lastUsed.get(r.name)! } : {}),
    }));
  }

  async add(name: string, options: { folder?: string; readOnly?: boolean } = {}): Promise<IssuedAppPassword> {
    if (!APP_PASSWORD_NAME.test(name)) {
      throw new FerryError('USAGE', 'an app password name has 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit');
    }
    const records = this.store.get();
    if (records.some((r) => r.name === name)) throw new FerryError('USAGE', `an app password named '${name}' exists: revoke it first or pick another name`);
    if (records.length >= MAX_APP_PASSWORDS) throw new FerryError('USAGE', `at most ${MAX_APP_PASSWORDS} app passwords`);
    const folder = options.folder === undefined ? undefined : this.store.folderId(options.folder);
    const password = base32.encode(randomBytes(20)).toLowerCase().replace(/(.{8})(?!$)/g, '$1-');
    const record: AppPasswordRecord = {
      name,
      hash: await (await argon2()).hash(password, ARGON2_OPTIONS),
      ...(folder ? { folder } : {}),
      readOnly: options.readOnly === true,
      createdMs: this.now(),
    };
    await this.store.set([...this.store.get().filter((r) => r.name !== name), record]);
    return { user: name, password, ...(folder ? { folder } : {}), readOnly: record.readOnly };
  }

  /** Revokes by name; it stops working at once (also for credentials verified lately). */
  async revoke(name: string): Promise<void> {
    const records = this.store.get();
    if (!records.some((r) => r.name === name)) throw new FerryError('USAGE', `no app password named '${name.slice(0, 64)}'`);
    await this.store.set(records.filter((r) => r.name !== name));
    this.verified.clear();
    this.lastUsed.delete(name);
  }

  /** Forgets every credential verified lately (the folder list changed, say). */
  forgetVerified(): void {
    this.verified.clear();
  }

  /** Whether these credentials were verified lately: no argon2 needed, so no rate limit either. */
  knownGood(user: string, password: string): AppPasswordAccess | undefined {
    const key = this.credentialKey(user, password);
    const known = this.verified.get(key);
    if (!known) return undefined;
    if (known.untilMs <= this.now() || !this.store.get().some((r) => r.name === user)) {
      this.verified.delete(key);
      return undefined;
    }
    this.lastUsed.set(user, this.now());
    return known.access;
  }

  /** Checks credentials with argon2 (callers rate-limit this); undefined when wrong. */
  check(user: string, password: string): Promise<AppPasswordAccess | undefined> {
    const known = this.knownGood(user, password);
    if (known) return Promise.resolve(known);
    const key = this.credentialKey(user, password);
    const running = this.checking.get(key);
    if (running) return running;
    const check = this.verifyNow(key, user, password).finally(() => this.checking.delete(key));
    this.checking.set(key, check);
    return check;
  }

  /** Whether a check of these credentials is running now (a parallel request waits for it rather than being refused). */
  isChecking(user: string, password: string): boolean {
    return this.checking.has(this.credentialKey(user, password));
  }

  private async verifyNow(key: string, user: string, password: string): Promise<AppPasswordAccess | undefined> {
    const record = this.store.get().find((r) => r.name === user);
    if (!record || password.length > MAX_PASSWORD_CHARS) return undefined;
    this.checks++;
    let ok = false;
    try {
      ok = await (await argon2()).verify(record.hash, password);
    } catch {
      ok = false;
    }
    if (!ok) return undefined;
    const access: AppPasswordAccess = { name: record.name, ...(record.folder ? { folder: record.folder } : {}), readOnly: record.readOnly };
    if (this.verified.size >= MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value as string);
    this.verified.set(key, { access, untilMs: this.now() + VERIFIED_TTL_MS });
    this.lastUsed.set(user, this.now());
    return access;
  }

  private credentialKey(user: string, password: string): string {
    const userHash = createHash('sha256').update(user).digest('base64url');
    return createHmac('sha256', this.cacheKey).update(`${userHash}\0${password}`).digest('base64url');
  }
}

/** The user and password of an `Authorization: Basic …` header, or undefined. */
export function parseBasicAuth(header: string | undefined): { user: string; password: string } | undefined {
  if (!header || header.length > 1024) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) return undefined;
  const text = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}
