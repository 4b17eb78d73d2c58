// RelayNode: relaying over this device's peer links, both roles. As a relay it forwards streams
// between two of its peers that proved a folder in common with it (bounded, rate-capped, never
// over a relayed link); as an end it opens streams through a relay and takes streams a relay
// brings. Each stream is opaque here: the two ends run their own TLS over it.

import { FerryError } from '../errors.js';
import { RELAY_WINDOW_BYTES, type RelayMessage, type RelayRefusal } from '../protocol/index.js';
import { RateLimiter } from '../sync/rate-limit.js';
import { silentLogger, type Logger } from '../util/log.js';
import { RelayStream } from './stream.js';

/** @default values of RelayNodeOptions */
export const RELAY_MAX_STREAMS = 64;
export const RELAY_MAX_STREAMS_PER_PEER = 8;
export const RELAY_MAX_END_STREAMS = 32;
export const RELAY_OPEN_TIMEOUT_MS = 15_000;
/** @default of the setting relayRateBps: bytes per second relayed in all (both directions). */
export const DEFAULT_RELAY_RATE_BPS = 1024 * 1024;

/** One of this device's established peer links, as the relay layer sees it. */
export interface Carrier {
  deviceId: string;
  /** 'out' when this device dialled the link: it then opens odd stream IDs on it, else even. */
  direction: 'in' | 'out';
  /** Folder IDs (hex) the peer proved on this link. */
  folderIds: ReadonlySet<string>;
  /** This link itself runs over a relay: it carries no relayed streams. */
  relayed: boolean;
  /** Sends on the link; resolves when the link took the message (backpressure). */
  send(message: RelayMessage): Promise<void>;
}

export interface RelayNodeOptions {
  /** Relay for others. Streams this device opens or is brought are not affected. */
  relay: boolean;
  /** Bytes per second relayed for others, in all; 0 = no cap. @default DEFAULT_RELAY_RATE_BPS */
  rateBps?: number;
  maxStreams?: number;
  maxStreamsPerPeer?: number;
  maxEndStreams?: number;
  openTimeoutMs?: number;
  windowBytes?: number;
  /** The kept link to a device, the same object for the same link each time; undefined when not connected. */
  carrierFor: (deviceId: string) => Carrier | undefined;
  /** A relay brought a stream from `from` through `via`: run the server side of TLS on it. */
  onIncoming: (stream: RelayStream, from: string, via: Carrier) => void;
  logger?: Logger;
}

/** One side of a stream relayed through this device. */
interface HopSide {
  kind: 'hop';
  hop: Hop;
  carrier: Carrier;
  id: number;
  /** Bytes this side may still send toward the other (credits the other end granted, paced by the rate cap). */
  allowed: number;
  /** Bytes forwarded to this side, and credit it granted back: it may grant no more than it was sent. */
  received: number;
  granted: number;
  /** Credit from this side waiting for the rate cap, passed on in one piece (one rate wait per side at a time). */
  pendingCredit: number;
  pacing: boolean;
  ended: boolean;
}

interface Hop {
  opener: HopSide;
  target: HopSide;
  open: boolean;
  timer: NodeJS.Timeout | null;
  stop: AbortController;
}

interface End {
  kind: 'end';
  stream: RelayStream;
  /** Set while the open waits for RelayAccept. */
  opening?: { resolve: () => void; reject: (err: Error) => void };
}

interface Link {
  carrier: Carrier;
  nextId: number;
  entries: Map<number, HopSide | End>;
  hops: number;
}

export class RelayNode {
  private readonly links = new Map<Carrier, Link>();
  private readonly log: Logger;
  readonly rate: RateLimiter;
  private hops = 0;
  private ends = 0;
  private closed = false;
  readonly counters = { relayedBytes: 0, relayedStreams: 0, refused: 0, opened: 0, accepted: 0 };
  readonly refusedBy: Partial<Record<RelayRefusal, number>> = {};

  constructor(private readonly options: RelayNodeOptions) {
    this.log = options.logger ?? silentLogger;
    this.rate = new RateLimiter(options.rateBps ?? DEFAULT_RELAY_RATE_BPS);
  }

  get relaying(): number {
    return this.hops;
  }

  get endStreams(): number {
    return this.ends;
  }

  /** Bytes of stream data held here for others: at most the window per hop side, whatever the peers do. */
  report(): Record<string, unknown> {
    return {
      relay: this.options.relay,
      rateBps: this.rate.bytesPerSecond,
      relaying: this.hops,
      endStreams: this.ends,
      ...this.counters,
      ...(Object.keys(this.refusedBy).length ? { refusedBy: { ...this.refusedBy } } : {}),
    };
  }

