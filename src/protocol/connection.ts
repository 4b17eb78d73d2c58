// PeerConnection: validated messages over one byte stream, with backpressure, requests, keepalive and close.

import { setMaxListeners } from 'node:events';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { FerryError, isFerryError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { BufferPool } from '../util/buffer-pool.js';
import { Resource } from '../util/resource.js';
import { FrameDecoder, MAX_FRAME_BYTES, type Frame } from './frames.js';
import {
  encodeMessageFrame,
  maxBytesForType,
  type Message,
  type RequestMessage,
  type ResponseError,
  type ResponseMessage,
} from './messages.js';
import {
  LAST_HANDSHAKE_CODE,
  PRE_HANDSHAKE_CONNECTION_BYTES,
  preHandshakeMaxBytes,
  type PreHandshakeBudget,
} from './pre-handshake.js';
import { dataResponseFrame, relayDataFrame, RESPONSE_HEADER_BYTES, writeDataResponseHeader } from './response-frame.js';
import { decodeMessage } from './validate.js';

/** @default values of PeerConnectionOptions */
export const PING_INTERVAL_MS = 60_000;
export const IDLE_TIMEOUT_MS = 180_000;
export const REQUEST_TIMEOUT_MS = 60_000;
export const MAX_OUTSTANDING_REQUESTS = 64;
export const MAX_QUEUED_MESSAGES = 32;
export const CLOSE_TIMEOUT_MS = 5_000;
/** Close code of a link another link to the same device replaced; ended without failing a request (docs/protocol.md). */
export const CLOSE_SUPERSEDED = 'SUPERSEDED';
/** How long a superseded link may take to drain (its requests answered both ways) before it is closed anyway. */
export const SUPERSEDE_DRAIN_MS = 30_000;
/** A superseded link whose answers stopped coming for this long is taken for dead: its requests fail (and go elsewhere). */
export const SUPERSEDE_QUIET_MS = 10_000;
/** How long close() waits for the peer to hang up when the link never completed its handshake. */
export const PRE_HANDSHAKE_CLOSE_MS = 1_000;
/** Idle block buffers a connection keeps for reuse. */
const IDLE_BUFFER_BYTES = 8 * 1024 * 1024;

/** The socket's own read buffer (see readIntoOwnBuffer): TLS hands over one record (at most 16 KiB) per read. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * Makes a socket (net.Socket or TLSSocket, over TCP or over any Duplex such as µTP) read into one
 * buffer of its own and hand each read to `onRead` (a view of `buffer`, valid until it returns),
 * instead of a fresh Buffer per read as 'data' events. Why: a receiver got one new ArrayBuffer per
 * 16 KiB TLS record, which lived until the next scavenge: 40-60 MiB of them at a time on a
 * receiver of a 250 MiB sync (512 MiB over TLS on loopback, both ends in one process: 0.62 s of
 * CPU against 1.0 s, peak anonymous memory 28 against 67 MiB).
 * Node's public `onread` option does exactly this, but only for a socket it creates itself
 * (tls.connect without `socket`), not for a server's sockets or TLS over another stream; the two
 * slots it fills (the buffer and the callback, own properties of every net.Socket) are filled here
 * for any socket. pause() and resume() work as documented for `onread`; 'end', 'error' and 'close'
 * are unchanged. False (nothing changed) where the stream has no such slots.
 */
export function readIntoOwnBuffer(stream: Duplex, buffer: Buffer, onRead: (bytes: Buffer) => void, direct?: DirectReads): boolean {
  const slots = Object.getOwnPropertySymbols(stream);
  const bufferSlot = slots.find((s) => s.description === 'kBuffer');
  const callbackSlot = slots.find((s) => s.description === 'kBufferCb');
  const generatorSlot = slots.find((s) => s.description === 'kBufferGen');
  const handle = (stream as unknown as { _handle?: { useUserBuffer?: (buffer: Uint8Array) => void } | null })._handle;
  if (!(stream instanceof Socket) || !bufferSlot || !callbackSlot || typeof handle?.useUserBuffer !== 'function') return false;
  const slotted = stream as unknown as Record<symbol, unknown>;
  if (slotted[bufferSlot] !== null || slotted[callbackSlot] !== null) return false; // already reading this way
  slotted[bufferSlot] = buffer;
  // Node passes the buffer it read into (with a generator, not always `buffer`).
  slotted[callbackSlot] = (nread: number, into: Uint8Array = buffer): void => {
    if (into === buffer) onRead(buffer.subarray(0, nread));
    else direct!.filled(nread);
  };
  // With a generator (Node's `onread.buffer` as a function), Node asks after each read where the next one goes: a
  // large frame's own buffer while its body arrives, this buffer otherwise (undefined: where it went last).
  if (direct && generatorSlot && slotted[generatorSlot] === null) {
    let current: Uint8Array = buffer;
    slotted[generatorSlot] = (): Uint8Array | undefined => {
      const next = direct.target() ?? buffer;
      if (next === current) return undefined;
      current = next;
      return next;
    };
  }
  handle.useUserBuffer(buffer);
  return true;
}

/** Reads straight into buffers other than the socket's own (readIntoOwnBuffer). */
export interface DirectReads {
  /** Where the next read goes, if not into the socket's own buffer (asked after every read). */
  target(): Uint8Array | undefined;
  /** `n` bytes were read into the last target. */
  filled(n: number): void;
}

/**
 * The rest of a frame being received goes straight into its own buffer (no copy out of the socket's
 * read buffer) when at least this much of it is still to come: a block Response's body, read by
 * TLS one record (16 KiB at most) at a time.
 */
const DIRECT_READ_MIN_BYTES = 16 * 1024;


export interface PeerConnectionOptions {
  logger?: Logger;
  /** Send a Ping when nothing was sent for this long. @default PING_INTERVAL_MS */
  pingIntervalMs?: number;
  /** Close when nothing was received for this long. @default IDLE_TIMEOUT_MS */
  idleTimeoutMs?: number;
  /** @default REQUEST_TIMEOUT_MS */
  requestTimeoutMs?: number;
  /** request() waits for a slot beyond this many. @default MAX_OUTSTANDING_REQUESTS */
  maxOutstandingRequests?: number;
  /** Incoming messages held for the consumer before reading pauses. @default MAX_QUEUED_MESSAGES */
  maxQueuedMessages?: number;
  /** How long close() waits for the peer to hang up before destroying the stream. @default CLOSE_TIMEOUT_MS */
  closeTimeoutMs?: number;
  /** Sees every frame (for debugging and tests); must not throw. */
  observer?: (direction: 'in' | 'out', type: number, body: Buffer) => void;
  /**
   * Starts the link in its handshake (src/protocol/pre-handshake.ts): only handshake messages of
   * at most 256 KiB, at most 1 MiB in all, counted against this shared budget; anything after
   * the peer's ClusterState is held until handshakeDone().
   */
  preHandshake?: PreHandshakeBudget;
}

/** The peer answered a Request with an error code. */
export class RequestFailedError extends FerryError {
  constructor(readonly responseError: ResponseError, detail: string) {
    super('REQUEST_FAILED', `peer answered ${responseError}: ${detail}`);
  }
}

export type RequestParams = Omit<RequestMessage, 'type' | 'id'>;

interface Pending {
  settle(response: ResponseMessage | FerryError): void;
}

/**
 * One peer link. Responses are matched to request() internally; Ping and Close are handled here;
 * every other validated message is queued for the consumer (receive() or `for await`). The queue
 * is bounded, so a consumer that stops reading stops the socket, and with it Responses: never
 * wait for your own request() inside the loop that consumes messages.
 * Any bad input closes this connection with a logged reason; nothing is thrown to the event loop.
 */
export class PeerConnection extends Resource implements AsyncIterable<Message> {
  bytesIn = 0;
  bytesOut = 0;
  /** Why the connection closed, once it did (local or remote reason). */
  closeCode?: string;
  closeReason?: string;
  /** True when the peer sent Close or hung up first. */
  closedByPeer = false;
  /**
   * Block buffers: received frames are assembled in them (give a Response's data back with
   * recycle() once written), and data sent in a Response from here returns here once written.
   */
  readonly buffers = new BufferPool(IDLE_BUFFER_BYTES);
  /**
   * Buffers from blockBuffer(): each one's whole frame buffer, the Response header's room in front
   * of the data. A Response whose data is one of them goes out as one buffer in one write.
   */
  private readonly framed = new WeakMap<Buffer, Buffer>();
  /** Whether the socket reads into one buffer of its own (readIntoOwnBuffer), not a fresh one per read. */
  readsIntoOwnBuffer = false;

  private readonly log: Logger;
  private readonly pingIntervalMs: number;
  private readonly idleTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxOutstanding: number;
  private readonly maxQueued: number;
  private readonly closeTimeoutMs: number;
  private readonly observer: PeerConnectionOptions['observer'];
  /** Set until handshakeDone(): the shared budget and the bytes this link took from it. */
  private gate: { budget: PreHandshakeBudget; taken: number } | null;
  private decoder: FrameDecoder | null = null;

  private readonly queue: Message[] = [];
  private readonly readers: Array<() => void> = [];
  private readonly pending = new Map<number, Pending>();
  private readonly slotWaiters: Array<() => void> = [];
  private nextRequestId = 1;
  private lastSentAtMs = Date.now();
  private lastReceivedAtMs = Date.now();
  private keepalive: NodeJS.Timeout | null = null;
  private drained: Promise<void> | null = null;
  /** The stream is corked until the next tick (corkUntilNextTick). */
  private corkedForTick = false;
  private corkGeneration = 0;
  private readonly streamClosed: Promise<void>;
  /** Set once supersede() began; its promise. */
  private superseding: Promise<void> | null = null;
  /** We sent our Close SUPERSEDED (the link stays open until the peer's). */
  private sentSuperseded = false;
  /** The peer sent Close SUPERSEDED: it asks nothing more here. */
  private peerSuperseded = false;
  /** Wakes supersede() when a request settles or the peer's Close SUPERSEDED arrives. */
  private drainWaiter: (() => void) | null = null;
  /**
   * Told when the peer sends Close SUPERSEDED while this side has not begun supersede(): the link
   * keeper (src/connections/) calls supersede() once its own replacement link is kept. Without a
   * handler supersede() starts at once.
   */
  onPeerSuperseded: (() => void) | null = null;
  /** Aborted when the connection closes: wakes everything waiting on the stream. */
  private readonly lifetime = new AbortController();

  constructor(private readonly stream: Duplex, options: PeerConnectionOptions = {}) {
    super();
    this.log = options.logger ?? silentLogger;
    this.pingIntervalMs = options.pingIntervalMs ?? PING_INTERVAL_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.maxOutstanding = options.maxOutstandingRequests ?? MAX_OUTSTANDING_REQUESTS;
    this.maxQueued = options.maxQueuedMessages ?? MAX_QUEUED_MESSAGES;
    this.closeTimeoutMs = options.closeTimeoutMs ?? CLOSE_TIMEOUT_MS;
    this.observer = options.observer;
    this.gate = options.preHandshake ? { budget: options.preHandshake, taken: 0 } : null;
    // Each outstanding request (and each waiter for a slot) listens on it: bounded, not a leak.
    setMaxListeners(2 * this.maxOutstanding + 16, this.lifetime.signal);
    // A stream error must never become an uncaught exception; the read loop reports it.
    stream.on('error', (err) => this.log.debug('stream error', { err }));
    this.streamClosed = new Promise((resolve) => {
      if (stream.destroyed) resolve();
      else stream.once('close', () => resolve());
    });
    void this.streamClosed.then(() => {
      if (!this.closed) this.fail('CLOSED', 'connection lost', true);
    });
  }

  protected async _open(): Promise<void> {
    this.startReading();
    const tickMs = Math.max(5, Math.min(this.pingIntervalMs, this.idleTimeoutMs) / 4);
    this.keepalive = setInterval(() => this.tick(), tickMs);
    this.keepalive.unref();
  }

  /**
   * A buffer of `size` bytes (from `buffers`) to read a block into that this connection will send in
   * a Response: the frame's header has room right before it, so the Response is one buffer and one
   * write. Two buffers written together cost a TLS socket a copy of both into a fresh, zeroed
   * allocation (Node's TLSWrap joins them for one SSL_write): 1 MiB per response of a large file.
   */
  blockBuffer(size: number): Buffer {
    const whole = this.buffers.take(RESPONSE_HEADER_BYTES + size);
    const data = whole.subarray(RESPONSE_HEADER_BYTES);
    this.framed.set(data, whole);
    return data;
  }

  /** Sends a message; resolves once the stream accepted it (waits for 'drain' when its buffer is full). */
  async send(message: Message): Promise<void> {
    if (this.closed) throw this.closedError();
    const whole = message.type === 'Response' && message.data !== undefined ? this.framed.get(message.data) : undefined;
    if (whole && message.type === 'Response' && message.error === undefined && !this.observer && whole.length === RESPONSE_HEADER_BYTES + message.data!.length) {
      this.framed.delete(message.data!);
      writeDataResponseHeader(whole, message.id, message.data!.length);
      this.countOut(whole);
      this.flushCorked(); // frames corked this tick leave first; the block goes alone, not copied into a joined write
      const flowing = this.stream.write(whole, () => this.buffers.recycle(whole));
      if (!flowing) await this.waitForDrain();
      return;
    }
    if (message.type === 'Response' && message.data !== undefined && message.error === undefined && !this.observer) {
      // Blocks are most of the traffic: frame them without copying the data into an encoder buffer.
      const [header, data] = dataResponseFrame(message.id, message.data);
      this.stream.cork();
      this.countOut(header, data.length);
      this.stream.write(header);
      // Back to the pool once the stream is done with it (a no-op for buffers not from it).
      const flowing = this.stream.write(data, () => this.buffers.recycle(data));
      process.nextTick(() => this.stream.uncork());
      if (!flowing) await this.waitForDrain();
      return;
    }
    if (message.type === 'RelayData' && !this.observer) {
      // Relayed bytes likewise: one small header, the data as it is.
      const [header, data] = relayDataFrame(message.stream, message.data);
      this.stream.cork();
      this.countOut(header, data.length);
      this.stream.write(header);
      const flowing = this.stream.write(data);
      process.nextTick(() => this.stream.uncork());
      if (!flowing) await this.waitForDrain();
      return;
    }
    await this.writeFrame(encodeMessageFrame(message));
  }

  /** The next queued message; CLOSED once the connection closed and the queue is empty. */
  async receive(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Message> {
    for (;;) {
      const message = this.queue.shift();
      if (message) {
        if (this.queue.length < this.maxQueued && !this.closed && !this.decoder?.held) this.stream.resume();
        return message;
      }
      if (this.closed) throw this.closedError();
      await this.waitForMessage(options);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    for (;;) {
      try {
        yield await this.receive();
      } catch (err) {
        if (isFerryError(err, 'CLOSED')) return;
        throw err;
      }
    }
  }

  /** Asks the peer for a block; resolves with its bytes. TIMEOUT, ABORTED, CLOSED or RequestFailedError. */
  async request(params: RequestParams, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Buffer> {
    const timeoutMs = options.timeoutMs ?? this.requestTimeoutMs;
    const callerSignal = options.signal;
    // Plain listeners on the two signals (AbortSignal.any per request costs more than the request on a fast link).
    let timedOut = false;
    const abortError = (): FerryError =>
      this.lifetime.signal.aborted
        ? this.closedError()
        : timedOut
          ? new FerryError('TIMEOUT', `request timed out after ${timeoutMs} ms`)
          : new FerryError('ABORTED', 'request aborted');
    const aborted = (): boolean => timedOut || this.lifetime.signal.aborted || callerSignal?.aborted === true;
    let wake: (() => void) | null = null;
    const onAbort = (): void => wake?.();
    this.lifetime.signal.addEventListener('abort', onAbort);
    callerSignal?.addEventListener('abort', onAbort);
    // A ref'd timer (unlike AbortSignal.timeout): a pending request is work the process waits for.
    const timer = setTimeout(() => {
      timedOut = true;
      onAbort();
    }, timeoutMs);
    try {
      if (aborted()) throw abortError();
      while (this.pending.size >= this.maxOutstanding) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.slotWaiters.push(resolve);
        });
        wake = null;
        if (aborted()) throw abortError();
      }
      const id = this.allocateRequestId();
      const response = await new Promise<ResponseMessage | FerryError>((resolve) => {
        const settle = (result: ResponseMessage | FerryError): void => {
          if (!this.pending.delete(id)) return;
          wake = null;
          if (this.pending.size === 0) this.drainWaiter?.();
          // Every waiter re-checks for a free slot; aborted ones simply leave.
          for (const next of this.slotWaiters.splice(0)) next();
          resolve(result);
        };
        wake = () => settle(abortError());
        this.pending.set(id, { settle });
        this.send({ type: 'Request', id, ...params }).catch((err: unknown) =>
          settle(isFerryError(err) ? err : new FerryError('CLOSED', String(err))),
        );
      });
      if (response instanceof FerryError) throw response;
      if (response.error !== undefined) throw new RequestFailedError(response.error, `${params.path} @${params.offset}`);
      return response.data!;
    } finally {
      clearTimeout(timer);
      this.lifetime.signal.removeEventListener('abort', onAbort);
      callerSignal?.removeEventListener('abort', onAbort);
    }
  }

  /** The handshake accepted the peer: every message type and size is allowed from now on, held bytes are read. */
  handshakeDone(): void {
    this.releaseGate();
    const decoder = this.decoder;
    if (this.closed || !decoder?.held) return;
    try {
      this.deliver(decoder.release());
    } catch (err) {
      this.readFailed(err);
      return;
    }
    if (this.queue.length < this.maxQueued) this.stream.resume();
  }

  private releaseGate(): void {
    if (!this.gate) return;
    this.gate.budget.give(this.gate.taken);
    this.gate = null;
  }

  /** Charges a chunk received during the handshake; closes the link (false) when it is over a bound. */
  private chargePreHandshake(bytes: number): boolean {
    const gate = this.gate!;
    if (gate.taken + bytes > PRE_HANDSHAKE_CONNECTION_BYTES) {
      this.fail('PROTOCOL', `more than ${PRE_HANDSHAKE_CONNECTION_BYTES} bytes before the handshake completed`);
      return false;
    }
    if (!gate.budget.take(bytes)) {
      this.fail('BUSY', 'too many bytes buffered by connections in their handshake');
      return false;
    }
    gate.taken += bytes;
    return true;
  }

  /**
   * Ends a link another link to the same device replaced, failing no request (docs/protocol.md,
   * SUPERSEDED): the caller sends no new Request here; once ours are answered, Close SUPERSEDED
   * goes out, and the link stays up, answering the peer's Requests, until the peer's own Close
   * SUPERSEDED (it has nothing outstanding then either); then it closes. Bounded by `drainMs`
   * in all, after which it closes as close() does. Resolves once closed.
   */
  supersede(reason = 'another link to this device replaces this one', drainMs = SUPERSEDE_DRAIN_MS): Promise<void> {
    if (this.closed) return this.close();
    this.superseding ??= (async () => {
      const deadline = Date.now() + drainMs;
      const until = async (done: () => boolean, quiet = false): Promise<void> => {
        while (!done() && !this.closed && Date.now() < deadline) {
          // Requests outstanding and nothing received for a while: the old link died unnoticed.
          if (quiet && Date.now() - this.lastReceivedAtMs >= SUPERSEDE_QUIET_MS) return;
          let timer: NodeJS.Timeout | undefined;
          let wake = (): void => undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            this.drainWaiter = resolve;
            timer = setTimeout(resolve, quiet ? Math.min(deadline - Date.now(), SUPERSEDE_QUIET_MS / 4) : deadline - Date.now());
            this.lifetime.signal.addEventListener('abort', wake, { once: true });
          });
          clearTimeout(timer);
          this.lifetime.signal.removeEventListener('abort', wake);
          this.drainWaiter = null;
        }
      };
      await until(() => this.pending.size === 0, true);
      if (this.closed) return;
      if (this.pending.size === 0 && this.stream.writable) {
        this.closeCode = CLOSE_SUPERSEDED;
        this.closeReason = this.peerSuperseded ? this.closeReason : reason;
        const frame = encodeMessageFrame({ type: 'Close', code: CLOSE_SUPERSEDED, reason: reason.slice(0, 512) });
        this.countOut(frame);
        this.stream.write(frame);
        this.sentSuperseded = true;
        await until(() => this.peerSuperseded);
      }
      if (this.peerSuperseded) this.closedByPeer = true;
      await this.close(CLOSE_SUPERSEDED, this.peerSuperseded ? (this.closeReason ?? reason) : reason);
    })();
    return this.superseding;
  }

  /** Whether supersede() began here or the peer superseded the link. */
  get superseded(): boolean {
    return this.superseding !== null || this.peerSuperseded;
  }

  /**
   * Closes once: fails pending requests, sends Close (unless the peer closed first), ends the
   * stream and waits up to closeTimeoutMs for the peer to hang up, then destroys it.
   */
  override close(code: string = 'SHUTDOWN', reason = 'closing'): Promise<void> {
    if (!this.closed) {
      this.closeCode = code;
      this.closeReason = reason;
    }
    return super.close();
  }

  protected async _close(): Promise<void> {
    // A link closed during its handshake is drained briefly: a stranger gets no long grace.
    const inHandshake = this.gate !== null;
    this.releaseGate();
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = null;
    const error = this.closedError();
    this.lifetime.abort(error);
    for (const pending of [...this.pending.values()]) pending.settle(error);
    for (const wake of this.readers.splice(0)) wake();
    this.stream.resume(); // drained until the peer hangs up
    if (!this.closedByPeer && !this.sentSuperseded && this.stream.writable) {
      const frame = encodeMessageFrame({ type: 'Close', code: this.closeCode!, reason: this.closeReason!.slice(0, 512) });
      this.countOut(frame);
      this.stream.write(frame);
    }
    if (!this.stream.destroyed) this.stream.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.streamClosed,
      new Promise((resolve) => (timer = setTimeout(resolve, inHandshake ? Math.min(this.closeTimeoutMs, PRE_HANDSHAKE_CLOSE_MS) : this.closeTimeoutMs))),
    ]);
    clearTimeout(timer);
    this.stream.destroy();
  }

  private closedError(): FerryError {
    return new FerryError('CLOSED', `connection closed (${this.closeCode ?? 'CLOSED'}: ${this.closeReason ?? 'closed'})`);
  }

  /** Closes after bad input or a lost link, logging why; never throws. */
  private fail(code: string, reason: string, byPeer = false): void {
    if (this.closed) return;
    if (byPeer) this.closedByPeer = true;
    this.log.warn('closing peer connection', { code, reason });
    this.close(code, reason).catch((err: unknown) => this.log.error('error while closing', { err }));
  }

  /**
   * Frames are cut and dispatched as each chunk arrives ('data' events): an async iterator over the
   * socket cost a promise and several stream calls per 16 KiB TLS record, about 150 MB of garbage
   * per GiB received.
   */
  private startReading(): void {
    const decoder = new FrameDecoder({
      maxFrameBytes: MAX_FRAME_BYTES,
      maxBytesForType: (type) => (this.gate ? preHandshakeMaxBytes(type) : maxBytesForType(type)),
      holdAfter: (type) => this.gate !== null && type === LAST_HANDSHAKE_CODE,
      // An observer may keep frames: then no buffer is reused.
      allocate: this.observer ? undefined : (size) => this.buffers.take(size),
    });
    this.decoder = decoder;
    /** `transient`: the bytes are the socket's own read buffer, overwritten by its next read. */
    const onBytes = (bytes: Buffer, transient: boolean): void => {
      this.bytesIn += bytes.length;
      this.lastReceivedAtMs = Date.now();
      // After close() started, keep draining until the peer hangs up, but keep and act on nothing.
      if (this.closed) return;
      if (decoder.held) {
        // Read while pausing: bounded like the handshake itself.
        if (decoder.bufferedBytes + bytes.length > PRE_HANDSHAKE_CONNECTION_BYTES) {
          this.fail('PROTOCOL', `more than ${PRE_HANDSHAKE_CONNECTION_BYTES} bytes before the handshake completed`);
          return;
        }
      } else if (this.gate && !this.chargePreHandshake(bytes.length)) {
        return;
      }
      try {
        this.deliver(transient ? decoder.pushTransient(bytes) : decoder.push(bytes));
      } catch (err) {
        this.readFailed(err);
      }
      // The peer's handshake is over, ours not yet: read nothing more until handshakeDone().
      if (decoder.held) this.stream.pause();
    };
    // An observer may keep frames: it sees them as they come, in fresh buffers.
    /** Bytes read straight into the frame being assembled (DirectReads). */
    const onFilled = (n: number): void => {
      this.bytesIn += n;
      this.lastReceivedAtMs = Date.now();
      if (this.closed) return;
      try {
        this.deliver(decoder.filledInPlace(n));
      } catch (err) {
        this.readFailed(err);
      }
      if (decoder.held) this.stream.pause();
    };
    // Only after the handshake (its frames are small, and counted against its budget as they come).
    const direct: DirectReads = { target: () => (this.gate || this.closed ? undefined : decoder.directTarget(DIRECT_READ_MIN_BYTES)), filled: onFilled };
    this.readsIntoOwnBuffer =
      !this.observer && readIntoOwnBuffer(this.stream, Buffer.allocUnsafeSlow(READ_BUFFER_BYTES), (bytes) => onBytes(bytes, true), direct);
    if (this.readsIntoOwnBuffer) {
      // What the stream read before this point is still in its buffer.
      for (let chunk: Buffer | null; (chunk = this.stream.read() as Buffer | null) !== null; ) onBytes(chunk, false);
    } else {
      this.stream.on('data', (chunk: Buffer | string) => onBytes(typeof chunk === 'string' ? Buffer.from(chunk) : chunk, false));
    }
    this.stream.once('end', () => {
      try {
        if (!decoder.held) decoder.end();
        this.fail('CLOSED', 'peer hung up', true);
      } catch (err) {
        this.readFailed(err);
      }
    });
    this.stream.once('error', (err) => this.readFailed(err));
    this.stream.resume(); // a 'data' listener alone does not restart a stream someone paused
  }

  private deliver(frames: readonly Frame[]): void {
    for (const frame of frames) {
      if (this.closed) return;
      this.observer?.('in', frame.type, frame.body);
      this.dispatch(decodeMessage(frame.type, frame.body));
    }
  }

  /** FerryErrors are the peer's bad input (answered with Close); anything else is the stream failing. */
  private readFailed(err: unknown): void {
    if (this.closed) return;
    if (isFerryError(err)) this.fail(err.code, err.message);
    else this.fail('CLOSED', `connection lost: ${err instanceof Error ? err.message : String(err)}`, true);
  }

  private dispatch(message: Message): void {
    switch (message.type) {
      case 'Ping':
        return;
      case 'Close':
        if (message.code === CLOSE_SUPERSEDED && !this.peerSuperseded) {
          // Not a close yet: the peer answers what we asked here, and waits for our own Close.
          this.log.debug('peer superseded the connection', { reason: message.reason });
          this.peerSuperseded = true;
          this.closeReason = `peer: ${message.reason}`;
          if (this.superseding) this.drainWaiter?.();
          else if (this.onPeerSuperseded) this.onPeerSuperseded();
          else void this.supersede(message.reason);
          return;
        }
        this.log.info('peer closed the connection', { code: message.code, reason: message.reason });
        this.closedByPeer = true;
        void this.close(message.code, `peer: ${message.reason}`);
        return;
      case 'Response': {
        const pending = this.pending.get(message.id);
        if (pending) pending.settle(message);
        else this.log.debug('response to no outstanding request (timed out?)', { id: message.id });
        return;
      }
      default:
        this.queue.push(message);
        this.readers.shift()?.();
        // Bounded: with maxQueued messages waiting, reading pauses until the consumer takes one (the
        // rest of the chunk at hand is still parsed); the kernel buffers fill and the peer stalls.
        if (this.queue.length >= this.maxQueued) this.stream.pause();
    }
  }

  private waitForMessage(options: { signal?: AbortSignal; timeoutMs?: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (err?: FerryError): void => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        const index = this.readers.indexOf(wake);
        if (index >= 0) this.readers.splice(index, 1);
        if (err) reject(err);
        else resolve();
      };
      const wake = (): void => done();
      const onAbort = (): void => done(new FerryError('ABORTED', 'receive aborted'));
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => done(new FerryError('TIMEOUT', `no message within ${options.timeoutMs} ms`)), options.timeoutMs);
      }
      this.readers.push(wake);
    });
  }

  private async writeFrame(frame: Buffer): Promise<void> {
    this.countOut(frame);
    this.corkUntilNextTick();
    if (this.stream.write(frame)) return;
    await this.waitForDrain();
  }

  /**
   * Frames written in one turn of the event loop leave in one write: a burst of requests for small
   * files (each answered response completes a file, which asks for the next) is one TLS record and one
   * system call, not one each.
   */
  private corkUntilNextTick(): void {
    if (this.corkedForTick) return;
    this.corkedForTick = true;
    this.stream.cork();
    const generation = ++this.corkGeneration;
    process.nextTick(() => {
      if (this.corkGeneration === generation) this.flushCorked();
    });
  }

  /** Writes what corkUntilNextTick held back, now. */
  private flushCorked(): void {
    if (!this.corkedForTick) return;
    this.corkedForTick = false;
    this.stream.uncork();
  }

  private async waitForDrain(): Promise<void> {
    if (this.lifetime.signal.aborted) throw this.closedError();
    // One 'drain' wait shared by every writer, so many concurrent senders add one listener, not many.
    this.drained ??= new Promise<void>((resolve, reject) => {
      const onDrain = (): void => {
        this.lifetime.signal.removeEventListener('abort', onAbort);
        this.drained = null;
        resolve();
      };
      const onAbort = (): void => {
        this.stream.off('drain', onDrain);
        this.drained = null;
        reject(this.closedError());
      };
      this.stream.once('drain', onDrain);
      this.lifetime.signal.addEventListener('abort', onAbort, { once: true });
    });
    await this.drained;
  }

  /** Counts a frame going out; `extraBytes` follow `frame` when it is only the frame's head. */
  private countOut(frame: Buffer, extraBytes = 0): void {
    this.bytesOut += frame.length + extraBytes;
    this.lastSentAtMs = Date.now();
    this.observer?.('out', frame[4]!, frame.subarray(5));
  }

  private allocateRequestId(): number {
    do {
      this.nextRequestId = this.nextRequestId >= 0xffffffff ? 1 : this.nextRequestId + 1;
    } while (this.pending.has(this.nextRequestId));
    return this.nextRequestId;
  }

  private tick(): void {
    const now = Date.now();
    if (now - this.lastReceivedAtMs >= this.idleTimeoutMs) {
      this.fail('TIMEOUT', `nothing received for ${this.idleTimeoutMs} ms`);
    } else if (now - this.lastSentAtMs >= this.pingIntervalMs) {
      this.send({ type: 'Ping' }).catch(() => undefined);
    }
  }
}
