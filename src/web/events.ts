// Server-sent events: every subscriber gets the daemon's status when it changes (checked once a second, computed once for all).

import { PassThrough } from 'node:stream';
import type Koa from 'koa';
import { Resource } from '../util/resource.js';
import type { StatusReport } from './daemon-api.js';
import { HttpRefusal } from './http.js';

export const MAX_SUBSCRIBERS = 32;
const TICK_MS = 1000;
const HEARTBEAT_MS = 15_000;
/** A subscriber that has not read this much is skipped until it catches up. */
const MAX_BUFFERED_BYTES = 256 * 1024;

export class EventHub extends Resource {
  private readonly streams = new Set<PassThrough>();
  private timer: NodeJS.Timeout | null = null;
  private last = '';
  private lastSentMs = 0;

  constructor(private readonly status: () => StatusReport, private readonly tickMs = TICK_MS) {
    super();
  }

  protected async _open(): Promise<void> {}

  protected async _close(): Promise<void> {
    this.stopTimer();
    for (const stream of this.streams) stream.end();
    this.streams.clear();
  }

  get subscribers(): number {
    return this.streams.size;
  }

  /** Answers the request with an event stream that starts with the current status. */
  attach(ctx: Koa.Context): void {
    if (this.closed) throw new HttpRefusal(503, 'CLOSING', 'the daemon is stopping');
    if (this.streams.size >= MAX_SUBSCRIBERS) throw new HttpRefusal(503, 'TOO_MANY_STREAMS', 'too many event streams open');
    const stream = new PassThrough();
    this.streams.add(stream);
    const detach = (): void => {
      this.streams.delete(stream);
      stream.end();
      if (this.streams.size === 0) this.stopTimer();
    };
    ctx.req.once('close', detach);
    ctx.req.socket.setTimeout(0);
    ctx.req.socket.setNoDelay(true);
    ctx.status = 200;
    ctx.set({ 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    ctx.body = stream;
    stream.write(`retry: 3000\n\n`);
    stream.write(this.frame(JSON.stringify(this.status())));
    this.timer ??= setInterval(() => this.tick(), this.tickMs);
  }

  private frame(data: string): string {
    return `event: status\ndata: ${data}\n\n`;
  }

  private tick(): void {
    const now = Date.now();
    const data = JSON.stringify(this.status());
    let payload: string;
    if (data !== this.last) payload = this.frame(data);
    else if (now - this.lastSentMs >= HEARTBEAT_MS) payload = ': keep-alive\n\n';
    else return;
    this.last = data;
    this.lastSentMs = now;
    for (const stream of this.streams) {
      if (stream.writableLength < MAX_BUFFERED_BYTES) stream.write(payload);
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
