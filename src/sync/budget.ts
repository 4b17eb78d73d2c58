// ByteBudget: a counting semaphore over bytes, so blocks in flight (and the memory they hold) stay bounded.

import { FerryError } from '../errors.js';

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class ByteBudget {
  private used = 0;
  /** Highest `inUse` ever reached (tests and status). */
  peak = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly limitBytes: number) {
    if (!(limitBytes > 0)) throw new FerryError('INTERNAL', `a byte budget needs a positive limit, got ${limitBytes}`);
  }

  get inUse(): number {
    return this.used;
  }

  /** What acquire(bytes) really takes: a request above the limit takes the whole budget, never more. */
  cost(bytes: number): number {
    return Math.min(Math.max(1, bytes), this.limitBytes);
  }

  /** Waits (first come, first served) until `cost(bytes)` fits; ABORTED if the signal fires first. */
  async acquire(bytes: number, signal?: AbortSignal): Promise<void> {
    const cost = this.cost(bytes);
    if (signal?.aborted) throw new FerryError('ABORTED', 'aborted while waiting for bytes in flight');
    if (this.waiters.length === 0 && this.used + cost <= this.limitBytes) {
      this.take(cost);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        bytes: cost,
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
        this.wake();
        reject(new FerryError('ABORTED', 'aborted while waiting for bytes in flight'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Whether `bytes` could be taken right now without waiting. */
  fits(bytes: number): boolean {
    return this.waiters.length === 0 && this.used + this.cost(bytes) <= this.limitBytes;
  }

  release(bytes: number): void {
    this.used -= this.cost(bytes);
    if (this.used < 0) this.used = 0;
    this.wake();
  }

  private take(cost: number): void {
    this.used += cost;
    if (this.used > this.peak) this.peak = this.used;
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.bytes <= this.limitBytes) {
      const waiter = this.waiters.shift()!;
      this.take(waiter.bytes);
      waiter.grant();
    }
  }
}
