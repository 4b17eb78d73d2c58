// The admin login: the argon2id password hash, in-memory sessions with their CSRF tokens, and the login rate limit.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { Algorithm, hash, verify } from '@node-rs/argon2';
import { FerryError } from '../errors.js';

export const MIN_PASSWORD_CHARS = 8;
export const MAX_PASSWORD_CHARS = 256;
/** A session ends after this long without a request. */
export const SESSION_IDLE_MS = 12 * 3600_000;
const MAX_SESSIONS = 64;

/** OWASP's minimum for argon2id (19 MiB, 2 passes): ~0.1 s on x64, bearable on a small ARM box. */
const ARGON2_OPTIONS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

export interface PasswordStore {
  get(): string | undefined;
  set(hash: string): Promise<void>;
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
  return hash(password, ARGON2_OPTIONS);
}

export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export class AuthGate {
  private readonly sessions = new Map<string, Session>();
  /** How many password checks (argon2 verifications) ran: what a login flood costs. */
  checks = 0;
  /** The most password checks that ran at once. */
  peakChecks = 0;
  private running = 0;

  constructor(private readonly store: PasswordStore, private readonly now: () => number = Date.now) {}

  needsSetup(): boolean {
    return !this.store.get();
  }

  /** Sets a new password; every session ends (the caller opens a new one if it wants). */
  async setPassword(password: string): Promise<void> {
    await this.store.set(await hashPassword(password));
    this.sessions.clear();
  }

  async verify(password: string): Promise<boolean> {
    const stored = this.store.get();
    if (!stored || password.length > MAX_PASSWORD_CHARS) return false;
    this.checks++;
    this.peakChecks = Math.max(this.peakChecks, ++this.running);
    try {
      return await verify(stored, password);
    } catch {
      return false;
    } finally {
      this.running--;
    }
  }

  createSession(): Session {
    if (this.sessions.size >= MAX_SESSIONS) {
      // Drop the least recently used session (Map order is insertion order; touch() re-inserts).
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
    const session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(32).toString('base64url'), lastUsedMs: this.now() };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session with this ID, its idle clock reset; undefined if unknown or expired. */
  session(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    this.sessions.delete(id);
    if (this.now() - session.lastUsedMs > SESSION_IDLE_MS) return undefined;
    session.lastUsedMs = this.now();
    this.sessions.set(id, session);
    return session;
  }

  endSession(id: string): void {
    this.sessions.delete(id);
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
