// One µTP connection (BEP 29) as a Node Duplex: reliable, ordered bytes over UDP datagrams with
// selective acks, fast retransmit, retransmission timeouts, LEDBAT congestion control, the peer's
// receive window for flow control, and backpressure both ways (writes wait while the send buffer
// is full; the advertised window shrinks while the reader lags). Acks are batched: one per turn of
// the event loop, however many packets arrived in it.

import { Duplex } from 'node:stream';
import { FerryError } from '../errors.js';
import { Ledbat } from './ledbat.js';
import {
  HEADER_BYTES,
  MAX_SACK_BYTES,
  ST_DATA,
  ST_FIN,
  ST_RESET,
  ST_STATE,
  ST_SYN,
  encodePacket,
  nowMicros,
  seqDiff,
  writeHeader,
  type PacketType,
  type UtpPacket,
} from './utp-packet.js';
import type { UdpEndpoint } from './udp-socket.js';

/** Payload bytes per packet: 1,400-byte datagrams fit the internet's usual 1,500-byte MTU with room for tunnels. */
export const MAX_PAYLOAD = 1380;
/**
 * Payload bytes per packet on a loopback path, once one probe packet of that size came back acked
 * on its first transmission (BEP 29 packets are sized to the path; other paths keep MAX_PAYLOAD,
 * as a bigger datagram would be fragmented on the way rather than refused): the largest UDP
 * datagram over IPv4 (65,507 bytes) less the largest header. Against 16 KiB packets: a quarter of
 * the packets, sends, receives and acks per MiB (bench/transport.ts, docs/benchmarks.md).
 */
export const LOOPBACK_PAYLOAD = 65_507 - (HEADER_BYTES + 2 + MAX_SACK_BYTES);
/**
 * Size probes lost alone (the packets around them arrived) before a path is taken to carry only
 * MAX_PAYLOAD (RFC 8899's MAX_PROBES). A probe lost with the burst around it or in a timeout is not
 * counted: on a busy machine that is a receiver's full socket buffer, no sign of the path's size (three
 * probes lost in bursts kept a loopback sender at 1,380-byte packets: test/transport/utp.test.ts).
 */
export const MAX_SIZE_PROBES = 3;
/** @default of UtpConnectionOptions.windowBytes: receive buffer advertised, and the congestion window's ceiling. */
export const WINDOW_BYTES = 4 * 1024 * 1024;
/** Application bytes queued before packets before write() reports backpressure. */
export const SEND_BUFFER_BYTES = 1024 * 1024;
/** Out-of-order packets kept, at most (beyond it they are dropped and sent again by the peer). */
const MAX_REORDER_PACKETS = 4096;
/** RFC 6298 bounds, with µTP's floor. */
const MIN_RTO_MS = 250;
const MAX_RTO_MS = 8_000;
const INITIAL_RTO_MS = 1_000;
/** A SYN is sent again this often (± a quarter, jittered) while connecting: it also punches NATs. */
export const SYN_INTERVAL_MS = 200;
/** Nothing received for this long: the connection is dead. */
export const IDLE_TIMEOUT_MS = 30_000;
/** Nothing sent for this long: a STATE keeps the NATs' mappings open and tells the peer we live. */
export const KEEPALIVE_MS = 10_000;
/** An accepted SYN that proved no round trip within this long is forgotten. */
export const HALF_OPEN_TIMEOUT_MS = 10_000;
const TICK_MS = 50;
/** Packets SACKed past a hole that make it count as lost (as 3 duplicate acks in TCP). */
const DUP_ACKS = 3;
/** Received payloads averaging under this many bytes are joined before they go to the reader. */
const JOIN_BELOW = 16 * 1024;
/**
 * Written data is copied into send blocks of this size, which go back to the connection's free list
 * once every packet sliced from them is acked: a bulk sender reuses the same few megabytes. Sending
 * the writer's own chunks (TLS over a Duplex hands each write over as a fresh copy) kept each alive
 * until its ack; those in flight at a young collection were promoted, and a sender's ArrayBuffers
 * then piled up in the old generation to 30 MB between full collections, each buffer on fresh pages
 * (the kernel's page zeroing 12 % of the sender's CPU; bench/transport.ts, perf).
 */
