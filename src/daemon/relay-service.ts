// The relay service: relays for peers (as the settings say) and reaches a device that no direct
// dial reaches through a common peer that told us of it (peer exchange). The relayed link runs
// TLS and the Ferry handshake end to end; the connection manager's duplicate rule replaces it
// with a direct one as soon as a background dial succeeds.

import type { AddressStatus, ConnectionManager, EstablishedPeer } from '../connections/index.js';
import { shortIdOf } from '../keys/index.js';
import type { PeerConnection, PeerExchangeMessage, RelayMessage } from '../protocol/index.js';
import { RelayNode, type Carrier, type RelayStream } from '../relay/index.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import type { Service, ServiceFactory } from './services.js';

/** How often devices heard of and not connected are looked at. */
export const RELAY_POLL_MS = 1_000;
/**
 * Happy eyeballs for relays: direct dials and hole punching get this head start from when we first
 * heard of a device; a device still unconnected then is relayed to alongside them (a punch that
 * works usually connects well within it). A direct link that comes later replaces the relayed one
 * without a transfer noticing (Close SUPERSEDED, requests moved over, nothing fetched twice). A
 * device is relayed to at once, before the head start ends, when every address of it failed or a
 * hole punch to it ran out without a link.
 */
export const RELAY_HEAD_START_MS = 5_000;
/** The device with the larger ID waits this much longer, so that usually one side opens the relayed link, not both. */
export const RELAY_YIELD_MS = 4_000;
export const RELAY_RETRY_MIN_MS = 5_000;
export const RELAY_RETRY_MAX_MS = 120_000;
/** Devices heard of by peer exchange that are kept as relay candidates, and relays remembered per device. */
const MAX_CANDIDATES = 1024;
const MAX_VIAS = 8;

/** Why a relay was tried for a device: its direct addresses all failed, a hole punch to it failed, or the head start ran out. */
export type RelayTrigger = 'direct dials failed' | 'punch failed' | 'head start';

interface Candidate {
  /** Relay device ID → the addresses it told us. */
  vias: Map<string, string[]>;
  firstHeardMs: number;
  /** When every direct address was first seen failed, a punch failed, or the head start ran out. */
  directFailedMs?: number;
  /** Which of those it was, and how long after we first heard of the device (status, logs). */
  trigger?: RelayTrigger;
  triggerAfterMs?: number;
  nextTryMs: number;
  failures: number;
  trying: boolean;
  lastError?: string;
  lastVia?: string;
}

export interface RelayServiceOptions {
  deviceId: string;
  connections: ConnectionManager;
  relay: boolean;
  rateBps: number;
  logger: Logger;
  pollMs?: number;
  /** @default RELAY_HEAD_START_MS */
  headStartMs?: number;
}

/** The name a relayed path shows: the relay's device name, else its short ID. */
function labelOf(peer: EstablishedPeer): string {
  return peer.deviceName.trim() || shortIdOf(peer.deviceId);
}

export class RelayService extends Resource implements Service {
  readonly name = 'relay';
  readonly node: RelayNode;
  private readonly carriers = new WeakMap<PeerConnection, Carrier>();
  private readonly candidates = new Map<string, Candidate>();
  private timer: NodeJS.Timeout | null = null;
  private readonly log: Logger;

  constructor(private readonly options: RelayServiceOptions) {
    super();
    this.log = options.logger;
    this.node = new RelayNode({
      relay: options.relay,
      rateBps: options.rateBps,
      carrierFor: (deviceId) => {
        const peer = this.options.connections.peers().find((p) => p.deviceId === deviceId);
        return peer ? this.carrierOf(peer) : undefined;
      },
      onIncoming: (stream, from, via) => this.incoming(stream, from, via),
      logger: this.log,
    });
  }

  protected async _open(): Promise<void> {
    this.timer = setInterval(() => this.tick(), this.options.pollMs ?? RELAY_POLL_MS);
    this.timer.unref();
  }