  /** Opens a stream to `device` through the relay at the other end of `via`. REQUEST_FAILED when refused, TIMEOUT, CLOSED. */
  async open(via: Carrier, device: string, signal?: AbortSignal): Promise<RelayStream> {
    if (this.closed) throw new FerryError('CLOSED', 'relay layer closed');
    if (via.relayed) throw new FerryError('USAGE', 'a relayed link carries no relayed stream');
    if (this.ends >= (this.options.maxEndStreams ?? RELAY_MAX_END_STREAMS)) throw new FerryError('REQUEST_FAILED', 'relay refused: BUSY: too many relayed streams here');
    const link = this.link(via);
    const id = this.allocate(link);
    const end = this.addEnd(link, id);
    this.counters.opened++;
    const timeoutMs = this.options.openTimeoutMs ?? RELAY_OPEN_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const sentAtMs = performance.now();
    const onAbort = (): void => end.opening?.reject(new FerryError('ABORTED', 'relay open aborted'));
    try {
      await new Promise<void>((resolve, reject) => {
        end.opening = { resolve, reject };
        timer = setTimeout(() => reject(new FerryError('TIMEOUT', `no answer from the relay within ${timeoutMs} ms`)), timeoutMs);
        signal?.addEventListener('abort', onAbort, { once: true });
        via.send({ type: 'RelayOpen', stream: id, device }).catch(reject);
      });
    } catch (err) {
      end.opening = undefined;
      // Refused, or the link is gone: nothing to tell the relay. Timed out or aborted: it may still hold the stream.
      const tell = !(err instanceof FerryError && (err.code === 'REQUEST_FAILED' || err.code === 'CLOSED'));
      end.stream.abort('CLOSED', 'open failed', tell);
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    end.opening = undefined;
    end.stream.rttMs = performance.now() - sentAtMs;
    return end.stream;
  }

  /** A validated relay message from the peer at the other end of `from`. PROTOCOL for a broken rule (the caller closes the link). */
  receive(from: Carrier, message: RelayMessage): void {
    if (this.closed) return;
    const link = this.link(from);
    switch (message.type) {
      case 'RelayOpen':
        this.checkNewId(link, message.stream);
        return this.relayOpen(link, message.stream, message.device);
      case 'RelayConnect':
        this.checkNewId(link, message.stream);
        return this.endConnect(link, message.stream, message.device);
      default:
        break;
    }
    const entry = link.entries.get(message.stream);
    // A message for a stream already gone (it crossed a close in flight) is dropped.
    if (!entry) return;
    if (entry.kind === 'end') return this.endMessage(entry, message);
    return this.hopMessage(entry, message);
  }

  /** The link closed: every stream over it ends; the other side of each relayed one is told. */
  detach(carrier: Carrier): void {
    const link = this.links.get(carrier);
    if (!link) return;
    this.links.delete(carrier);
    for (const entry of [...link.entries.values()]) {
      if (entry.kind === 'end') {
        entry.opening?.reject(new FerryError('CLOSED', 'the link to the relay closed'));
        entry.stream.abort('CLOSED', 'the link to the relay closed', false);
      } else {
        this.endHop(entry.hop, 'CLOSED', 'a link of the relayed path closed', entry);
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const carrier of [...this.links.keys()]) this.detach(carrier);
  }

  private link(carrier: Carrier): Link {
    let link = this.links.get(carrier);
    if (!link) {
      link = { carrier, nextId: carrier.direction === 'out' ? 1 : 2, entries: new Map(), hops: 0 };
      this.links.set(carrier, link);
    }
    return link;
  }

  private allocate(link: Link): number {
    let id = link.nextId;
    while (link.entries.has(id)) id = id + 2 > 0xffffffff ? (id % 2) + 2 : id + 2;
    link.nextId = id + 2 > 0xffffffff ? (id % 2 === 1 ? 1 : 2) : id + 2;
    return id;
  }

  /** A stream the peer opens: its parity is the peer's, and it is not in use. */
  private checkNewId(link: Link, id: number): void {
    const peerParity = link.carrier.direction === 'out' ? 0 : 1;
    if (id % 2 !== peerParity || id === 0) throw new FerryError('PROTOCOL', `relay stream ${id} has the wrong parity for its opener`);
    if (link.entries.has(id)) throw new FerryError('PROTOCOL', `relay stream ${id} is already open`);
  }

  private addEnd(link: Link, id: number): End {
    this.ends++;
    const end: End = {
      kind: 'end',
      stream: new RelayStream({
        id,
        windowBytes: this.options.windowBytes,
        send: (message) => (this.closed && message.type !== 'RelayClose' ? Promise.reject(new FerryError('CLOSED', 'relay layer closed')) : link.carrier.send(message)),
        onGone: () => {
          if (link.entries.get(id) !== end) return;
          link.entries.delete(id);
          this.ends--;
        },
      }),
    };
    link.entries.set(id, end);
    return end;
  }

  private refuse(link: Link, stream: number, code: RelayRefusal, reason: string): void {
    this.counters.refused++;
    this.refusedBy[code] = (this.refusedBy[code] ?? 0) + 1;
    this.log.debug('refusing a relayed stream', { device: link.carrier.deviceId, code, reason });
    void link.carrier.send({ type: 'RelayRefuse', stream, code, reason }).catch(() => undefined);
  }

  // ---- as the relay

  private relayOpen(link: Link, stream: number, device: string): void {
    const from = link.carrier;
    if (!this.options.relay) return this.refuse(link, stream, 'RELAY_OFF', 'this device does not relay');
    if (from.relayed) return this.refuse(link, stream, 'NESTED', 'no relaying over a relayed link');
    const targetCarrier = device === from.deviceId ? undefined : this.options.carrierFor(device);
    if (!targetCarrier) return this.refuse(link, stream, 'NOT_CONNECTED', 'that device is not connected here');
    if (targetCarrier.relayed) return this.refuse(link, stream, 'NESTED', 'that device is reached over a relay here');
    if (![...from.folderIds].some((hex) => targetCarrier.folderIds.has(hex))) {
      return this.refuse(link, stream, 'NO_COMMON_FOLDER', 'the two devices proved no folder in common with this relay');
    }
    const targetLink = this.link(targetCarrier);
    const perPeer = this.options.maxStreamsPerPeer ?? RELAY_MAX_STREAMS_PER_PEER;
    if (this.hops >= (this.options.maxStreams ?? RELAY_MAX_STREAMS) || link.hops >= perPeer || targetLink.hops >= perPeer) {
      return this.refuse(link, stream, 'BUSY', 'relay stream limit reached');
    }
    const window = this.options.windowBytes ?? RELAY_WINDOW_BYTES;
    const hop = { open: false, timer: null, stop: new AbortController() } as unknown as Hop;
    const side = (carrier: Carrier, id: number): HopSide => ({ kind: 'hop', hop, carrier, id, allowed: window, received: 0, granted: 0, pendingCredit: 0, pacing: false, ended: false });
    hop.opener = side(from, stream);
    hop.target = side(targetCarrier, this.allocate(targetLink));
    link.entries.set(stream, hop.opener);
    targetLink.entries.set(hop.target.id, hop.target);
    link.hops++;
    targetLink.hops++;
    this.hops++;
    const timeoutMs = this.options.openTimeoutMs ?? RELAY_OPEN_TIMEOUT_MS;
    hop.timer = setTimeout(() => this.endHop(hop, 'TIMEOUT', 'the far end did not answer'), timeoutMs);
    this.log.debug('relaying a stream', { from: from.deviceId, to: device });
    targetCarrier.send({ type: 'RelayConnect', stream: hop.target.id, device: from.deviceId }).catch(() => this.endHop(hop, 'CLOSED', 'cannot reach the far end'));
  }

  private other(side: HopSide): HopSide {
    return side.hop.opener === side ? side.hop.target : side.hop.opener;
  }

  private hopMessage(side: HopSide, message: RelayMessage): void {
    const hop = side.hop;
    const other = this.other(side);
    switch (message.type) {
      case 'RelayAccept':
        if (side !== hop.target || hop.open) throw new FerryError('PROTOCOL', 'unexpected RelayAccept');
        hop.open = true;
        if (hop.timer) clearTimeout(hop.timer);
        hop.timer = null;
        this.counters.relayedStreams++;
        void other.carrier.send({ type: 'RelayAccept', stream: other.id }).catch(() => undefined);
        return;
      case 'RelayRefuse':
        if (side !== hop.target || hop.open) throw new FerryError('PROTOCOL', 'unexpected RelayRefuse');
        this.dropHop(hop);
        this.counters.refused++;
        this.refusedBy[message.code] = (this.refusedBy[message.code] ?? 0) + 1;
        void other.carrier.send({ type: 'RelayRefuse', stream: other.id, code: message.code, reason: message.reason }).catch(() => undefined);
        return;
      case 'RelayData':
        if (!hop.open || side.ended) throw new FerryError('PROTOCOL', 'RelayData on a stream not open for it');
        if (message.data.length > side.allowed) {
          this.endHop(hop, 'PROTOCOL', 'data beyond the granted window');
          return;
        }
        side.allowed -= message.data.length;
        other.received += message.data.length;
        this.counters.relayedBytes += message.data.length;
        // Not awaited: what is in flight is bounded by the window, so the link's buffer is too.
        void other.carrier.send({ type: 'RelayData', stream: other.id, data: message.data }).catch(() => undefined);
        return;
      case 'RelayWindow': {
        if (!hop.open) throw new FerryError('PROTOCOL', 'RelayWindow on a stream not open');
        if (side.granted + message.credit > side.received) {
          this.endHop(hop, 'PROTOCOL', 'credit for bytes never received');
          return;
        }
        side.granted += message.credit;
        side.pendingCredit += message.credit;
        void this.passCredit(side, other);
        return;
      }
      case 'RelayClose':
        if (message.code !== undefined || !hop.open) {
          this.dropHop(hop);
          void other.carrier.send({ type: 'RelayClose', stream: other.id, code: message.code ?? 'CLOSED', reason: message.reason ?? 'closed' }).catch(() => undefined);
          return;
        }
        side.ended = true;
        void other.carrier.send({ type: 'RelayClose', stream: other.id }).catch(() => undefined);
        if (other.ended) this.dropHop(hop);
        return;
      default:
        throw new FerryError('PROTOCOL', `unexpected ${message.type} for a relayed stream`);
    }
  }

  /**
   * The cap: credit passes on only as fast as the rate allows, so the other side sends no faster.
   * Credits arriving meanwhile are added up and passed on together.
   */
  private async passCredit(side: HopSide, other: HopSide): Promise<void> {
    if (side.pacing) return;
    side.pacing = true;
    try {
      while (side.pendingCredit > 0 && !side.hop.stop.signal.aborted) {
        const credit = side.pendingCredit;
        side.pendingCredit = 0;
        await this.rate.take(credit, side.hop.stop.signal);
        if (side.hop.stop.signal.aborted) return;
        other.allowed += credit;
        void other.carrier.send({ type: 'RelayWindow', stream: other.id, credit }).catch(() => undefined);
      }
    } catch {
      // the hop ended while waiting
    } finally {
      side.pacing = false;
    }
  }

  /** Ends a hop, telling each side still there (but `except`, whose link is gone). */
  private endHop(hop: Hop, code: RelayRefusal, reason: string, except?: HopSide): void {
    if (!this.dropHop(hop)) return;
    for (const side of [hop.opener, hop.target]) {
      if (side === except) continue;
      const message: RelayMessage =
        side === hop.opener && !hop.open ? { type: 'RelayRefuse', stream: side.id, code, reason } : { type: 'RelayClose', stream: side.id, code, reason };
      void side.carrier.send(message).catch(() => undefined);
    }
  }

  /** Forgets a hop; false when it was gone already. */
  private dropHop(hop: Hop): boolean {
    if (hop.stop.signal.aborted) return false;
    hop.stop.abort();
    if (hop.timer) clearTimeout(hop.timer);
    for (const side of [hop.opener, hop.target]) {
      const link = this.links.get(side.carrier);
      if (link?.entries.get(side.id) === side) {
        link.entries.delete(side.id);
        link.hops--;
      }
    }
    this.hops--;
    return true;
  }

  // ---- as an end

  private endConnect(link: Link, stream: number, device: string): void {
    if (link.carrier.relayed) return this.refuse(link, stream, 'NESTED', 'no relayed stream over a relayed link');
    if (this.ends >= (this.options.maxEndStreams ?? RELAY_MAX_END_STREAMS)) return this.refuse(link, stream, 'BUSY', 'too many relayed streams here');
    const end = this.addEnd(link, stream);
    this.counters.accepted++;
    end.stream.acceptedAtMs = performance.now();
    void link.carrier.send({ type: 'RelayAccept', stream }).catch(() => undefined);
    try {
      this.options.onIncoming(end.stream, device, link.carrier);
    } catch (err) {
      this.log.error('relayed stream handler failed', { err: err as Error });
      end.stream.destroy();
    }
  }

  private endMessage(end: End, message: RelayMessage): void {
    switch (message.type) {
      case 'RelayAccept':
        if (!end.opening) throw new FerryError('PROTOCOL', 'unexpected RelayAccept');
        end.opening.resolve();
        return;
      case 'RelayRefuse':
        if (!end.opening) throw new FerryError('PROTOCOL', 'unexpected RelayRefuse');
        end.opening.reject(new FerryError('REQUEST_FAILED', `relay refused: ${message.code}: ${message.reason}`));
        return;
      case 'RelayData':
        if (end.opening) throw new FerryError('PROTOCOL', 'RelayData before RelayAccept');
        end.stream.receiveData(message.data);
        return;
      case 'RelayWindow':
        end.stream.addCredit(message.credit);
        return;
      case 'RelayClose':
        if (message.code !== undefined) {
          end.opening?.reject(new FerryError('REQUEST_FAILED', `relay refused: ${message.code}: ${message.reason ?? ''}`));
          end.stream.abort(message.code, message.reason ?? 'closed', false);
        } else {
          end.stream.remoteEnd();
        }
        return;
      default:
        throw new FerryError('PROTOCOL', `unexpected ${message.type} on a stream this device opened or was brought`);
    }
  }
}
