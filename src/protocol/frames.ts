// Wire framing: `u32 length (big-endian, covers type+body) | u8 type | body`, msgpack bodies, and a streaming decoder.

import { Packr } from 'msgpackr';
import { FerryError } from '../errors.js';

/** Largest block a Response carries (the design's largest block size). */
export const MAX_BLOCK_BYTES = 16 * 1024 * 1024;

/** Hard ceiling on `type + body` of any frame: one full block plus room for the envelope. */
export const MAX_FRAME_BYTES = MAX_BLOCK_BYTES + 64 * 1024;

/** Bytes of the length prefix. */
export const FRAME_HEADER_BYTES = 4;

export interface Frame {
  type: number;
  body: Buffer;
}

/**
 * The one msgpack codec of the protocol. Records are off (no shared structures between
 * messages), maps decode as plain objects, 64-bit integers as numbers (validators then
 * require safe integers). Never key an object by a file name: msgpackr renames `__proto__`.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export function encodeBody(value: unknown): Buffer {
  return packr.pack(value);
}

/**
 * Decodes exactly one msgpack value filling `body`. Trailing bytes are an error; we check them
 * ourselves because msgpackr's own trailing-data error JSON-serialises the whole value first.
 */
export function decodeBody(body: Buffer): unknown {
  let value: unknown;
  let end = -1;
  try {
    packr.unpackMultiple(body, (decoded: unknown, _start?: number, position?: number) => {
      value = decoded;
      end = position ?? -1;
      return false;
    });
  } catch (err) {
    throw new FerryError('PROTOCOL', `malformed message body: ${(err as Error).message}`, { cause: err });
  }
  if (end !== body.length) throw new FerryError('PROTOCOL', 'malformed message body: trailing bytes');
  return value;
}

