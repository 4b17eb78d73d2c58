// Peer exchange: tells each connected peer, per folder it shares with us, where the folder's other
// connected devices are (bounded, deduplicated, no private addresses to a peer on a public one),
// and takes the same from them.

import { isIP } from 'node:net';
import { LIMITS, type PeerExchangeEntry, type PeerExchangeMessage } from '../protocol/index.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { isLanAddress, isLoopback, isPrivateAddress, isUnspecified, localAddresses } from './net-addresses.js';
import { formatPeerAddress, parsePeerAddress, type ConnectedPeer } from './peer-address.js';

/** How often the list is checked for changes, and sent again even if unchanged. */
export const PEX_POLL_MS = 2_000;
export const PEX_RESEND_MS = 5 * 60_000;
/** Addresses a peer told us it listens at (remote host + its listenPort), kept per device. */
const MAX_ADVERTISED = 1024;

export interface PeerExchangeOptions {
  deviceId: string;
  peers: () => ConnectedPeer[];
  /** Our sync port, sent as listenPort. */
  listenPort: () => number;
  /** An address a peer told us about for a folder. */
  onAddress: (folderIdHex: string, address: string, deviceId: string) => void;
  /**
   * Our own LAN addresses (private IP literals at the sync port). Told to peers on public
   * addresses, in an entry naming ourselves, so that they can pass them on to other devices
   * behind the same external address (which may reach us only on the LAN: no hairpin NAT).
   */
  lanAddresses?: () => string[];
  /** This host's own addresses (a peer pointing us at one of them at our port points us at ourselves). @default localAddresses() */
  ownAddresses?: () => ReadonlySet<string>;
  pollMs?: number;
  logger?: Logger;
}

interface Sent {
  text: string;
  atMs: number;
}

export class PeerExchange extends Resource {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  /** What was last sent, per connection and folder. */
  private readonly sent = new WeakMap<object, Map<string, Sent>>();
  private readonly advertised = new Map<string, string>();
  /** LAN addresses each peer told us in its own entry (only passed on to its NAT neighbours). */
  private readonly lan = new Map<string, string[]>();
  readonly counters = { sent: 0, received: 0, addressesLearned: 0, addressesRefused: 0 };

  constructor(private readonly options: PeerExchangeOptions) {
    super();
    this.log = options.logger ?? silentLogger;
  }

  protected async _open(): Promise<void> {
    this.timer = setInterval(() => this.tick(), this.options.pollMs ?? PEX_POLL_MS);
    this.timer.unref();
  }

  protected async _close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  report(): unknown {
    return { ...this.counters };
  }

  /** Sends every peer what changed for it (or everything, every PEX_RESEND_MS). */
  tick(nowMs = Date.now()): void {
    if (!this.opened) return;
    const peers = this.options.peers();
    for (const peer of peers) {
      if (peer.connection.closed) continue;
      let sent = this.sent.get(peer.connection);
      if (!sent) this.sent.set(peer.connection, (sent = new Map()));
      for (const shared of peer.handshake.folders) {
        const message = this.build(peer, shared.keys.folderId, peers);
        const text = JSON.stringify(message.peers);
        const last = sent.get(shared.keys.folderIdHex);
        if (last && last.text === text && nowMs - last.atMs < PEX_RESEND_MS) continue;
        sent.set(shared.keys.folderIdHex, { text, atMs: nowMs });
        this.counters.sent++;
        void peer.connection.send(message).catch((err: unknown) => this.log.debug('cannot send PeerExchange', { device: peer.deviceId, err: err as Error }));
      }
    }
  }