  protected async _close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.node.close();
  }

  report(): unknown {
    const now = Date.now();
    const connected = new Set(this.options.connections.peers().map((p) => p.deviceId));
    return {
      ...this.node.report(),
      devices: [...this.candidates]
        .filter(([device, c]) => !connected.has(device) || c.lastError !== undefined || c.trigger !== undefined)
        .slice(0, 64)
        .map(([device, c]) => ({
          device,
          connected: connected.has(device),
          vias: [...c.vias.keys()],
          ...(c.lastVia ? { lastVia: c.lastVia } : {}),
          ...(c.trigger ? { trigger: c.trigger, triggerAfterMs: c.triggerAfterMs } : {}),
          ...(c.lastError ? { lastError: c.lastError } : {}),
          failures: c.failures,
          ...(!connected.has(device) ? { nextTryInMs: Math.max(0, c.nextTryMs - now) } : {}),
        })),
    };
  }

  onRelayMessage(peer: EstablishedPeer, message: RelayMessage): void {
    this.node.receive(this.carrierOf(peer), message);
  }

  onPeerClosed(peer: EstablishedPeer): void {
    const carrier = this.carriers.get(peer.connection);
    if (carrier) this.node.detach(carrier);
  }

  /** Devices a directly connected peer knows of, for a folder it shares with us: relay candidates through it. */
  onPeerExchange(peer: EstablishedPeer, message: PeerExchangeMessage): void {
    if (this.carrierOf(peer).relayed) return;
    const now = Date.now();
    for (const entry of message.peers) {
      if (entry.device === this.options.deviceId || entry.device === peer.deviceId) continue;
      let candidate = this.candidates.get(entry.device);
      if (!candidate) {
        if (this.candidates.size >= MAX_CANDIDATES) this.candidates.delete(this.candidates.keys().next().value!);
        candidate = { vias: new Map(), firstHeardMs: now, nextTryMs: 0, failures: 0, trying: false };
        this.candidates.set(entry.device, candidate);
      }
      if (!candidate.vias.has(peer.deviceId) && candidate.vias.size >= MAX_VIAS) candidate.vias.delete(candidate.vias.keys().next().value!);
      candidate.vias.set(peer.deviceId, entry.addresses);
    }
  }

  private carrierOf(peer: EstablishedPeer): Carrier {
    let carrier = this.carriers.get(peer.connection);
    if (!carrier) {
      carrier = {
        deviceId: peer.deviceId,
        direction: peer.direction,
        folderIds: new Set(peer.handshake.folders.map((shared) => shared.keys.folderIdHex)),
        relayed: peer.path().startsWith('relay'),
        send: (message) => peer.connection.send(message),
      };
      this.carriers.set(peer.connection, carrier);
    }
    return carrier;
  }

  /** Looks at every device heard of and not connected: relays to it when direct dials do not reach it. */
  tick(now = Date.now()): void {
    if (!this.opened || this.closed) return;
    const peers = this.options.connections.peers();
    const byDevice = new Map(peers.map((peer) => [peer.deviceId, peer]));
    const addresses = this.options.connections.addresses();
    for (const [device, candidate] of this.candidates) {
      if (byDevice.has(device)) {
        candidate.directFailedMs = undefined;
        candidate.failures = 0;
        continue;
      }
      if (candidate.trying || now < candidate.nextTryMs) continue;
      if (candidate.directFailedMs === undefined) {
        const trigger = this.triggerFor(device, candidate, addresses, now);
        if (!trigger) continue;
        candidate.directFailedMs = now;
        candidate.trigger = trigger;
        candidate.triggerAfterMs = now - candidate.firstHeardMs;
      }
      const yieldMs = this.options.deviceId > device && candidate.failures === 0 ? RELAY_YIELD_MS : 0;
      if (now - candidate.directFailedMs < yieldMs) continue;
      const via = [...candidate.vias.keys()].reverse().map((id) => byDevice.get(id)).find((peer) => peer && !this.carrierOf(peer).relayed);
      if (!via) continue;
      void this.attempt(device, candidate, via);
    }
  }

  /** Whether `device` is to be relayed to now, and why: its direct dials failed, a punch failed, or the head start ran out. */
  private triggerFor(device: string, candidate: Candidate, addresses: AddressStatus[], now: number): RelayTrigger | undefined {
    const told = new Set([...candidate.vias.values()].flat());
    const known = addresses.filter((a) => told.has(a.address) || a.deviceId === device);
    if (known.length > 0 && known.every((a) => !a.connected && a.lastError !== undefined)) return 'direct dials failed';
    const punch = this.options.connections.lastPunchFailure(device);
    if (punch && punch.atMs >= candidate.firstHeardMs) return 'punch failed';
    if (now - candidate.firstHeardMs >= (this.options.headStartMs ?? RELAY_HEAD_START_MS)) return 'head start';
    return undefined;
  }

  private async attempt(device: string, candidate: Candidate, via: EstablishedPeer): Promise<void> {
    candidate.trying = true;
    candidate.lastVia = via.deviceId;
    const label = labelOf(via);
    try {
      this.log.info('reaching a device through a relay', { device, via: via.deviceId, after: candidate.trigger, heardMsAgo: Date.now() - candidate.firstHeardMs });
      const stream = await this.node.open(this.carrierOf(via), device);
      await this.options.connections.connectOver(stream, 'client', this.over(stream, label, device));
      candidate.failures = 0;
      candidate.lastError = undefined;
    } catch (err) {
      candidate.failures++;
      candidate.lastError = err instanceof Error ? err.message : String(err);
      const delayMs = Math.min(RELAY_RETRY_MAX_MS, RELAY_RETRY_MIN_MS * 2 ** Math.min(candidate.failures - 1, 10));
      candidate.nextTryMs = Date.now() + delayMs;
      this.log.info('relayed link failed', { device, via: via.deviceId, reason: candidate.lastError, retryInMs: delayMs });
    } finally {
      candidate.trying = false;
    }
  }

  private incoming(stream: RelayStream, from: string, via: Carrier): void {
    const peer = this.options.connections.peers().find((p) => p.deviceId === via.deviceId);
    const label = peer ? labelOf(peer) : shortIdOf(via.deviceId);
    this.options.connections.connectOver(stream, 'server', this.over(stream, label)).catch((err: unknown) => {
      this.log.info('relayed link from a device failed', { device: from, via: via.deviceId, reason: err instanceof Error ? err.message : String(err) });
    });
  }

  private over(stream: RelayStream, label: string, device?: string) {
    return {
      address: `relay:${label}`,
      path: () => `relay via ${label}` as const,
      rttMs: () => (stream.rttMs === undefined ? undefined : Math.round(stream.rttMs * 10) / 10),
      ...(device ? { device } : {}),
    };
  }
}

export const relayServiceFactory: ServiceFactory = (context) =>
  new RelayService({
    deviceId: context.identity.id,
    connections: context.connections,
    relay: context.settings.relay,
    rateBps: context.settings.relayRateBps,
    logger: context.logger.child('relay'),
  });