/** One frame as bytes, ready to write. */
export function encodeFrame(type: number, body: Buffer, maxFrameBytes = MAX_FRAME_BYTES): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new FerryError('INTERNAL', `bad frame type ${type}`);
  const length = 1 + body.length;
  if (length > maxFrameBytes) {
    throw new FerryError('FRAME_TOO_LARGE', `frame of ${length} bytes exceeds ${maxFrameBytes}`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  frame[FRAME_HEADER_BYTES] = type;
  body.copy(frame, FRAME_HEADER_BYTES + 1);
  return frame;
}

export interface FrameDecoderOptions {
  /** Ceiling on `type + body` of any frame. @default MAX_FRAME_BYTES */
  maxFrameBytes?: number;
  /**
   * Per-type ceiling on `type + body`, checked as soon as the type byte arrives, before the body
   * is buffered; `undefined` means the type is unknown (a PROTOCOL error).
   */
  maxBytesForType?: (type: number) => number | undefined;
  /** Where a frame spanning several chunks is assembled (a BufferPool's take). @default Buffer.allocUnsafe */
  allocate?: (size: number) => Buffer;
  /**
   * After a frame of a type for which this is true, the decoder holds: later bytes are kept
   * unread (no header or type checked) until release(), so limits can change in between.
   */
  holdAfter?: (type: number) => boolean;
}

/**
 * Push parser: feed chunks, get whole frames. It holds at most one partial frame, whose size was
 * checked against the limits from its header before any of its body was kept.
 */
export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private readonly maxBytesForType: ((type: number) => number | undefined) | undefined;
  private readonly allocate: (size: number) => Buffer;
  private readonly holdAfter: ((type: number) => boolean) | undefined;
  private holding = false;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** `type + body` length of the frame being assembled, once its header was read. */
  private expected: number | null = null;
  private typeChecked = false;
  /** pushTransient(): the frame (`type + body`) being filled, and how many of its bytes are in. */
  private assembly: Buffer | null = null;
  private filled = 0;
  /** pushTransient(): the length prefix and type byte, while they are split between chunks. */
  private readonly head = Buffer.alloc(FRAME_HEADER_BYTES + 1);
  private headFilled = 0;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.maxBytesForType = options.maxBytesForType;
    this.allocate = options.allocate ?? Buffer.allocUnsafe;
    this.holdAfter = options.holdAfter;
  }

  /** True while holding after a frame named by holdAfter. */
  get held(): boolean {
    return this.holding;
  }

  /** Ends a hold: returns the frames the bytes kept meanwhile complete (checked against the limits now in force). */
  release(): Frame[] {
    this.holding = false;
    return this.push(Buffer.alloc(0));
  }

  /** Bytes held for the frame in progress. */
  get bufferedBytes(): number {
    return this.buffered + (this.assembly ? this.filled : this.headFilled);
  }

  /** Adds a chunk; returns the frames it completed. Throws PROTOCOL / FRAME_TOO_LARGE on bad input. */
  push(chunk: Buffer): Frame[] {
    // A frame begun by pushTransient() is finished the same way (which copies, so any chunk will do).
    if (this.assembly !== null || this.headFilled > 0) return this.pushTransient(chunk);
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    for (;;) {
      if (this.holding) break;
      if (this.expected === null) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        this.expected = this.checkLength(this.take(FRAME_HEADER_BYTES).readUInt32BE(0));
        this.typeChecked = false;
      }
      if (!this.typeChecked && this.buffered >= 1) {
        this.checkType(this.chunks[0]![0]!, this.expected);
        this.typeChecked = true;
      }
      if (this.buffered < this.expected) break;
      const payload = this.take(this.expected);
      this.expected = null;
      frames.push({ type: payload[0]!, body: payload.subarray(1) });
      if (this.holdAfter?.(payload[0]!)) this.holding = true;
    }
    return frames;
  }

  /**
   * As push(), for a chunk whose memory the caller reuses as soon as this returns (a socket's own
   * read buffer): nothing returned or kept refers to it. Each frame is copied once, straight into
   * its own buffer (allocate()) as its bytes arrive, so a stream of chunks costs no buffer per
   * chunk. Its limits are checked from the header, before that buffer is taken.
   */
  pushTransient(chunk: Buffer): Frame[] {
    if (this.holding) return this.push(Buffer.from(chunk));
    if (this.buffered > 0 || this.expected !== null) this.adoptBuffered();
    const frames: Frame[] = [];
    let at = 0;
    for (;;) {
      if (this.assembly === null) {
        if (at >= chunk.length) break;
        const n = Math.min(this.head.length - this.headFilled, chunk.length - at);
        chunk.copy(this.head, this.headFilled, at, at + n);
        this.headFilled += n;
        at += n;
        // The length is checked as soon as it is known, as push() does.
        if (this.headFilled >= FRAME_HEADER_BYTES) this.checkLength(this.head.readUInt32BE(0));
        if (this.headFilled < this.head.length) break;
        this.headFilled = 0;
        const length = this.head.readUInt32BE(0);
        this.checkType(this.head[FRAME_HEADER_BYTES]!, length);
        this.assembly = this.allocate(length);
        this.assembly[0] = this.head[FRAME_HEADER_BYTES]!;
        this.filled = 1;
      }
      const n = Math.min(this.assembly.length - this.filled, chunk.length - at);
      chunk.copy(this.assembly, this.filled, at, at + n);
      this.filled += n;
      at += n;
      if (this.filled < this.assembly.length) break;
      const payload = this.assembly;
      this.assembly = null;
      frames.push({ type: payload[0]!, body: payload.subarray(1) });
      if (this.holdAfter?.(payload[0]!)) {
        this.holding = true;
        // Kept unread, as push() keeps them (a copy: the chunk is not ours).
        if (at < chunk.length) {
          this.chunks.push(Buffer.from(chunk.subarray(at)));
          this.buffered += chunk.length - at;
        }
        break;
      }
    }
    return frames;
  }

  /**
   * Where the next `atLeast` or more bytes of the stream may be written in place: the rest of the
   * frame being assembled (pushTransient), when that many or more of it are still to come; else
   * undefined. Bytes written there are handed in with filledInPlace(), not push(): the socket reads
   * a large frame's body straight into its buffer, without a copy out of its own read buffer.
   */
  directTarget(atLeast: number): Buffer | undefined {
    if (this.holding || this.assembly === null || this.assembly.length - this.filled < atLeast) return undefined;
    return this.assembly.subarray(this.filled);
  }

  /** `n` bytes were written at the start of the last directTarget(); returns the frame they complete, if they do. */
  filledInPlace(n: number): Frame[] {
    const assembly = this.assembly;
    if (assembly === null || n < 0 || this.filled + n > assembly.length) {
      throw new FerryError('INTERNAL', `${n} bytes written in place beyond the frame being assembled`);
    }
    this.filled += n;
    if (this.filled < assembly.length) return [];
    this.assembly = null;
    if (this.holdAfter?.(assembly[0]!)) this.holding = true;
    return [{ type: assembly[0]!, body: assembly.subarray(1) }];
  }

  /** What push() holds of a partial frame moves into pushTransient()'s state. */
  private adoptBuffered(): void {
    if (this.expected !== null && !this.typeChecked) {
      // Only the length prefix so far: the type byte is checked before the frame's buffer is taken.
      this.head.writeUInt32BE(this.expected, 0);
      this.headFilled = FRAME_HEADER_BYTES;
      this.expected = null;
    } else if (this.expected !== null) {
      this.assembly = this.allocate(this.expected);
      this.filled = 0;
      for (const chunk of this.chunks) this.filled += chunk.copy(this.assembly, this.filled);
      this.expected = null;
    } else {
      for (const chunk of this.chunks) this.headFilled += chunk.copy(this.head, this.headFilled);
    }
    this.chunks = [];
    this.buffered = 0;
  }

  private checkLength(length: number): number {
    if (length < 1) throw new FerryError('PROTOCOL', 'empty frame (no type byte)');
    if (length > this.maxFrameBytes) {
      throw new FerryError('FRAME_TOO_LARGE', `frame of ${length} bytes exceeds ${this.maxFrameBytes}`);
    }
    return length;
  }

  /** Call at end of stream: a partial frame is a PROTOCOL error. */
  end(): void {
    if (this.buffered > 0 || this.expected !== null || this.assembly !== null || this.headFilled > 0) {
      throw new FerryError('PROTOCOL', 'stream ended inside a frame');
    }
  }

  private checkType(type: number, length: number): void {
    if (!this.maxBytesForType) return;
    const limit = this.maxBytesForType(type);
    if (limit === undefined) throw new FerryError('PROTOCOL', `unknown message type ${type}`);
    if (length > limit) {
      throw new FerryError('FRAME_TOO_LARGE', `frame of type ${type} with ${length} bytes exceeds ${limit}`);
    }
  }

  /** Removes and returns the first `n` buffered bytes (zero-copy when they sit in one chunk). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = this.allocate(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.chunks[0]!;
        const count = Math.min(chunk.length, n - filled);
        chunk.copy(out, filled, 0, count);
        filled += count;
        if (count === chunk.length) this.chunks.shift();
        else this.chunks[0] = chunk.subarray(count);
      }
    }
    this.buffered -= n;
    return out;
  }
}
