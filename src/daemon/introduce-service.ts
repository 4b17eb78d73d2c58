// Hole punching through a third device (issue 19, item 4), in the manner of libp2p's DCUtR: a
// device that hears by peer exchange of a device it is not connected to asks the peer that told it
// (a device of a folder both share) to introduce them; that introducer sends each of the two the
// other's external UDP endpoints at once, and both dial each other over µTP at the same moment, so
// each side's SYNs open its own NAT for the other's. Up to INTRO_TRIES rounds, then a reason in
// status. Requests and introductions are rate-limited per peer and in all; every table is bounded.

import { isIP } from 'node:net';
import type { EstablishedPeer } from '../connections/index.js';
import { isLoopback, isPrivateAddress, isUnspecified } from '../discovery/net-addresses.js';
import { formatPeerAddress, parsePeerAddress } from '../discovery/peer-address.js';
import { TokenBucket } from '../discovery/rate-limit.js';
import {
  LIMITS,
  type IntroduceFailedMessage,
  type IntroduceFailure,
  type IntroduceMessage,
  type IntroduceRequestMessage,
  type Message,
  type PeerExchangeMessage,
} from '../protocol/index.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import type { Service, ServiceContext, ServiceFactory } from './services.js';

/** After hearing of a device by peer exchange, how long a direct dial gets before an introduction is asked for. */
export const INTRO_DELAY_MS = 2_000;
/** Rounds of introduction and punching before the device is reported unreachable. */
export const INTRO_TRIES = 3;
/** How long the introducer gets to answer an IntroduceRequest. */
export const INTRO_ANSWER_MS = 5_000;
/** Pause between two rounds. */
export const INTRO_RETRY_MS = 1_000;
/**
 * After INTRO_TRIES failed rounds, how long until the device is tried again: INTRO_FIRST_BACKOFF_MS,
 * doubling with each failed set of rounds up to INTRO_BACKOFF_MS. A set can fail for a passing
 * reason (a busy machine missed the SYN window), so the first wait is short.
 */
export const INTRO_FIRST_BACKOFF_MS = 30_000;
export const INTRO_BACKOFF_MS = 10 * 60_000;
/** After an introducer refused (the device left it, say). */
export const INTRO_REFUSED_RETRY_MS = 60_000;
const TICK_MS = 500;
/** Devices followed (pursued or introduced), peers' stated addresses and listen ports: each table at most this many. */
export const MAX_INTRO_DEVICES = 256;
/** Devices being punched at once. */
export const MAX_PUNCHES = 8;
/** Introducer side: IntroduceRequests taken per requesting peer, and from all peers together (per second, burst). */
export const REQUESTS_PER_PEER = { ratePerS: 0.2, burst: 6 };
export const REQUESTS_TOTAL = { ratePerS: 2, burst: 20 };
/** Introduced side: Introduce messages acted on per introducer (per second, burst). */
export const INTRODUCTIONS_PER_PEER = { ratePerS: 0.2, burst: 6 };
/** A peer's stated own addresses are used this long. */
const STATED_TTL_MS = 10 * 60_000;

type IntroMessage = IntroduceRequestMessage | IntroduceMessage | IntroduceFailedMessage;

type PursuitState = 'waiting' | 'asking' | 'punching' | 'connected' | 'failed' | 'off';

interface Pursuit {
  device: string;
  state: PursuitState;
  /** The introducer asked last (device ID). */
  via?: string;
  folderHex?: string;
  /** Rounds that ended without a connection since the last success or backoff. */
  tries: number;
  /** Sets of INTRO_TRIES rounds that failed in a row: the backoff doubles with each. */
  failedSets?: number;
  reason?: string;
  nextAtMs: number;
  askedAtMs: number;
  /** Whether we asked for this round (else the other side did, and we only answer its punch). */
  asked: boolean;
  /** Addresses being dialled now, and the switch that stops them once one connected. */
  dialling: Set<string>;
  stop?: AbortController;
  lastError?: string;
  /** When it was last connected through a punch, and how long it took from the first request. */
  firstAskedAtMs?: number;
  punchedInMs?: number;
}

