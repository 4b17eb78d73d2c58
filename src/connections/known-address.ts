// One address the manager keeps dialling: what it leads to, how dialling went, and its redial timer with backoff.

import { Backoff, type BackoffOptions } from '../util/backoff.js';
import type { HostPort } from '../util/address.js';

/** What addresses() reports for one address. */
export interface AddressStatus {
  address: string;
  source: string;
  /** The device behind it, once a TLS handshake with it succeeded. */
  deviceId?: string;
  /** When a connection through it (or to its device by any path) was last established. */
  lastSeenMs?: number;
  lastError?: string;
  connected: boolean;
  /** The address leads to this device itself; it is not dialled again. */
  self: boolean;
  dialAttempts: number;
  consecutiveFailures: number;
  /** The delay before the redial scheduled after the last failure or close. */
  retryDelayMs?: number;
  /** Why the last link through this address's device closed (`CODE: reason`), and whether it had been up long enough to count as stable. */
  lastClose?: string;
  lastCloseStable?: boolean;
  /** When the next dial is due, if one is scheduled. */
  nextDialAtMs?: number;
}

export class KnownAddress {
  deviceId?: string;
  lastSeenMs?: number;
  lastError?: string;
  self = false;
  dialing = false;
  removed = false;
  dialAttempts = 0;
  consecutiveFailures = 0;
  retryDelayMs?: number;
  nextDialAtMs?: number;
  lastClose?: string;
  lastCloseStable?: boolean;
  /** Aborts a dial in progress when the address is removed or the manager closes. */
  readonly abort = new AbortController();
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly address: string,
    readonly target: HostPort,
    readonly source: string,
    backoff: BackoffOptions,
  ) {
    this.backoff = new Backoff(backoff);
  }

  get scheduled(): boolean {
    return this.timer !== null;
  }

  /** Runs `dial` after `delayMs`, replacing any earlier schedule; nothing once removed or self. */
  schedule(delayMs: number, dial: () => void): void {
    if (this.removed || this.self) return;
    this.cancel();
    this.nextDialAtMs = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.nextDialAtMs = undefined;
      dial();
    }, delayMs);
    this.timer.unref();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.nextDialAtMs = undefined;
  }

  beginDial(): void {
    this.dialing = true;
    this.dialAttempts++;
  }

  /** A failed dial; returns the delay before the next one. */
  failed(reason: string): number {
    this.consecutiveFailures++;
    this.lastError = reason;
    this.retryDelayMs = this.backoff.next();
    return this.retryDelayMs;
  }

  /**
   * A dial got through the handshake. The backoff is not reset here: only a link that then stays
   * up (linkClosed with `stable`) resets it, so a peer that closes every link at once is redialled
   * ever more slowly instead of once a second.
   */
  succeeded(deviceId: string, nowMs: number): void {
    this.deviceId = deviceId;
    this.lastSeenMs = nowMs;
    this.lastError = undefined;
    this.consecutiveFailures = 0;
    this.retryDelayMs = undefined;
  }

  /** The device's link closed; returns the delay before the redial (short after a stable link). */
  linkClosed(close: string, stable: boolean): number {
    if (stable) this.backoff.reset();
    this.lastClose = close;
    this.lastCloseStable = stable;
    this.retryDelayMs = this.backoff.next();
    return this.retryDelayMs;
  }

  /** Next delay before dialling again (grows until a failure-free stable link resets the backoff). */
  nextDelayMs(): number {
    return this.backoff.next();
  }

  resetBackoff(): void {
    this.backoff.reset();
  }

  dispose(): void {
    this.removed = true;
    this.cancel();
    this.abort.abort();
  }

  status(connected: boolean): AddressStatus {
    return {
      address: this.address,
      source: this.source,
      deviceId: this.deviceId,
      lastSeenMs: this.lastSeenMs,
      lastError: this.lastError,
      connected,
      self: this.self,
      dialAttempts: this.dialAttempts,
      consecutiveFailures: this.consecutiveFailures,
      retryDelayMs: this.retryDelayMs,
      nextDialAtMs: this.nextDialAtMs,
      ...(this.lastClose !== undefined ? { lastClose: this.lastClose, lastCloseStable: this.lastCloseStable ?? false } : {}),
    };
  }
}