export const SEND_BLOCK = 64 * 1024;
/** Free send blocks kept for reuse, at most: the window's ceiling and the send buffer. */
const MAX_FREE_BLOCKS = Math.ceil((4 * 1024 * 1024 + 1024 * 1024) / SEND_BLOCK);
/** A connection that sent no data for this long gives its send blocks back (the free ones, and a last one all acked). */
const IDLE_BLOCKS_MS = 1_000;

/** A send block: `end` bytes written; `refs` = packets sliced from it not yet acked, plus one while it is queued. */
interface SendBlock {
  buf: Buffer;
  end: number;
  refs: number;
}

const NO_PAYLOAD: readonly Buffer[] = [];

export type UtpState = 'syn-sent' | 'syn-recv' | 'connected' | 'closed';

/** What a connection needs of its endpoint. */
export interface UtpHost {
  /** One datagram: the header, then the payload's pieces. */
  send(header: Buffer, payload: readonly Buffer[], remote: UdpEndpoint): void;
  /** The connection ended: forget it. */
  release(connection: UtpConnection): void;
  /** An accepted connection proved its round trip. */
  proved(connection: UtpConnection): void;
  /** Bytes of buffers the connection was handed (written chunks it keeps): for pacing young collections. */
  allocated?(bytes: number): void;
}

export interface UtpConnectionOptions {
  windowBytes?: number;
  /** Largest payload the path may carry, tried with one probe packet before use. @default MAX_PAYLOAD */
  maxPayload?: number;
}

interface Sent {
  /** The header (for SYN and FIN the whole packet), rewritten before each transmission. */
  header: Buffer;
  /** The payload: slices of send blocks. */
  payload: Buffer[];
  /** The send blocks the payload is sliced from (released when acked). */
  blocks: SendBlock[] | null;
  /** Bytes of the datagram: header and payload. */
  bytes: number;
  type: PacketType;
  payloadBytes: number;
  sentAtMs: number;
  transmissions: number;
  /** Counted lost (timeout or SACKed past): sent again as the window allows. */
  lost: boolean;
}

export class UtpConnection extends Duplex {
  state: UtpState;
  readonly remote: UdpEndpoint;
  readonly recvId: number;
  readonly sendId: number;
  /** Both sides sent each other SYNs at the same time: a NAT hole punched. */
  punched = false;
  readonly initiator: boolean;
  /** What happened on the way (for status and benchmarks): loss events are the window's reactions (at most one a round trip). */
  readonly stats = { dataPackets: 0, retransmits: 0, randomLosses: 0, congestionLosses: 0, timeouts: 0 };
  /** Smoothed round-trip time, ms (undefined before the first sample). */
  srttMs: number | undefined;
  private rttVarMs = 0;
  private rtoMs = INITIAL_RTO_MS;
  private readonly cc: Ledbat;
  private readonly windowBytes: number;
  /** Payload bytes per data packet now: MAX_PAYLOAD until a probe proves the path takes maxPayload. */
  private mss = MAX_PAYLOAD;
  private readonly maxPayload: number;
  /** Sequence number of the size probe in flight, or -1. */
  private probeSeq = -1;
  /** Size probes lost so far: after MAX_SIZE_PROBES the path keeps MAX_PAYLOAD. */
  private probesLost = 0;

  // --- sending
  /** Next sequence number to use. */
  private seq: number;
  /** Oldest unacknowledged sequence number. */
  private sndUna: number;
  private readonly unacked = new Map<number, Sent>();
  private flightBytes = 0;
  private lostCount = 0;
  private peerWindow = MAX_PAYLOAD * 10;
  /**
   * Written data waiting for the window: send blocks in order, the first one's bytes from
   * `queueStart` to its `end` not sent yet, and the rest of each later one; the last one may have
   * room for the next write.
   */
  private readonly queue: SendBlock[] = [];
  private queueHead = 0;
  private queueStart = 0;
  private queuedBytes = 0;
  private readonly freeBlocks: SendBlock[] = [];
  /** Send blocks this connection allocated (for tests: reuse keeps it near the window's worth). */
  sendBlocksAllocated = 0;
  private pendingWrite: ((err?: Error | null) => void) | null = null;
  private finQueued = false;
  private finSeq = -1;
  private pendingFinal: ((err?: Error | null) => void) | null = null;
  private lastAckSeen = -1;
  private dupAcks = 0;