export interface IntroduceReport {
  udp: boolean;
  counters: {
    requestsSent: number;
    introductionsReceived: number;
    /** As introducer. */
    introduced: number;
    refused: number;
    rateLimited: number;
    punched: number;
    punchFailed: number;
  };
  devices: Array<{ device: string; state: PursuitState; via?: string; tries: number; reason?: string; punchedInMs?: number }>;
}

const short = (deviceId: string): string => deviceId.slice(0, 7);
/** A link straight over UDP: its remote address is the peer's NAT mapping of its sync socket, its `observed` ours. */
const overUdp = (peer: EstablishedPeer): boolean => peer.path() === 'udp' || peer.path() === 'udp punched';

/** Bounded insertion-ordered map: the oldest entry goes when full. */
function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max = MAX_INTRO_DEVICES): void {
  map.delete(key);
  if (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
}

export class IntroduceService extends Resource implements Service {
  readonly name = 'introduce';
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  private readonly lifetime = new AbortController();
  private readonly pursuits = new Map<string, Pursuit>();
  /** Per introducer device, per folder: the devices its latest PeerExchange listed. */
  private readonly listed = new Map<string, Map<string, Set<string>>>();
  /** Introducer side: the addresses each peer stated for itself in its latest IntroduceRequest. */
  private readonly stated = new Map<string, { addresses: string[]; atMs: number }>();
  /** Introducer side: each peer's sync port, from its PeerExchange. */
  private readonly listenPorts = new Map<string, number>();
  private readonly requestBuckets = new Map<string, TokenBucket>();
  private readonly introductionBuckets = new Map<string, TokenBucket>();
  private readonly totalRequests = new TokenBucket(REQUESTS_TOTAL.ratePerS, REQUESTS_TOTAL.burst);
  private readonly punches = new Set<Promise<void>>();
  private readonly counters: IntroduceReport['counters'] = {
    requestsSent: 0, introductionsReceived: 0, introduced: 0, refused: 0, rateLimited: 0, punched: 0, punchFailed: 0,
  };

  constructor(private readonly context: ServiceContext) {
    super();
    this.log = context.logger.child('introduce');
  }

  protected async _open(): Promise<void> {
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  protected async _close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.lifetime.abort();
    await Promise.allSettled([...this.punches]);
  }

  report(): IntroduceReport {
    return {
      udp: this.context.connections.udpOn,
      counters: { ...this.counters },
      devices: [...this.pursuits.values()].map((p) => ({
        device: p.device,
        state: p.state,
        ...(p.via ? { via: p.via } : {}),
        tries: p.tries,
        ...(p.reason ? { reason: p.reason } : {}),
        ...(p.punchedInMs !== undefined ? { punchedInMs: p.punchedInMs } : {}),
      })),
    };
  }

  private peers(): EstablishedPeer[] {
    return this.context.connections.peers().filter((peer) => !peer.connection.closed);
  }

  private peer(deviceId: string): EstablishedPeer | undefined {
    return this.peers().find((peer) => peer.deviceId === deviceId);
  }

  /** Connected other than through a relay: a relayed device is still punched to (a direct link replaces the relayed one). */
  private direct(deviceId: string): boolean {
    return this.context.connections.directlyConnected(deviceId);
  }

  private send(to: EstablishedPeer, message: Message): void {
    void to.connection.send(message).catch((err: unknown) => this.log.debug('cannot send', { type: message.type, device: to.deviceId, err: err as Error }));
  }

  /** The name a reason uses for a device: its name when connected, else the start of its ID. */
  private label(deviceId: string): string {
    const name = this.peer(deviceId)?.deviceName;
    return name ? `${name} (${short(deviceId)})` : short(deviceId);
  }

  // --- hearing of devices ------------------------------------------------------------------

  onPeerExchange(peer: EstablishedPeer, message: PeerExchangeMessage): void {
    if (this.closed) return;
    if (message.listenPort > 0) setBounded(this.listenPorts, peer.deviceId, message.listenPort);
    const self = this.context.identity.id;
    const devices = new Set(message.peers.map((entry) => entry.device).filter((device) => device !== self && device !== peer.deviceId));
    let folders = this.listed.get(peer.deviceId);
    if (!folders) setBounded(this.listed, peer.deviceId, (folders = new Map()));
    if (folders.size >= LIMITS.maxFolderClaims && !folders.has(message.folderId.toString('hex'))) return;
    folders.set(message.folderId.toString('hex'), devices);
    const nowMs = Date.now();
    for (const device of devices) {
      if (this.pursuits.has(device) || this.direct(device)) continue;
      this.pursue(device, nowMs + INTRO_DELAY_MS);
    }
  }

  private pursue(device: string, nextAtMs: number): Pursuit {
    const udp = this.context.connections.udpOn;
    const pursuit: Pursuit = {
      device,
      state: udp ? 'waiting' : 'off',
      tries: 0,
      nextAtMs,
      askedAtMs: 0,
      asked: false,
      dialling: new Set(),
      ...(udp ? {} : { reason: 'UDP is off on this device (--no-udp): no hole punching, only direct dials' }),
    };
    // Evict a connected or idle entry first, else the oldest.
    if (this.pursuits.size >= MAX_INTRO_DEVICES) {
      const idle = [...this.pursuits.values()].find((p) => p.state === 'connected' || p.state === 'off' || p.state === 'failed');
      this.pursuits.delete(idle?.device ?? this.pursuits.keys().next().value!);
    }
    this.pursuits.set(device, pursuit);
    return pursuit;
  }

  /** An introducer for `device`: a connected peer whose latest PeerExchange listed it (the previous one first). */
  private introducerFor(pursuit: Pursuit): { peer: EstablishedPeer; folderHex: string } | undefined {
    const peers = this.peers();
    const ordered = pursuit.via ? [...peers.filter((p) => p.deviceId === pursuit.via), ...peers.filter((p) => p.deviceId !== pursuit.via)] : peers;
    for (const peer of ordered) {
      for (const [folderHex, devices] of this.listed.get(peer.deviceId) ?? []) {
        if (devices.has(pursuit.device) && peer.handshake.folders.some((shared) => shared.keys.folderIdHex === folderHex)) return { peer, folderHex };
      }
    }
    return undefined;
  }

  tick(nowMs = Date.now()): void {
    if (!this.opened || this.closed) return;
    const connected = new Set(this.peers().map((peer) => peer.deviceId));
    for (const introducer of [...this.listed.keys()]) if (!connected.has(introducer)) this.listed.delete(introducer);
    for (const pursuit of [...this.pursuits.values()]) {
      if (this.direct(pursuit.device)) {
        if (pursuit.state !== 'connected' && pursuit.state !== 'punching') this.markConnected(pursuit, nowMs);
        continue;
      }
      if (pursuit.state === 'off') continue;
      if (pursuit.state === 'connected') {
        // The link went: try again after the usual grace for a direct dial.
        Object.assign(pursuit, { state: 'waiting', tries: 0, nextAtMs: nowMs + INTRO_DELAY_MS, reason: undefined, firstAskedAtMs: undefined });
        continue;
      }
      if (pursuit.state === 'asking' && nowMs - pursuit.askedAtMs >= INTRO_ANSWER_MS) {
        this.roundFailed(pursuit, nowMs, `no answer from the introducer ${this.label(pursuit.via ?? '')}`);
        continue;
      }
      if ((pursuit.state === 'waiting' || pursuit.state === 'failed') && nowMs >= pursuit.nextAtMs) this.ask(pursuit, nowMs);
    }
  }

  private ask(pursuit: Pursuit, nowMs: number): void {
    const found = this.introducerFor(pursuit);
    if (!found) {
      // No connected peer lists the device any more: nothing to ask; forget it.
      this.pursuits.delete(pursuit.device);
      return;
    }
    if (pursuit.state === 'failed' && pursuit.tries >= INTRO_TRIES) pursuit.tries = 0;
    const { peer, folderHex } = found;
    Object.assign(pursuit, { state: 'asking', via: peer.deviceId, folderHex, askedAtMs: nowMs, asked: true });
    pursuit.firstAskedAtMs ??= nowMs;
    this.counters.requestsSent++;
    const folderId = Buffer.from(folderHex, 'hex');
    this.log.debug('asking for an introduction', { device: pursuit.device, via: peer.deviceId, try: pursuit.tries + 1 });
    this.send(peer, { type: 'IntroduceRequest', folderId, device: pursuit.device, addresses: this.ownUdpAddresses() });
  }

  /** `byPunch`: connected at the end of a punch round (else some other way: a direct dial, the peer dialling us). */
  private markConnected(pursuit: Pursuit, nowMs: number, byPunch = false): void {
    if (byPunch && pursuit.firstAskedAtMs !== undefined) pursuit.punchedInMs = nowMs - pursuit.firstAskedAtMs;
    Object.assign(pursuit, { state: 'connected', tries: 0, failedSets: 0, reason: undefined, firstAskedAtMs: undefined });
  }

  private roundFailed(pursuit: Pursuit, nowMs: number, why: string): void {
    pursuit.tries++;
    const via = this.label(pursuit.via ?? '');
    if (pursuit.tries >= INTRO_TRIES) {
      pursuit.failedSets = (pursuit.failedSets ?? 0) + 1;
      const backoffMs = Math.min(INTRO_BACKOFF_MS, INTRO_FIRST_BACKOFF_MS * 2 ** (pursuit.failedSets - 1));
      Object.assign(pursuit, {
        state: 'failed',
        nextAtMs: nowMs + backoffMs,
        reason: `introduction via ${via} failed: ${why} after ${pursuit.tries} tries`,
        firstAskedAtMs: undefined,
      });
      this.log.info('introduction failed', { device: pursuit.device, via: pursuit.via, reason: pursuit.reason, retryInMs: backoffMs });
    } else {
      Object.assign(pursuit, { state: 'waiting', nextAtMs: nowMs + INTRO_RETRY_MS, reason: `introduction via ${via}: ${why} (try ${pursuit.tries} of ${INTRO_TRIES})` });
    }
  }

  // --- messages ------------------------------------------------------------------------------

  onIntroduce(peer: EstablishedPeer, message: IntroMessage): void {
    if (this.closed) return;
    switch (message.type) {
      case 'IntroduceRequest':
        return this.introduce(peer, message);
      case 'Introduce':
        return this.introduced(peer, message);
      case 'IntroduceFailed':
        return this.refused(peer, message);
    }
  }

  /** As introducer: `from` asks to meet `message.device`. */
  private introduce(from: EstablishedPeer, message: IntroduceRequestMessage): void {
    const folderHex = message.folderId.toString('hex');
    const fail = (code: IntroduceFailure): void => {
      this.counters.refused++;
      this.log.debug('introduction refused', { from: from.deviceId, device: message.device, code });
      this.send(from, { type: 'IntroduceFailed', folderId: message.folderId, device: message.device, code });
    };
    let bucket = this.requestBuckets.get(from.deviceId);
    if (!bucket) setBounded(this.requestBuckets, from.deviceId, (bucket = new TokenBucket(REQUESTS_PER_PEER.ratePerS, REQUESTS_PER_PEER.burst)));
    if (!bucket.take() || !this.totalRequests.take()) {
      this.counters.rateLimited++;
      return fail('RATE_LIMITED');
    }
    if (message.device === from.deviceId || message.device === this.context.identity.id) return fail('SELF');
    // Only between devices that both proved the folder to us on their live links (the requester's
    // was checked by its session: the message names a folder shared on its connection).
    const shares = (peer: EstablishedPeer): boolean => peer.handshake.folders.some((shared) => shared.keys.folderIdHex === folderHex);
    const target = this.peer(message.device);
    if (!shares(from) || !target || !shares(target)) return fail('NOT_CONNECTED');
    setBounded(this.stated, from.deviceId, { addresses: message.addresses, atMs: Date.now() });
    const toTarget = this.candidates(from, target);
    const toRequester = this.candidates(target, from);
    const [delayTarget, delayRequester] = this.delays(target, from);
    if (toTarget.length) this.send(target, { type: 'Introduce', folderId: message.folderId, device: from.deviceId, addresses: toTarget, delayMs: delayTarget });
    if (!toRequester.length) return fail('NO_ADDRESS');
    this.send(from, { type: 'Introduce', folderId: message.folderId, device: target.deviceId, addresses: toRequester, delayMs: delayRequester });
    this.counters.introduced++;
    this.log.info('introduced two devices', { a: from.deviceId, b: target.deviceId, toA: toRequester.join(' '), toB: toTarget.join(' ') });
  }

  /**
   * Where `subject` may be reachable over UDP, for `recipient`: the remote of its link to us when
   * that runs over UDP (exactly its NAT's mapping of its sync socket), what it stated itself, and
   * its link's IP at its sync port (port-preserving NATs). Nothing private for a recipient on a
   * public address, no loopback for one not on loopback.
   */
  private candidates(subject: EstablishedPeer, recipient: EstablishedPeer): string[] {
    const recipientHost = parsePeerAddress(recipient.address)?.host ?? '';
    const linkHost = parsePeerAddress(subject.address)?.host;
    const out = new Set<string>();
    const add = (text: string | undefined): void => {
      const parsed = text ? parsePeerAddress(text) : null;
      if (!parsed || isIP(parsed.host) === 0 || parsed.host.includes('%') || isUnspecified(parsed.host)) return;
      if (!isPrivateAddress(recipientHost) && isPrivateAddress(parsed.host)) return;
      if (isLoopback(parsed.host) && !isLoopback(recipientHost)) return;
      out.add(formatPeerAddress(parsed));
    };
    if (overUdp(subject)) add(subject.address);
    const stated = this.stated.get(subject.deviceId);
    if (stated && Date.now() - stated.atMs < STATED_TTL_MS) stated.addresses.forEach(add);
    const port = this.listenPorts.get(subject.deviceId);
    if (linkHost && port) add(formatPeerAddress({ host: linkHost, port }));
    return [...out].slice(0, LIMITS.maxIntroduceAddresses);
  }

  /** Start delays so both SYN floods begin together: half the difference of the round-trip times (when both are known). */
  private delays(a: EstablishedPeer, b: EstablishedPeer): [number, number] {
    const rttA = a.rttMs();
    const rttB = b.rttMs();
    if (rttA === undefined || rttB === undefined) return [0, 0];
    const cap = (ms: number): number => Math.min(LIMITS.maxIntroduceDelayMs, Math.max(0, Math.round(ms)));
    return [cap((rttB - rttA) / 2), cap((rttA - rttB) / 2)];
  }

  /** The introducer could not serve our request. */
  private refused(from: EstablishedPeer, message: IntroduceFailedMessage): void {
    const pursuit = this.pursuits.get(message.device);
    if (!pursuit || pursuit.state !== 'asking' || pursuit.via !== from.deviceId) return;
    Object.assign(pursuit, {
      state: 'failed',
      nextAtMs: Date.now() + INTRO_REFUSED_RETRY_MS,
      reason: `introduction via ${this.label(from.deviceId)} refused: ${message.code}`,
      firstAskedAtMs: undefined,
    });
  }

  /** An introducer tells us `message.device` is dialling us now: dial it back at once. */
  private introduced(from: EstablishedPeer, message: IntroduceMessage): void {
    let bucket = this.introductionBuckets.get(from.deviceId);
    if (!bucket) setBounded(this.introductionBuckets, from.deviceId, (bucket = new TokenBucket(INTRODUCTIONS_PER_PEER.ratePerS, INTRODUCTIONS_PER_PEER.burst)));
    if (!bucket.take()) {
      this.counters.rateLimited++;
      this.log.debug('introduction ignored: too many from this peer', { from: from.deviceId });
      return;
    }
    this.counters.introductionsReceived++;
    if (message.device === this.context.identity.id) return;
    const nowMs = Date.now();
    const pursuit = this.pursuits.get(message.device) ?? this.pursue(message.device, nowMs);
    if (pursuit.state === 'off' || this.direct(message.device)) return;
    const fromHost = parsePeerAddress(from.address)?.host ?? '';
    const targets = message.addresses
      .map((text) => parsePeerAddress(text))
      .filter((at): at is NonNullable<typeof at> => at !== null && !isUnspecified(at.host) && !(isLoopback(at.host) && !isLoopback(fromHost)))
      .filter((at) => !pursuit.dialling.has(formatPeerAddress(at)));
    if (!targets.length) return;
    const active = [...this.pursuits.values()].filter((p) => p.dialling.size > 0).length;
    if (pursuit.dialling.size === 0 && active >= MAX_PUNCHES) {
      this.log.debug('introduction ignored: too many punches at once', { device: message.device });
      return;
    }
    // Introduced without having asked (the other device did): answer with a request of our own,
    // once per round, so the introducer has our own endpoints (STUN, mapping) for the other side.
    const unasked = pursuit.state !== 'punching' && !(pursuit.state === 'asking' && pursuit.via === from.deviceId);
    if (pursuit.state !== 'punching') pursuit.firstAskedAtMs ??= nowMs;
    Object.assign(pursuit, { state: 'punching', via: from.deviceId, folderHex: message.folderId.toString('hex'), asked: !unasked });
    if (unasked) {
      this.counters.requestsSent++;
      this.send(from, { type: 'IntroduceRequest', folderId: message.folderId, device: message.device, addresses: this.ownUdpAddresses() });
    }
    this.log.info('introduced: punching', { device: message.device, via: from.deviceId, addresses: message.addresses.join(' '), delayMs: message.delayMs });
    const source = `introduced via ${short(from.deviceId)}`;
    if (pursuit.dialling.size === 0) pursuit.stop = new AbortController();
    const signal = AbortSignal.any([this.lifetime.signal, pursuit.stop!.signal]);
    for (const target of targets) {
      const key = formatPeerAddress(target);
      pursuit.dialling.add(key);
      const punch = this.wait(message.delayMs)
        .then(() => (this.closed ? { connected: false, error: 'closing' } : this.context.connections.punchDial(message.device, target, source, signal)))
        .then((result) => {
          pursuit.dialling.delete(key);
          // Connected: the dials to the other addresses have done their part.
          if (result.connected) pursuit.stop?.abort();
          if (result.error) pursuit.lastError = result.error;
          if (pursuit.dialling.size > 0 || this.closed) return;
          if (result.connected || this.direct(message.device)) {
            this.counters.punched++;
            this.markConnected(pursuit, Date.now(), true);
            this.log.info('punched through to an introduced device', { device: message.device, path: this.peer(message.device)?.path(), inMs: pursuit.punchedInMs });
          } else {
            this.counters.punchFailed++;
            this.roundFailed(pursuit, Date.now(), `no reply from ${short(message.device)}'s NAT`);
          }
        });
      const tracked = punch.catch((err: unknown) => this.log.warn('punch failed unexpectedly', { err: err as Error })).finally(() => this.punches.delete(tracked));
      this.punches.add(tracked);
    }
  }

  private wait(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.lifetime.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }

  /**
   * This device's own external UDP endpoints, as far as it knows them: what STUN said (asked from
   * the sync port's shared socket when UDP is on), the port mapping, and what peers on a UDP link
   * saw (their Hello's `observed`: that is the NAT's mapping of the shared socket).
   */
  private ownUdpAddresses(): string[] {
    const out = new Set<string>();
    for (const learned of this.context.reachability.addresses()) {
      if (learned.source === 'stun' || learned.source === 'upnp' || learned.source === 'natpmp') out.add(formatPeerAddress(learned));
    }
    for (const peer of this.peers()) {
      const observed = overUdp(peer) ? peer.handshake.peer.observed : undefined;
      const parsed = observed ? parsePeerAddress(observed) : null;
      if (parsed) out.add(formatPeerAddress(parsed));
    }
    return [...out].filter((text) => {
      const host = parsePeerAddress(text)?.host ?? '';
      return isIP(host) !== 0 && !isUnspecified(host);
    }).slice(0, LIMITS.maxIntroduceAddresses);
  }
}

export const introduceServiceFactory: ServiceFactory = (context) => new IntroduceService(context);