  /** The PeerExchange for `to` about one folder: the folder's other connected devices. */
  build(to: ConnectedPeer, folderId: Buffer, peers: ConnectedPeer[]): PeerExchangeMessage {
    const hex = folderId.toString('hex');
    const toHost = parsePeerAddress(to.address)?.host ?? '';
    const toPublic = !isPrivateAddress(toHost);
    const entries: PeerExchangeEntry[] = [];
    for (const peer of peers) {
      if (entries.length >= LIMITS.maxExchangedPeers) break;
      if (peer.deviceId === to.deviceId || peer.connection.closed) continue;
      if (!peer.handshake.folders.some((shared) => shared.keys.folderIdHex === hex)) continue;
      const candidates = [peer.direction === 'out' ? peer.address : undefined, this.advertised.get(peer.deviceId)];
      const addresses = new Set<string>();
      for (const candidate of candidates) {
        const parsed = candidate ? parsePeerAddress(candidate) : null;
        // IP literals only (a name is the user's business, and receivers refuse them); nothing
        // private to a peer on a public address, no loopback to a peer that is not on ours.
        // A zone (`%iface`) names one of our interfaces: meaningless to another device.
        if (!parsed || isIP(parsed.host) === 0 || parsed.host.includes('%')) continue;
        if ((toPublic && isPrivateAddress(parsed.host)) || (isLoopback(parsed.host) && !isLoopback(toHost))) continue;
        addresses.add(formatPeerAddress(parsed));
      }
      // Behind the same external address as `to`: its LAN addresses too (private ones included).
      if (toPublic && parsePeerAddress(peer.address)?.host === toHost) for (const address of this.lan.get(peer.deviceId) ?? []) addresses.add(address);
      if (addresses.size) entries.push({ device: peer.deviceId, addresses: [...addresses].slice(0, LIMITS.maxExchangedAddresses) });
    }
    const own = toPublic ? (this.options.lanAddresses?.() ?? []).slice(0, LIMITS.maxExchangedAddresses) : [];
    if (own.length && entries.length < LIMITS.maxExchangedPeers) entries.push({ device: this.options.deviceId, addresses: own });
    entries.sort((a, b) => (a.device < b.device ? -1 : 1));
    return { type: 'PeerExchange', folderId, listenPort: this.options.listenPort(), peers: entries };
  }

  /** A peer's PeerExchange (already validated, for a folder it shares with us). */
  receive(from: ConnectedPeer, message: PeerExchangeMessage): void {
    this.counters.received++;
    const hex = message.folderId.toString('hex');
    const fromHost = parsePeerAddress(from.address)?.host;
    if (!fromHost) return;
    if (message.listenPort > 0 && isIP(fromHost)) {
      if (!this.advertised.has(from.deviceId) && this.advertised.size >= MAX_ADVERTISED) {
        this.advertised.delete(this.advertised.keys().next().value!);
      }
      this.advertised.set(from.deviceId, formatPeerAddress({ host: fromHost, port: message.listenPort }));
    }
    for (const entry of message.peers) {
      if (entry.device === from.deviceId) {
        // The sender's own LAN addresses: kept for its NAT neighbours, never dialled by us.
        const lan = entry.addresses.filter((a) => isLanAddress(parsePeerAddress(a)?.host ?? ''));
        if (!this.lan.has(from.deviceId) && this.lan.size >= MAX_ADVERTISED) this.lan.delete(this.lan.keys().next().value!);
        this.lan.set(from.deviceId, lan.slice(0, LIMITS.maxExchangedAddresses));
        continue;
      }
      if (entry.device === this.options.deviceId) continue;
      let own: ReadonlySet<string> | undefined;
      for (const address of entry.addresses) {
        const parsed = parsePeerAddress(address);
        // A remote peer has no business pointing us at our own loopback, at "any address" (0.0.0.0,
        // [::]: a dial to it reaches this host), or at one of our own addresses at our sync port.
        // Nor at a zoned link-local address: the zone names one of the sender's interfaces.
        if (
          !parsed ||
          parsed.host.includes('%') ||
          isUnspecified(parsed.host) ||
          (isLoopback(parsed.host) && !isLoopback(fromHost)) ||
          (parsed.port === this.options.listenPort() && (own ??= (this.options.ownAddresses ?? localAddresses)()).has(parsed.host.toLowerCase()))
        ) {
          this.counters.addressesRefused++;
          continue;
        }
        this.counters.addressesLearned++;
        this.options.onAddress(hex, formatPeerAddress(parsed), entry.device);
      }
    }
  }
}
