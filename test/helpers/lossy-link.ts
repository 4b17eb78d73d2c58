// A userspace lossy UDP link for transport tests (the test kernel has no netem): datagrams from a
// client to `port` go on to `target`, the target's answers back to that client, each direction
// dropping a share, reordering a share (a packet held back until the next one passed, or 2 ms), and
// optionally delayed. Deterministic: a seeded generator decides.

import { createSocket, type Socket } from 'node:dgram';

export interface LossyLinkOptions {
  target: { address: string; port: number };
  /** Share of datagrams dropped, each direction. */
  loss?: number;
  /** Share of datagrams held back behind the next one. */
  reorder?: number;
  /** One-way delay added, ms. */
  delayMs?: number;
  seed?: number;
  /**
   * Drops the first `count` datagrams larger than `bytes` (a path that lost a packet-size probe; a copy of one sent
   * again, known by its last 16 bytes, passes), and up to `burst` datagrams that follow each of them the same way
   * within BURST_MS: a probe lost with the burst it was sent in, as when a receiver's socket buffer overflows.
   */
  dropLarger?: { bytes: number; count: number; burst?: number };
}

/** How long after a dropped large datagram its burst lasts: far below µTP's shortest timeout (250 ms). */
const BURST_MS = 50;

export class LossyLink {
  private socket: Socket | null = null;
  private client: { address: string; port: number } | null = null;
  private held: { buf: Buffer; to: { address: string; port: number } } | null = null;
  private state: number;
  dropped = 0;
  droppedLarger = 0;
  /** The last 16 bytes of each large datagram dropped, hex. */
  private readonly droppedLargeTails = new Set<string>();
  /** Datagrams still to drop after a dropped large one, and until when (ms), per direction (to the target, from it). */
  private readonly burst = { to: { left: 0, untilMs: 0 }, from: { left: 0, untilMs: 0 } };
  reordered = 0;
  forwarded = 0;

  constructor(private readonly options: LossyLinkOptions) {
    this.state = options.seed ?? 1;
  }

  async open(): Promise<number> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    socket.setRecvBufferSize(4 * 1024 * 1024);
    socket.setSendBufferSize(4 * 1024 * 1024);
    socket.on('message', (buf, from) => this.onMessage(buf, from));
    this.socket = socket;
    return socket.address().port;
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private random(): number {
    // xorshift32
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 0x100000000;
  }

  private onMessage(buf: Buffer, from: { address: string; port: number }): void {
    const { target } = this.options;
    const fromTarget = from.address === target.address && from.port === target.port;
    if (!fromTarget) this.client = { address: from.address, port: from.port };
    const to = fromTarget ? this.client : target;
    if (!to) return;
    const large = this.options.dropLarger;
    const direction = fromTarget ? 'from' : 'to';
    if (large && buf.length > large.bytes && this.droppedLarger < large.count) {
      const tail = buf.subarray(buf.length - 16).toString('hex');
      if (!this.droppedLargeTails.has(tail)) {
        this.droppedLargeTails.add(tail);
        this.droppedLarger++;
        this.burst[direction] = { left: large.burst ?? 0, untilMs: Date.now() + BURST_MS };
        return;
      }
    }
    const burst = this.burst[direction];
    if (burst.left > 0 && Date.now() <= burst.untilMs) {
      burst.left--;
      this.dropped++;
      return;
    }
    if (this.random() < (this.options.loss ?? 0)) {
      this.dropped++;
      return;
    }
    if (!this.held && this.random() < (this.options.reorder ?? 0)) {
      const held = { buf, to };
      this.held = held;
      this.reordered++;
      // Held behind the next packet, or a moment at most when none follows (a link never keeps one forever).
      setTimeout(() => {
        if (this.held !== held) return;
        this.held = null;
        this.forward(held.buf, held.to);
      }, 2);
      return;
    }
    this.forward(buf, to);
    const held = this.held;
    if (held) {
      this.held = null;
      this.forward(held.buf, held.to);
    }
  }

  private forward(buf: Buffer, to: { address: string; port: number }): void {
    this.forwarded++;
    const send = (): void => this.socket?.send(buf, to.port, to.address);
    if (this.options.delayMs) setTimeout(send, this.options.delayMs);
    else send();
  }
}