  // --- receiving
  /** Last sequence number received in order. */
  private ackNr = 0;
  private readonly reorder = new Map<number, Buffer>();
  /** In-order payloads of this turn of the event loop, pushed to the reader at its end. */
  private inbox: Buffer[] = [];
  private inboxBytes = 0;
  private reorderBytes = 0;
  private peerFinSeq = -1;
  private gotFin = false;
  private replyMicro = 0;
  private ackScheduled = false;
  /** A setImmediate of scheduleAck is due (it also delivers the inbox). */
  private ackPending = false;
  private windowClosed = false;

  // --- timing
  private readonly openedMs = Date.now();
  private lastReceivedMs = Date.now();
  private lastSentMs = 0;
  /** When a data packet last went out (first transmissions). */
  private lastDataMs = 0;
  private nextSynMs = 0;
  private timeoutsInRow = 0;
  private readonly ticker: NodeJS.Timeout;
  private connectDeadlineMs = Infinity;

  constructor(
    private readonly host: UtpHost,
    remote: UdpEndpoint,
    ids: { recvId: number; sendId: number },
    role: { initiator: true } | { initiator: false; syn: UtpPacket },
    options: UtpConnectionOptions = {},
  ) {
    super({ allowHalfOpen: true, writableHighWaterMark: 256 * 1024, readableHighWaterMark: 256 * 1024 });
    this.remote = { address: remote.address, port: remote.port };
    this.recvId = ids.recvId;
    this.sendId = ids.sendId;
    this.windowBytes = options.windowBytes ?? WINDOW_BYTES;
    this.maxPayload = Math.max(MAX_PAYLOAD, options.maxPayload ?? MAX_PAYLOAD);
    this.cc = new Ledbat({ mss: MAX_PAYLOAD + HEADER_BYTES, maxWindow: this.windowBytes });
    this.seq = (Math.random() * 0x10000) & 0xffff;
    this.sndUna = this.seq;
    this.initiator = role.initiator;
    if (role.initiator) {
      this.state = 'syn-sent';
      this.sendSyn();
    } else {
      this.state = 'syn-recv';
      this.ackNr = role.syn.seq;
      this.replyMicro = (nowMicros() - role.syn.timestampUs) >>> 0;
      this.connectDeadlineMs = this.openedMs + HALF_OPEN_TIMEOUT_MS;
      this.sendState();
    }
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.ticker.unref();
  }

  /** Give up connecting (SYN_SENT) or waiting for proof (SYN_RECV) at this time. */
  setConnectDeadline(atMs: number): void {
    this.connectDeadlineMs = atMs;
  }

  get remoteAddress(): string {
    return this.remote.address;
  }

  get remotePort(): number {
    return this.remote.port;
  }

  /** For tests and status. */
  get congestionWindow(): number {
    return this.cc.window;
  }

  /** The congestion controller's queuing delay estimate now, µs (for benchmarks). */
  get queuingDelayUs(): number {
    return this.cc.queuingDelay;
  }

  /** Send blocks held now: queued ones and free ones (for tests: an idle connection holds none). */
  get sendBlocksHeld(): number {
    return this.queue.length - this.queueHead + this.freeBlocks.length;
  }

  /** Payload bytes per data packet (for tests and status). */
  get packetPayload(): number {
    return this.mss;
  }

  // ---------------------------------------------------------------- packets in

  /** A packet the endpoint matched to this connection (its connection ID and source address). */
  onPacket(pkt: UtpPacket): void {
    if (this.state === 'closed') return;
    if (pkt.type === ST_RESET) {
      this.destroy(new FerryError('CLOSED', `µTP peer ${this.remote.address}:${this.remote.port} reset the connection`));
      return;
    }
    if (pkt.type === ST_SYN) {
      // A repeated SYN (our STATE was lost, or both sides dial while punching): answer again.
      if (this.state === 'syn-recv' && pkt.seq === this.ackNr) this.sendState();
      return;
    }
    if (this.state === 'syn-sent') {
      if (pkt.type !== ST_STATE || pkt.ack !== ((this.seq - 1) & 0xffff)) return;
      this.ackNr = (pkt.seq - 1) & 0xffff;
      this.becomeConnected();
      this.scheduleAck(); // proves our round trip to the acceptor, which sends nothing before it
    } else if (this.state === 'syn-recv') {
      // The round trip is proved by echoing our initial sequence number, which only our STATE carried.
      if (pkt.ack !== ((this.seq - 1) & 0xffff)) return;
      this.becomeConnected();
      this.host.proved(this);
    } else if (seqDiff(pkt.ack, this.seq - 1) > 0) {
      return; // acks what we never sent: spoofed or corrupt, dropped without state
    }
    if (pkt.type === ST_DATA || pkt.type === ST_FIN) {
      const ahead = seqDiff(pkt.seq, this.ackNr);
      if (ahead <= 0 || ahead > MAX_REORDER_PACKETS) {
        if (ahead <= 0) this.scheduleAck(); // a duplicate: our ack was lost
        return; // out of window: dropped without state
      }
    }
    this.lastReceivedMs = Date.now();
    this.peerWindow = pkt.windowSize;
    this.replyMicro = (nowMicros() - pkt.timestampUs) >>> 0;
    // An ack older than the oldest outstanding packet (reordered on the way) says nothing new.
    if (seqDiff(pkt.ack, this.sndUna - 1) >= 0) this.onAck(pkt);
    if (pkt.type === ST_DATA || pkt.type === ST_FIN) this.onData(pkt);
    this.flush();
  }

