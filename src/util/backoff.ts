// Exponential backoff with full jitter, for reconnects and retried announces.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor?: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly options: BackoffOptions) {}

  /** Delay before the next attempt; grows until reset(). */
  next(): number {
    const { initialMs, maxMs, factor = 2, random = Math.random } = this.options;
    const ceiling = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt++;
    return Math.round(ceiling / 2 + (random() * ceiling) / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}
