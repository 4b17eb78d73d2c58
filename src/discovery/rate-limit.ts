// A token bucket: bounds how many untrusted packets per second discovery looks at.

export class TokenBucket {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    nowMs = Date.now(),
  ) {
    this.tokens = burst;
    this.lastMs = nowMs;
  }

  /** Takes one token; false when the bucket is empty (drop the packet). */
  take(nowMs = Date.now()): boolean {
    const elapsedMs = Math.max(0, nowMs - this.lastMs);
    this.lastMs = nowMs;
    this.tokens = Math.min(this.burst, this.tokens + (elapsedMs * this.ratePerS) / 1000);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