  private becomeConnected(): void {
    this.state = 'connected';
    this.connectDeadlineMs = Infinity;
    this.emit('connect');
  }

  private onAck(pkt: UtpPacket): void {
    const nowMs = Date.now();
    let ackedBytes = 0;
    const flightBefore = this.flightBytes;
    if (pkt.timestampDiffUs !== 0) this.cc.delaySample(pkt.timestampDiffUs, nowMs);
    // Cumulative ack.
    while (this.sndUna !== ((pkt.ack + 1) & 0xffff) && seqDiff(this.sndUna, this.seq) < 0) {
      const sent = this.unacked.get(this.sndUna);
      if (sent) ackedBytes += this.acked(this.sndUna, sent, nowMs);
      this.sndUna = (this.sndUna + 1) & 0xffff;
    }
    // Selective acks: bit i is ack + 2 + i.
    if (pkt.sack && this.unacked.size > 0) {
      let highest = -1;
      let after = 0;
      for (let byte = pkt.sack.length - 1; byte >= 0; byte--) {
        const bits = pkt.sack[byte]!;
        if (bits === 0) continue;
        for (let bit = 7; bit >= 0; bit--) {
          if (!(bits & (1 << bit))) continue;
          const s = (pkt.ack + 2 + byte * 8 + bit) & 0xffff;
          if (highest < 0) highest = s;
          after++;
          const sent = this.unacked.get(s);
          if (sent) ackedBytes += this.acked(s, sent, nowMs);
        }
      }
      // Packets with DUP_ACKS or more SACKed after them are lost.
      if (highest >= 0 && after >= DUP_ACKS) this.markLostBefore(highest, nowMs);
    }
    if (ackedBytes > 0) {
      this.timeoutsInRow = 0;
      this.dupAcks = 0;
      this.cc.onAck(ackedBytes, flightBefore - ackedBytes);
      if (this.finSeq >= 0 && this.unacked.size === 0 && seqDiff(this.sndUna, this.finSeq) > 0) this.finAcked();
      this.releaseWrite();
    } else if (pkt.type === ST_STATE && pkt.ack === this.lastAckSeen && this.unacked.size > 0) {
      if (++this.dupAcks === DUP_ACKS) this.markLostBefore((pkt.ack + 2) & 0xffff, nowMs);
    }
    this.lastAckSeen = pkt.ack;
  }

  private acked(s: number, sent: Sent, nowMs: number): number {
    this.unacked.delete(s);
    if (sent.blocks) for (const block of sent.blocks) this.unrefBlock(block);
    if (s === this.probeSeq) {
      this.probeSeq = -1;
      if (sent.transmissions === 1) {
        this.mss = this.maxPayload;
        this.cc.setMss(this.mss + HEADER_BYTES);
      } else this.probesLost++;
    }
    if (sent.lost) this.lostCount--;
    else this.flightBytes -= sent.bytes;
    if (sent.transmissions === 1) this.rttSample(nowMs - sent.sentAtMs);
    return sent.bytes;
  }

