// What the daemon knows of its own address outside: the port mapping (which trackers and the DHT
// announce), and every external address learned by STUN or seen by peers, each with its source.

import { formatAddress, type HostPort } from '../util/address.js';

/** 'pinhole': this device's global IPv6 address, open to inbound through the router's firewall (UPnP IGD v2). */
/** 'dht': agreed by DHT responders (BEP 42 `ip`). */
export type ExternalSource = 'upnp' | 'natpmp' | 'stun' | 'observed' | 'turn' | 'pinhole' | 'dht';

export interface ExternalAddress {
  address: string;
  source: ExternalSource;
  /** Who told us: the STUN server, the device ID of the peer that saw us, the TURN server relaying for us, or the router holding the pinhole. */
  via?: string;
  lastSeenMs: number;
}

/** Learned addresses kept per source (the most recently seen win): peers are many and may lie. */
export const MAX_LEARNED_PER_SOURCE = 8;

export class Reachability {
  external: HostPort | null = null;
  /** How it was obtained ('upnp', 'natpmp'), or why there is none ('no port mapping'). */
  method = 'no port mapping';
  private readonly learned = new Map<string, ExternalAddress & HostPort>();
  private readonly listeners = new Set<() => void>();
  private settle!: () => void;
  /** Settles once the first port-mapping attempt has finished (or at once when nothing maps ports). */
  readonly mappingSettled = new Promise<void>((resolve) => (this.settle = resolve));

  set(external: HostPort | null, method: string): void {
    this.external = external;
    this.method = method;
    this.notify();
  }

  mappingAttemptDone(): void {
    this.settle();
  }

  /** An external address learned by STUN, seen by a peer, relayed by TURN, opened by a pinhole or agreed by DHT responders; listeners hear only of new ones. */
  learn(source: 'stun' | 'observed' | 'turn' | 'pinhole' | 'dht', at: HostPort, via?: string, nowMs = Date.now()): void {
    const address = formatAddress(at);
    const key = `${source} ${address}`;
    const known = this.learned.get(key);
    if (known) {
      known.lastSeenMs = nowMs;
      if (via) known.via = via;
      return;
    }
    const same = [...this.learned.entries()].filter(([, entry]) => entry.source === source);
    if (same.length >= MAX_LEARNED_PER_SOURCE) {
      const [oldest] = same.sort(([, a], [, b]) => a.lastSeenMs - b.lastSeenMs)[0]!;
      this.learned.delete(oldest);
    }
    this.learned.set(key, { ...at, address, source, ...(via ? { via } : {}), lastSeenMs: nowMs });
    this.notify();
  }

  /** An address no longer ours (a TURN allocation lost); listeners hear of it. */
  forget(source: ExternalSource, at: HostPort): void {
    if (this.learned.delete(`${source} ${formatAddress(at)}`)) this.notify();
  }

  /** Every external address: the mapping first, then what STUN and peers said, newest first. */
  addresses(): Array<ExternalAddress & HostPort> {
    const mapped: Array<ExternalAddress & HostPort> =
      this.external && (this.method === 'upnp' || this.method === 'natpmp')
        ? [{ ...this.external, address: formatAddress(this.external), source: this.method, lastSeenMs: Date.now() }]
        : [];
    return [...mapped, ...[...this.learned.values()].sort((a, b) => b.lastSeenMs - a.lastSeenMs)];
  }

  /** For `status --json`. */
  report(): ExternalAddress[] {
    return this.addresses().map(({ address, source, via, lastSeenMs }) => ({ address, source, ...(via ? { via } : {}), lastSeenMs }));
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

/**
 * Why dialling an address failed, in words a user can act on, from the dialler's last error (the
 * error text itself stays in `lastError`).
 */
export function unreachableReason(lastError: string): string {
  if (/leads to this device/.test(lastError)) return 'self: the address is this device';
  if (/ECONNREFUSED/.test(lastError)) return 'refused: nothing listens there, or the router forwards no port to it';
  if (/EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL/.test(lastError)) return 'no route to that address from here';
  if (/ETIMEDOUT|timed? ?out|took longer|TIMEOUT/i.test(lastError)) return 'timeout: no answer (a NAT or firewall drops the packets?)';
  if (/ECONNRESET|EPIPE|socket hang up|closed/i.test(lastError)) return 'reset: the connection was cut during set-up';
  if (/NO_SHARED_FOLDER|no folder in common|shares no folder/i.test(lastError)) return 'no folder in common with that device';
  if (/ENOTFOUND|EAI_AGAIN/.test(lastError)) return 'the name does not resolve';
  if (/TLS|certificate|handshake|protocol/i.test(lastError)) return 'handshake failed: not a Ferry device, or an incompatible one';
  return 'other: see lastError';
}
