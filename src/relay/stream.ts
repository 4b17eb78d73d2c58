// RelayStream: one end of a relayed byte stream, as a Duplex with backpressure both ways. Writes
// become RelayData within the credit the other end granted; what the reader consumes is granted
// back with RelayWindow, so neither end nor the relay ever holds more than RELAY_WINDOW_BYTES of it.

import { Duplex } from 'node:stream';
import { FerryError } from '../errors.js';
import { RELAY_MAX_DATA_BYTES, RELAY_WINDOW_BYTES, type RelayMessage, type RelayRefusal } from '../protocol/index.js';

export interface RelayStreamOptions {
  /** The stream's ID on the link to the relay. */
  id: number;
  /** Sends a message about this stream on the link to the relay; resolves once the link took it. */
  send: (message: RelayMessage) => Promise<void>;
  /** Called once when the stream is finished both ways or aborted (the owner forgets it). */
  onGone: () => void;
  /** @default RELAY_WINDOW_BYTES */
  windowBytes?: number;
}

export class RelayStream extends Duplex {
  readonly id: number;
  /** Bytes this end may still send. */
  private sendCredit: number;
  private readonly window: number;
  private creditWaiter: (() => void) | null = null;
  /** Bytes pushed to the reader so far, and granted back to the other end. */
  private received = 0;
  private granted = 0;
  private remoteEnded = false;
  private localEnded = false;
  private gone = false;
  bytesIn = 0;
  bytesOut = 0;
  /** Round trip through the relay, ms: RelayOpen to RelayAccept at the opener, RelayAccept to the first data at the other end. */
  rttMs: number | undefined;
  /** Set by the end that accepted, when it sent RelayAccept. */
  acceptedAtMs: number | undefined;

  constructor(private readonly options: RelayStreamOptions) {
    const window = options.windowBytes ?? RELAY_WINDOW_BYTES;
    super({ readableHighWaterMark: window / 2, writableHighWaterMark: RELAY_MAX_DATA_BYTES, allowHalfOpen: true });
    this.id = options.id;
    this.window = window;
    this.sendCredit = window;
    // An aborted stream must never become an uncaught exception; whoever reads it sees the error too.
    this.on('error', () => undefined);
  }

  /** RelayData from the other end. PROTOCOL (the stream is aborted) when it goes beyond the credit granted. */
  receiveData(data: Buffer): void {
    if (this.gone || this.remoteEnded) return;
    if (this.received + data.length - this.granted > this.window) {
      this.abort('PROTOCOL', 'data beyond the granted window');
      return;
    }
    if (this.rttMs === undefined && this.acceptedAtMs !== undefined) this.rttMs = Math.max(0, performance.now() - this.acceptedAtMs);
    this.received += data.length;
    this.bytesIn += data.length;
    this.push(data);
  }

  /** RelayWindow from the other end. */
  addCredit(credit: number): void {
    this.sendCredit += credit;
    const wake = this.creditWaiter;
    this.creditWaiter = null;
    wake?.();
  }

  /** RelayClose without a code: the other end sends no more. */
  remoteEnd(): void {
    if (this.remoteEnded || this.gone) return;
    this.remoteEnded = true;
    this.push(null);
    this.maybeGone();
  }

  /** The stream ended abnormally (RelayClose with a code, the link to the relay closed, or a rule broken here). */
  abort(code: RelayRefusal, reason: string, tellOtherEnd = code === 'PROTOCOL'): void {
    if (this.gone) return;
    if (tellOtherEnd) void this.options.send({ type: 'RelayClose', stream: this.id, code, reason: reason.slice(0, 512) }).catch(() => undefined);
    this.markGone();
    this.destroy(new FerryError('CLOSED', `relayed stream aborted (${code}: ${reason})`));
  }

  override _read(): void {
    // Grant back what the reader consumed: in steps of a quarter window, or all of it once the
    // buffer is empty (so a sender waiting for credit is never left waiting).
    const consumed = this.received - this.readableLength;
    const grant = consumed - this.granted;
    if (grant <= 0 || this.remoteEnded || this.gone) return;
    if (grant < this.window / 4 && this.readableLength > 0) return;
    this.granted += grant;
    void this.options.send({ type: 'RelayWindow', stream: this.id, credit: grant }).catch(() => undefined);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.sendAll(chunk).then(() => callback(), callback);
  }

  /** Small writes that queued up (TLS records, 16 KiB each) go out together, up to RELAY_MAX_DATA_BYTES per RelayData. */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.sendAll(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk))).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.localEnded = true;
    this.options
      .send({ type: 'RelayClose', stream: this.id })
      .then(() => {
        callback();
        this.maybeGone();
      }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const wake = this.creditWaiter;
    this.creditWaiter = null;
    wake?.();
    if (!this.gone && !(this.localEnded && this.remoteEnded)) {
      // Destroyed here before both sides finished: the other end must not wait for more.
      void this.options.send({ type: 'RelayClose', stream: this.id, code: 'CLOSED', reason: 'stream closed' }).catch(() => undefined);
    }
    this.markGone();
    callback(error);
  }

  private async sendAll(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      while (this.sendCredit <= 0) {
        if (this.destroyed) throw new FerryError('CLOSED', 'relayed stream closed');
        await new Promise<void>((resolve) => (this.creditWaiter = resolve));
      }
      if (this.destroyed) throw new FerryError('CLOSED', 'relayed stream closed');
      const size = Math.min(chunk.length - offset, this.sendCredit, RELAY_MAX_DATA_BYTES);
      const data = chunk.subarray(offset, offset + size);
      offset += size;
      this.sendCredit -= size;
      this.bytesOut += size;
      await this.options.send({ type: 'RelayData', stream: this.id, data });
    }
  }

  private maybeGone(): void {
    if (this.localEnded && this.remoteEnded) this.markGone();
  }

  private markGone(): void {
    if (this.gone) return;
    this.gone = true;
    this.options.onGone();
  }
}