  private markLostBefore(limit: number, nowMs: number): void {
    let any = false;
    let probeLost = false;
    for (let s = this.sndUna; seqDiff(s, limit) < 0; s = (s + 1) & 0xffff) {
      const sent = this.unacked.get(s);
      if (!sent || sent.lost) continue;
      // Sent again less than a round trip ago: its answer may still come.
      if (sent.transmissions > 1 && nowMs - sent.sentAtMs < (this.srttMs ?? this.rtoMs)) continue;
      sent.lost = true;
      this.lostCount++;
      this.flightBytes -= sent.bytes;
      if (s === this.probeSeq) {
        this.probeSeq = -1;
        probeLost = true;
      } else any = true;
    }
    // A size probe lost alone says the path is smaller, not that it is congested (RFC 8899 §3); lost with
    // the packets around it, it says neither about its size (a full socket buffer on a busy machine), and
    // the next probe may try again.
    if (probeLost && !any) this.probesLost++;
    if (!any) return;
    const reaction = this.cc.onLoss(nowMs, this.srttMs ?? this.rtoMs);
    if (reaction === 'random') this.stats.randomLosses++;
    else if (reaction === 'congested') this.stats.congestionLosses++;
  }

  private rttSample(ms: number): void {
    if (this.srttMs === undefined) {
      this.srttMs = ms;
      this.rttVarMs = ms / 2;
    } else {
      this.rttVarMs = 0.75 * this.rttVarMs + 0.25 * Math.abs(this.srttMs - ms);
      this.srttMs = 0.875 * this.srttMs + 0.125 * ms;
    }
    this.rtoMs = Math.min(MAX_RTO_MS, Math.max(MIN_RTO_MS, this.srttMs + 4 * this.rttVarMs));
  }

  private onData(pkt: UtpPacket): void {
    const limit = this.windowBytes + 64 * MAX_PAYLOAD;
    if (pkt.type === ST_FIN) this.peerFinSeq = pkt.seq;
    if (pkt.seq === ((this.ackNr + 1) & 0xffff)) {
      this.deliver(pkt);
      for (let next = this.reorder.get((this.ackNr + 1) & 0xffff); next !== undefined; next = this.reorder.get((this.ackNr + 1) & 0xffff)) {
        this.reorder.delete((this.ackNr + 1) & 0xffff);
        this.reorderBytes -= next.length;
        this.ackNr = (this.ackNr + 1) & 0xffff;
        this.receive(next);
      }
      if (this.peerFinSeq >= 0 && this.ackNr === this.peerFinSeq && !this.gotFin) {
        this.gotFin = true;
        this.deliverInbox();
        this.push(null);
      }
    } else if (!this.reorder.has(pkt.seq) && this.readableLength + this.inboxBytes + this.reorderBytes + pkt.payload.length <= limit) {
      this.reorder.set(pkt.seq, pkt.payload);
      this.reorderBytes += pkt.payload.length;
    }
    this.scheduleAck();
  }

  private deliver(pkt: UtpPacket): void {
    this.ackNr = pkt.seq;
    this.receive(pkt.payload);
  }

  private receive(payload: Buffer): void {
    if (payload.length === 0) return;
    this.inbox.push(payload);
    this.inboxBytes += payload.length;
  }

  /**
   * This turn's in-order payloads to the reader. Loopback's 64 KiB payloads go each as it came: joined
   * into one buffer they were a third of the receiver's buffer allocations on loopback, and the
   * bytes of buffers allocated are what start V8's full collections (bench/transport.ts: 5–6 → 4 per
   * 64 MiB). The internet's 1,380-byte payloads are joined: one read for the TLS layer, not 30.
   */
  private deliverInbox(): void {
    if (this.inbox.length === 0) return;
    const inbox = this.inbox;
    const bytes = this.inboxBytes;
    this.inbox = [];
    this.inboxBytes = 0;
    if (inbox.length === 1 || bytes >= inbox.length * JOIN_BELOW) for (const payload of inbox) this.push(payload);
    else this.push(Buffer.concat(inbox, bytes));
  }

  // ---------------------------------------------------------------- packets out

  private receiveWindow(): number {
    return Math.max(0, this.windowBytes - this.readableLength - this.inboxBytes - this.reorderBytes);
  }

  private header(type: PacketType, seq: number): { type: PacketType; connectionId: number; timestampUs: number; timestampDiffUs: number; windowSize: number; seq: number; ack: number } {
    return {
      type,
      connectionId: type === ST_SYN ? this.recvId : this.sendId,
      timestampUs: nowMicros(),
      timestampDiffUs: this.replyMicro,
      windowSize: this.receiveWindow(),
      seq,
      ack: this.ackNr,
    };
  }

