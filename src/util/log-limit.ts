// Rate-limited log lines: the first event of a kind per interval is logged, the rest are counted and summed up in the next line.

import type { Logger, LogFields, LogLevel } from './log.js';

/** @default of LogLimit's intervalMs */
export const LOG_LIMIT_INTERVAL_MS = 10_000;
/** Kinds remembered at once; the oldest is forgotten beyond (keys may come from peers). */
const MAX_KINDS = 64;

interface Kind {
  lastMs: number;
  suppressed: number;
}

/** One per component that logs events a peer can repeat at will (refused connections, say). */
export class LogLimit {
  private readonly kinds = new Map<string, Kind>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs = LOG_LIMIT_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Logs `message` at `level` unless a line of the same kind was logged within the interval; then counts it. */
  emit(level: Exclude<LogLevel, 'silent'>, kind: string, message: string, fields: LogFields = {}): boolean {
    const now = this.now();
    const entry = this.kinds.get(kind);
    if (entry && now - entry.lastMs < this.intervalMs) {
      entry.suppressed++;
      return false;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.kinds.delete(kind);
    this.kinds.set(kind, { lastMs: now, suppressed: 0 });
    if (this.kinds.size > MAX_KINDS) this.kinds.delete(this.kinds.keys().next().value!);
    this.log[level](message, suppressed > 0 ? { ...fields, alsoSinceLastLine: suppressed } : fields);
    return true;
  }
}
