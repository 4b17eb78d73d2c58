// Structured, component-scoped logging: one line per event to stderr, `time LEVEL component: message key=value`.

import { escapeControls } from './format.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface LogSink {
  write(line: string): void;
}

export interface Logger {
  readonly component: string;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(component: string): Logger;
  enabled(level: LogLevel): boolean;
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

function formatValue(value: unknown): string {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return escapeControls(JSON.stringify(code ? `${String(code)}: ${value.message}` : value.message));
  }
  // JSON escapes C0 controls; C1 (a lone CSI) and bidirectional overrides are escaped too: peers' text reaches terminals.
  if (typeof value === 'string') return /^[\w./:@+-]+$/.test(value) ? value : escapeControls(JSON.stringify(value));
  if (typeof value === 'bigint') return value.toString();
  return escapeControls(JSON.stringify(value) ?? String(value));
}

class LineLogger implements Logger {
  constructor(
    readonly component: string,
    private readonly minRank: number,
    private readonly sink: LogSink,
    private readonly recent?: string[],
  ) {}

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.minRank;
  }

  private emit(level: LogLevel, message: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${this.component}: ${message}`;
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined) line += ` ${key}=${formatValue(value)}`;
      }
    }
    this.sink.write(line + '\n');
    if (this.recent) {
      this.recent.push(line);
      if (this.recent.length > RECENT_LINES) this.recent.splice(0, this.recent.length - RECENT_LINES);
    }
  }

  debug(message: string, fields?: LogFields): void { this.emit('debug', message, fields); }
  info(message: string, fields?: LogFields): void { this.emit('info', message, fields); }
  warn(message: string, fields?: LogFields): void { this.emit('warn', message, fields); }
  error(message: string, fields?: LogFields): void { this.emit('error', message, fields); }

  child(component: string): Logger {
    return new LineLogger(`${this.component}/${component}`, this.minRank, this.sink, this.recent);
  }
}

/** How many recent lines a logger with `keepRecent` remembers (for the log tail in the web admin). */
export const RECENT_LINES = 500;

export function createLogger(options: {
  component: string;
  level?: LogLevel;
  sink?: LogSink;
  keepRecent?: string[];
}): Logger {
  const sink = options.sink ?? { write: (line: string) => process.stderr.write(line) };
  return new LineLogger(options.component, RANK[options.level ?? 'info'], sink, options.keepRecent);
}

/** A logger that drops everything; for tests and library defaults. */
export const silentLogger: Logger = createLogger({ component: 'silent', level: 'silent', sink: { write() {} } });