  private transmit(header: Buffer, payload: readonly Buffer[] = NO_PAYLOAD): void {
    this.lastSentMs = Date.now();
    this.host.send(header, payload, this.remote);
  }

  private sendSyn(): void {
    // The SYN takes sequence number sndUna; data starts one after it.
    const buf = encodePacket({ ...this.header(ST_SYN, this.sndUna), ack: 0 });
    const sent = this.unacked.get(this.sndUna);
    if (sent) sent.transmissions++;
    else {
      this.unacked.set(this.seq, { header: buf, payload: [], blocks: null, bytes: buf.length, type: ST_SYN, payloadBytes: 0, sentAtMs: Date.now(), transmissions: 1, lost: false });
      this.flightBytes += buf.length;
      this.seq = (this.seq + 1) & 0xffff;
    }
    this.nextSynMs = Date.now() + SYN_INTERVAL_MS * (0.75 + Math.random() * 0.5);
    this.transmit(buf);
  }

  /** A STATE carries our ack (and SACK of what we hold out of order) and our window. */
  private sendState(): void {
    this.ackScheduled = false;
    const sack = this.sackBits();
    const buf = encodePacket(this.header(ST_STATE, this.seq), undefined, sack);
    this.windowClosed = this.receiveWindow() < MAX_PAYLOAD;
    this.transmit(buf);
  }

  private sackBits(): Buffer | null {
    if (this.reorder.size === 0) return null;
    const sack = Buffer.alloc(MAX_SACK_BYTES);
    let used = 0;
    for (const s of this.reorder.keys()) {
      const i = seqDiff(s, this.ackNr) - 2;
      if (i < 0 || i >= MAX_SACK_BYTES * 8) continue;
      sack[i >> 3]! |= 1 << (i & 7);
      used = Math.max(used, (i >> 3) + 1);
    }
    if (used === 0) return null;
    return sack.subarray(0, Math.ceil(used / 4) * 4);
  }

  /** After this turn's packets: their data to the reader in one piece, then one ack for them all. */
  private scheduleAck(): void {
    this.ackScheduled = true;
    if (this.ackPending) return;
    this.ackPending = true;
    setImmediate(() => {
      this.ackPending = false;
      if (this.state === 'closed') return;
      this.deliverInbox();
      if (this.ackScheduled) this.sendState();
    });
  }

  private sendWindow(): number {
    return Math.min(this.cc.window, this.peerWindow);
  }

  /** Sends what the windows allow: packets counted lost first, then new data, then a queued FIN. */
  private flush(): void {
    if (this.state !== 'connected') return;
    const nowMs = Date.now();
    let sentAny = false;
    if (this.lostCount > 0) {
      for (let s = this.sndUna; seqDiff(s, this.seq) < 0 && this.lostCount > 0; s = (s + 1) & 0xffff) {
        const sent = this.unacked.get(s);
        if (!sent || !sent.lost) continue;
        // The oldest goes at once whatever the window (as TCP's fast retransmit): everything waits on it.
        if (s !== this.sndUna && this.flightBytes > 0 && this.flightBytes + sent.bytes > this.sendWindow()) return;
        sent.lost = false;
        this.lostCount--;
        this.flightBytes += sent.bytes;
        this.resend(s, sent, nowMs);
        sentAny = true;
      }
    }
    while (this.queuedBytes > 0) {
      // Packets are full (mss bytes) while that much is queued, whatever the writes' sizes.
      let size = Math.min(this.mss, this.queuedBytes);
      // With loopback's 64 KiB packets, a part-filled last packet waits while packets are in flight
      // (their acks send it): the writer's next write fills it. TLS writes its records and their
      // overhead a little past one packet, so sent at once every write made a full packet and a
      // tiny one. Elsewhere (1,380-byte packets) data goes at once, as TCP_NODELAY sends it.
      if (size < this.mss && this.mss > MAX_PAYLOAD && this.flightBytes > 0 && !this.finQueued) break;
      // One packet may always be in flight (it probes a closed window).
      if (this.flightBytes > 0 && this.flightBytes + size + HEADER_BYTES > this.sendWindow()) break;
      // One full packet of the larger size, when the window has room for it, probes the path.
      const probe =
        this.mss < this.maxPayload &&
        this.probeSeq < 0 &&
        this.probesLost < MAX_SIZE_PROBES &&
        this.queuedBytes >= this.maxPayload &&
        this.flightBytes + this.maxPayload + HEADER_BYTES <= this.sendWindow();
      if (probe) {
        size = this.maxPayload;
        this.probeSeq = this.seq;
      }
      this.sendData(size, nowMs);
      sentAny = true;
    }
    if (this.finQueued && this.queuedBytes === 0 && this.finSeq < 0) {
      this.finSeq = this.seq;
      const buf = encodePacket(this.header(ST_FIN, this.seq));
      this.unacked.set(this.seq, { header: buf, payload: [], blocks: null, bytes: buf.length, type: ST_FIN, payloadBytes: 0, sentAtMs: nowMs, transmissions: 1, lost: false });
      this.flightBytes += buf.length;
      this.seq = (this.seq + 1) & 0xffff;
      this.transmit(buf);
      sentAny = true;
    }
    if (sentAny) this.ackScheduled = false; // our packets carried the ack
    this.releaseWrite();
  }

