// RateLimiter: a token bucket over bytes per second (0 = unlimited), shared by all folders and peers of a daemon.

import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../errors.js';

/** Time source of a limiter; tests inject a fake one. */
export interface RateClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after `ms`; rejects (any error) when the signal fires. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: RateClock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
};

/** The daemon's two limiters: bytes of block Responses served, bytes of blocks requested. */
export interface TransferRates {
  upload?: RateLimiter;
  download?: RateLimiter;
}

export class RateLimiter {
  private rate = 0;
  private tokens = 0;
  private last: number;
  /** Takers wait one after another (first come, first served). */
  private queue: Promise<void> = Promise.resolve();
  /** Fired when the rate changes, so a waiting taker recomputes its wait. */
  private wake = new AbortController();
  /** Bytes granted so far (status and tests). */
  taken = 0;

  /** `bytesPerSecond` 0 = unlimited; the bucket holds at most one second's worth (the burst). */
  constructor(bytesPerSecond: number, private readonly clock: RateClock = systemClock) {
    this.last = clock.now();
    this.setRate(bytesPerSecond);
  }

  get bytesPerSecond(): number {
    return this.rate;
  }

  /** Applies at once, also to takers already waiting. */
  setRate(bytesPerSecond: number): void {
    if (!(bytesPerSecond >= 0) || !Number.isFinite(bytesPerSecond)) {
      throw new FerryError('INTERNAL', `a rate limit needs a finite rate >= 0, got ${bytesPerSecond}`);
    }
    this.refill();
    // From unlimited the bucket starts full; otherwise what is left (or a debt) carries over.
    this.tokens = this.rate === 0 ? bytesPerSecond : Math.min(this.tokens, bytesPerSecond);
    this.rate = bytesPerSecond;
    const wake = this.wake;
    this.wake = new AbortController();
    wake.abort();
  }

  /**
   * Waits until `bytes` are allowed, then counts them. A take larger than the burst waits for a full
   * bucket and leaves it in debt, so the long-run rate still holds. ABORTED if the signal fires first.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(aborted());
    if (this.rate === 0) {
      this.taken += bytes;
      return Promise.resolve();
    }
    const turn = this.queue.then(() => this.wait(bytes, signal));
    this.queue = turn.catch(() => undefined);
    if (!signal) return turn;
    // A taker queued behind others gives up at once; its turn then passes without taking anything.
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(aborted());
      signal.addEventListener('abort', onAbort, { once: true });
      turn.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async wait(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      if (signal?.aborted) throw aborted();
      this.refill();
      const need = Math.min(bytes, this.rate);
      if (this.rate === 0 || this.tokens >= need) break;
      const wake = this.wake.signal;
      const ms = Math.ceil(((need - this.tokens) * 1000) / this.rate);
      try {
        await this.clock.sleep(ms, signal ? AbortSignal.any([signal, wake]) : wake);
      } catch {
        if (signal?.aborted) throw aborted();
        // woken by a rate change: recompute
      }
    }
    if (this.rate > 0) this.tokens -= bytes;
    this.taken += bytes;
  }

  private refill(): void {
    const now = this.clock.now();
    if (this.rate > 0) this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
  }
}

function aborted(): FerryError {
  return new FerryError('ABORTED', 'aborted while waiting for the transfer rate limit');
}
