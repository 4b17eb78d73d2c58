// The admin login: the argon2id password hash, signed sessions with their CSRF tokens (they outlive a restart), and the login limits.

import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Algorithm } from '@node-rs/argon2';
import { FerryError } from '../errors.js';

export const MIN_PASSWORD_CHARS = 8;
export const MAX_PASSWORD_CHARS = 256;
/** A session ends after this long without a request. */
export const SESSION_IDLE_MS = 12 * 3600_000;
/** A session ends this long after login, however active. */
export const SESSION_MAX_MS = 30 * 86_400_000;
const MAX_SESSIONS = 64;
/** Ended sessions remembered (each until its token would expire anyway). */
const MAX_REVOKED = 1024;

/** OWASP's minimum for argon2id (19 MiB, 2 passes): ~0.1 s on x64, bearable on a small ARM box. */
export const ARGON2_OPTIONS = { algorithm: 2 satisfies Algorithm.Argon2id as Algorithm, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/** @node-rs/argon2 (a native addon), loaded at the first password hashed or checked, not by every daemon's start. */
export function argon2(): Promise<typeof import('@node-rs/argon2')> {
  return import('@node-rs/argon2');
}

export interface PasswordStore {
  get(): string | undefined;
  set(hash: string): Promise<void>;
  /** 32 random bytes kept in the home, that session tokens are signed with (none: a key for this process only). */
  sessionKey(): Buffer | undefined;
  /** Session IDs ended early, with when each token expires anyway (kept across restarts). */
  revoked(): Record<string, number>;
  setRevoked(revoked: Record<string, number>): Promise<void>;
}

export interface Session {
  id: string;
  csrf: string;
  lastUsedMs: number;
}

export function checkPasswordRules(password: string): void {
  if (password.length < MIN_PASSWORD_CHARS) {
    throw new FerryError('USAGE', `the password needs at least ${MIN_PASSWORD_CHARS} characters`);
  }
  if (password.length > MAX_PASSWORD_CHARS) {
    throw new FerryError('USAGE', `the password may have at most ${MAX_PASSWORD_CHARS} characters`);
  }
}

/** The argon2id PHC string stored for a password (rules checked first). */
export async function hashPassword(password: string): Promise<string> {
  checkPasswordRules(password);
  return (await argon2()).hash(password, ARGON2_OPTIONS);
}

export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export class AuthGate {
  /** Sessions seen since this process started, by session ID, least recently used first: the idle clock. */
  private readonly active = new Map<string, number>();
  /** Session IDs ended before their time (logout, evicted, idle), with when their tokens expire anyway. */
  private revokedIds: Map<string, number> | null = null;
  private fallbackKey: Buffer | null = null;
  /** How many password checks (argon2 verifications) ran: what a login flood costs. */
  checks = 0;
  /** The most password checks that ran at once. */
  peakChecks = 0;
  private running = 0;

  constructor(private readonly store: PasswordStore, private readonly now: () => number = Date.now) {}

  needsSetup(): boolean {
    return !this.store.get();
  }

  /** Sets a new password; every session ends (their tokens were signed for the old one). */
  async setPassword(password: string): Promise<void> {
    await this.store.set(await hashPassword(password));
    this.active.clear();
    this.revokedIds = new Map();
    await this.store.setRevoked({});
  }

  async verify(password: string): Promise<boolean> {
    const stored = this.store.get();
    if (!stored || password.length > MAX_PASSWORD_CHARS) return false;
    this.checks++;
    this.peakChecks = Math.max(this.peakChecks, ++this.running);
    try {
      return await (await argon2()).verify(stored, password);
    } catch {
      return false;
    } finally {
      this.running--;
    }
  }

  private key(): Buffer {
    const kept = this.store.sessionKey();
    if (kept) return kept;
    this.fallbackKey ??= randomBytes(32);
    return this.fallbackKey;
  }

  /** Tokens and CSRF secrets are bound to the current password: a new one ends every session. */
  private mac(kind: string, ...parts: string[]): string {
    const generation = createHash('sha256').update(this.store.get() ?? '').digest('base64url').slice(0, 16);
    return createHmac('sha256', this.key()).update([kind, generation, ...parts].join('|')).digest('base64url');
  }

  private revoked(): Map<string, number> {
    if (!this.revokedIds) this.revokedIds = new Map(Object.entries(this.store.revoked()));
    const now = this.now();
    for (const [id, expiresMs] of this.revokedIds) if (expiresMs <= now) this.revokedIds.delete(id);
    return this.revokedIds;
  }

  private async revoke(id: string, issuedMs: number): Promise<void> {
    const revoked = this.revoked();
    revoked.set(id, issuedMs + SESSION_MAX_MS);
    while (revoked.size > MAX_REVOKED) revoked.delete(revoked.keys().next().value as string);
    this.active.delete(id);
    await this.store.setRevoked(Object.fromEntries(revoked));
  }

  /** A new session: its token (the cookie) is `ID.ISSUED.MAC`, signed with the home's session key, so it outlives a restart. */
  createSession(): Session {
    if (this.active.size >= MAX_SESSIONS) {
      // The least recently used session ends (Map order is insertion order; session() re-inserts).
      const [oldest, lastUsedMs] = this.active.entries().next().value as [string, number];
      void this.revoke(oldest, lastUsedMs).catch(() => undefined);
    }
    const id = randomBytes(18).toString('base64url');
    const issued = this.now().toString(36);
    const token = `${id}.${issued}.${this.mac('session', id, issued)}`;
    this.active.set(id, this.now());
    return { id: token, csrf: this.mac('csrf', id), lastUsedMs: this.now() };
  }

  /** The live session of this token, its idle clock reset; undefined if forged, revoked, idle too long or expired. */
  session(token: string | undefined): Session | undefined {
    const parsed = this.parse(token);
    if (!parsed) return undefined;
    const { id, issuedMs } = parsed;
    const now = this.now();
    if (now - issuedMs > SESSION_MAX_MS || this.revoked().has(id)) return undefined;
    const lastUsedMs = this.active.get(id);
    this.active.delete(id);
    if (lastUsedMs !== undefined && now - lastUsedMs > SESSION_IDLE_MS) {
      void this.revoke(id, issuedMs).catch(() => undefined);
      return undefined;
    }
    this.active.set(id, now);
    while (this.active.size > MAX_SESSIONS) this.active.delete(this.active.keys().next().value as string);
    return { id: token!, csrf: this.mac('csrf', id), lastUsedMs: now };
  }

  /** Logout: the token stops working here and after a restart. */
  async endSession(token: string): Promise<void> {
    const parsed = this.parse(token);
    if (parsed) await this.revoke(parsed.id, parsed.issuedMs);
  }

  private parse(token: string | undefined): { id: string; issuedMs: number } | undefined {
    if (!token || token.length > 200) return undefined;
    const [id, issued, mac, extra] = token.split('.');
    if (!id || !issued || !mac || extra !== undefined || !/^[0-9a-z]{1,12}$/.test(issued)) return undefined;
    if (!sameSecret(mac, this.mac('session', id, issued))) return undefined;
    return { id, issuedMs: parseInt(issued, 36) };
  }
}

/**
 * Failed logins per client address in a sliding window: after `maxFailures` in `windowMs`, further
 * attempts are refused before the password is even hashed. Tracks at most `maxAddresses` addresses.
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly maxFailures = 5,
    private readonly windowMs = 60_000,
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  private recent(address: string): number[] {
    const cutoff = this.now() - this.windowMs;
    const times = (this.failures.get(address) ?? []).filter((t) => t > cutoff);
    if (times.length) this.failures.set(address, times);
    else this.failures.delete(address);
    return times;
  }

  /** Milliseconds until `address` may try again, or 0 if it may now. */
  retryAfterMs(address: string): number {
    const times = this.recent(address);
    if (times.length < this.maxFailures) return 0;
    return Math.max(1, times[times.length - this.maxFailures]! + this.windowMs - this.now());
  }

  failed(address: string): void {
    const times = this.recent(address);
    times.push(this.now());
    if (times.length > this.maxFailures) times.splice(0, times.length - this.maxFailures);
    this.failures.delete(address);
    this.failures.set(address, times);
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value as string);
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }
}

/**
 * Who may have a password checked right now: one check in flight per client address and at most
 * `maxConcurrent` in all, so parallel guesses cost no more than sequential ones (argon2 is the cost).
 */
export class CheckGate {
  private readonly inFlight = new Set<string>();

  constructor(private readonly maxConcurrent = 2) {}

  /** A release function, or a reason the attempt must wait. */
  enter(address: string): { release: () => void } | { busy: 'address' | 'global' } {
    if (this.inFlight.has(address)) return { busy: 'address' };
    if (this.inFlight.size >= this.maxConcurrent) return { busy: 'global' };
    this.inFlight.add(address);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.inFlight.delete(address);
      },
    };
  }
}