  /** Sends the next `size` queued bytes as one packet: a fresh header and slices of the queued send blocks. */
  private sendData(size: number, nowMs: number): void {
    const sack = this.sackBits();
    const header = Buffer.allocUnsafe(HEADER_BYTES + (sack ? 2 + sack.length : 0));
    const payload: Buffer[] = [];
    const blocks: SendBlock[] = [];
    for (let need = size; need > 0; ) {
      const block = this.queue[this.queueHead]!;
      const n = Math.min(block.end - this.queueStart, need);
      if (n > 0) {
        payload.push(block.buf.subarray(this.queueStart, this.queueStart + n));
        blocks.push(block);
        block.refs++;
      }
      this.queueStart += n;
      need -= n;
      // A block read to its end leaves the queue once full or followed by another (the last one's room takes the next write).
      if (this.queueStart === block.end && (block.end === block.buf.length || this.queueHead < this.queue.length - 1)) this.dequeue();
      else if (this.queueStart === block.end) break;
    }
    writeHeader(header, this.header(ST_DATA, this.seq), sack);
    this.queuedBytes -= size;
    const bytes = header.length + size;
    this.unacked.set(this.seq, { header, payload, blocks, bytes, type: ST_DATA, payloadBytes: size, sentAtMs: nowMs, transmissions: 1, lost: false });
    this.stats.dataPackets++;
    this.lastDataMs = nowMs;
    this.flightBytes += bytes;
    this.seq = (this.seq + 1) & 0xffff;
    this.transmit(header, payload);
  }

  private dequeue(): void {
    this.unrefBlock(this.queue[this.queueHead]!);
    this.queueStart = 0;
    this.queueHead++;
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead >= 1024) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  /** Sends a packet again with fresh timestamps, ack and window (its payload unchanged). */
  private resend(s: number, sent: Sent, nowMs: number): void {
    sent.transmissions++;
    this.stats.retransmits++;
    sent.sentAtMs = nowMs;
    // A SACK extension is relative to the ack it was sent with: a copy sent again goes without it.
    if (sent.header[1] !== 0) {
      const bare = Buffer.allocUnsafe(HEADER_BYTES);
      this.flightBytes -= sent.header.length - bare.length;
      sent.bytes -= sent.header.length - bare.length;
      sent.header = bare;
    }
    writeHeader(sent.header, this.header(sent.type, s));
    this.transmit(sent.header, sent.payload);
  }

  private releaseWrite(): void {
    if (this.pendingWrite && this.queuedBytes < SEND_BUFFER_BYTES) {
      const callback = this.pendingWrite;
      this.pendingWrite = null;
      callback();
    }
  }

  private finAcked(): void {
    const callback = this.pendingFinal;
    this.pendingFinal = null;
    callback?.();
  }

  // ---------------------------------------------------------------- timers

  private tick(): void {
    const nowMs = Date.now();
    if (this.state === 'syn-sent' || this.state === 'syn-recv') {
      if (nowMs >= this.connectDeadlineMs) {
        this.destroy(new FerryError('TIMEOUT', `no µTP answer from ${this.remote.address}:${this.remote.port}`));
        return;
      }
      if (this.state === 'syn-sent' && nowMs >= this.nextSynMs) this.sendSyn();
      return;
    }
    if (this.state !== 'connected') return;
    if (nowMs - this.lastReceivedMs > IDLE_TIMEOUT_MS) {
      this.destroy(new FerryError('TIMEOUT', `µTP peer ${this.remote.address}:${this.remote.port} silent for ${IDLE_TIMEOUT_MS} ms`));
      return;
    }
    const oldest = this.unacked.get(this.sndUna);
    if (oldest && nowMs - oldest.sentAtMs >= this.rtoMs) {
      // Timeout: everything outstanding counts lost, the window falls to its floor, the RTO doubles.
      this.timeoutsInRow++;
      this.stats.timeouts++;
      for (const sent of this.unacked.values()) {
        if (sent.lost) continue;
        sent.lost = true;
        this.lostCount++;
      }
      this.flightBytes = 0;
      // Everything was lost: no sign of the path's size either.
      this.probeSeq = -1;
      this.cc.onTimeout();
      this.rtoMs = Math.min(MAX_RTO_MS, this.rtoMs * 2);
      this.flush();
      return;
    }
    if (this.queuedBytes === 0 && nowMs - this.lastDataMs >= IDLE_BLOCKS_MS) this.releaseIdleBlocks();
    if (this.windowClosed && this.receiveWindow() >= MAX_PAYLOAD) this.sendState();
    else if (nowMs - this.lastSentMs >= KEEPALIVE_MS) this.sendState();
  }

  // ---------------------------------------------------------------- Duplex

  override _read(): void {
    if (this.windowClosed && this.state === 'connected' && this.receiveWindow() >= MAX_PAYLOAD) this.sendState();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.enqueue(chunk);
    this.afterEnqueue(callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (err?: Error | null) => void): void {
    for (const { chunk } of chunks) this.enqueue(chunk);
    this.afterEnqueue(callback);
  }

  /** Copies a written chunk into the queue's send blocks (the last one's room, then blocks from the free list). */
  private enqueue(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.queuedBytes += chunk.length;
    // The chunk is garbage once copied: young collections are paced by such bytes (young-gc.ts).
    this.host.allocated?.(chunk.length);
    let tail = this.queue.length > this.queueHead ? this.queue[this.queue.length - 1]! : undefined;
    for (let at = 0; at < chunk.length; ) {
      if (!tail || tail.end === tail.buf.length) {
        tail = this.takeBlock();
        this.queue.push(tail);
      }
      const n = Math.min(tail.buf.length - tail.end, chunk.length - at);
      chunk.copy(tail.buf, tail.end, at, at + n);
      tail.end += n;
      at += n;
    }
  }

  /** A send block from the free list, or a new one; queued (one reference). */
  private takeBlock(): SendBlock {
    const block = this.freeBlocks.pop();
    if (block) {
      block.refs = 1;
      return block;
    }
    this.sendBlocksAllocated++;
    return { buf: Buffer.allocUnsafeSlow(SEND_BLOCK), end: 0, refs: 1 };
  }

  /** Nothing queued and no data sent for a while: the free blocks go, and the last queued one once all its packets are acked. */
  private releaseIdleBlocks(): void {
    const last = this.queue.length - this.queueHead === 1 ? this.queue[this.queueHead]! : undefined;
    if (last && last.refs === 1) this.dequeue();
    this.freeBlocks.length = 0;
  }

  private unrefBlock(block: SendBlock): void {
    if (--block.refs > 0) return;
    block.end = 0;
    if (this.freeBlocks.length < MAX_FREE_BLOCKS && this.state !== 'closed') this.freeBlocks.push(block);
  }

  private afterEnqueue(callback: (err?: Error | null) => void): void {
    this.pendingWrite = callback;
    this.flush();
    // Before the connection is up flush() sends nothing; the write waits (bounded by the buffer).
    if (this.state !== 'connected') this.releaseWrite();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.finQueued = true;
    this.pendingFinal = callback;
    this.flush();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const clean = this.gotFin && this.finSeq >= 0 && this.unacked.size === 0;
    if (!clean && (this.state === 'connected' || this.state === 'syn-recv')) this.transmit(encodePacket(this.header(ST_RESET, this.seq)));
    else if (clean && this.ackScheduled) this.sendState(); // the ack of the peer's FIN
    this.state = 'closed';
    clearInterval(this.ticker);
    this.unacked.clear();
    this.reorder.clear();
    this.queue.length = 0;
    this.queueHead = 0;
    this.queueStart = 0;
    this.queuedBytes = 0;
    this.freeBlocks.length = 0;
    this.pendingWrite = null;
    this.pendingFinal = null;
    this.host.release(this);
    callback(err);
  }
}
