// BitTorrent mainline DHT (bittorrent-dht): announces and looks up each folder ID, bootstraps from
// the configured nodes and the routing table saved in the home, and re-announces while the table
// is still small, so a node that started alone joins as soon as others appear.

import { randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP, type AddressInfo } from 'node:net';
import type DHT from 'bittorrent-dht';
import type { DhtNode } from 'bittorrent-dht';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import type { HostPort } from '../util/address.js';
import { ExternalIpVote, nodeIdFor, parseCompactEndpoint, validNodeId } from './bep42.js';
import { Ipv6DhtSocket, type Datagrams6 } from './dht6.js';
import { GuardedSocket, type DatagramSocket } from './dht-guard.js';
import { isPrivateAddress } from './net-addresses.js';
import { formatPeerAddress } from './peer-address.js';
import type { AnnouncedFolder } from './trackers.js';
import { bindUdp, closeUdp } from './udp.js';

export const DHT_ANNOUNCE_INTERVAL_MS = 15 * 60_000;
export const DHT_SAVE_INTERVAL_MS = 10 * 60_000;
/** Below this many nodes the table is "still joining": each new node triggers a re-announce. */
export const DHT_SMALL_TABLE = 8;
export const DHT_SAVED_NODES = 200;
/** The node ID follows the external address (BEP 42) at most this often. */
export const DHT_REKEY_MIN_INTERVAL_MS = 10 * 60_000;
/** Nodes from the other family's DHT are taken (pinged) only while the routing table has fewer than this. */
export const DHT_JOIN_HELP_BELOW = 32;
/** While the other family's DHT has no node, this one asks its table for nodes of both families this often (BEP 32). */
export const DHT_OTHER_FAMILY_ASK_MS = 20_000;
/** While a folder has no connected peer, it is looked up this often (between the full announces). */
export const DHT_LONELY_LOOKUP_MS = 3 * 60_000;
/** Bounds on what the library keeps for others (peers per info-hash, lookup tables, BEP 44 values). */
const DHT_LIMITS = { maxPeers: 2000, maxTables: 100, maxValues: 100 };

export interface DhtState {
  nodeId: string;
  nodes: Array<{ host: string; port: number }>;
}

export interface DhtDiscoveryOptions {
  /**
   * 4: the mainline DHT of BEP 5; 6: the IPv6 DHT of BEP 32 (dht6.ts), on the shared socket's
   * IPv6 side or an IPv6 socket of its own. @default 4
   */
  family?: 4 | 6;
  /** Address and preferred port of the DHT's UDP socket (any free port when taken). */
  host: string;
  port: number;
  /**
   * The sync port's shared UDP socket, when UDP is on (transport/udp-socket.ts): the DHT then takes
   * its bencoded datagrams, so one NAT mapping serves the DHT and the transport. Else a socket of
   * the DHT's own on `port`.
   */
  shared?: () => SharedDatagrams | null;
  /** HOST:PORT of nodes to join through. */
  bootstrap: readonly string[];
  folders: () => readonly AnnouncedFolder[];
  announcePort: () => number;
  onPeers: (folderIdHex: string, addresses: string[]) => void;
  /** Responders of DHT queries agree on this device's external address (BEP 42 `ip`); told only when the DHT is on the shared socket. */
  onExternalAddress?: (at: HostPort) => void;
  /**
   * BEP 32: nodes of the other family met in replies (we ask `want: ["n4","n6"]`), for the other
   * family's DHT to join through (see addNodes).
   */
  onOtherFamilyNodes?: (nodes: Array<{ host: string; port: number }>) => void;
  /** How many nodes the other family's DHT has: while none, this one asks again (onOtherFamilyNodes) every DHT_OTHER_FAMILY_ASK_MS. */
  otherFamilyNodes?: () => number;
  /** Whether a folder has a connected peer; one without is looked up every lonelyLookupMs. */
  hasPeers?: (folderIdHex: string) => boolean;
  /** @default DHT_LONELY_LOOKUP_MS */
  lonelyLookupMs?: number;
  loadState?: () => DhtState | undefined;
  saveState?: (state: DhtState) => Promise<void>;
  intervalMs?: number;
  logger?: Logger;
}

/** What the DHT needs of the shared socket (transport/udp-socket.ts UdpSocket has it). */
export interface SharedDatagrams {
  readonly family: 'udp4' | 'udp6';
  /** Whether it reaches IPv6 peers (an IPv6 socket, or the IPv6 sibling of an IPv4 one). */
  readonly ipv6?: boolean;
  address(): { address: string; port: number };
  send(buf: Buffer, port: number, host: string): void;
  handle(classify: (buf: Buffer, from: { address: string; port: number }) => boolean, handler: (buf: Buffer, from: { address: string; port: number }) => void): () => void;
}

/** An IPv6 sender (not an IPv4-mapped one): the IPv6 DHT's, on a shared socket. */
const fromIpv6 = (from: { address: string }): boolean => from.address.includes(':') && !from.address.startsWith('::ffff:');

/** A KRPC message is a bencoded dictionary: its first byte is 'd' (no µTP, STUN or tracker datagram starts so). */
export const isKrpcDatagram = (buf: Buffer): boolean => buf.length > 0 && buf[0] === 0x64;

/** The shared socket as the dgram socket bittorrent-dht drives; closing it only stops taking the DHT's datagrams. */
class SharedDhtSocket extends EventEmitter implements DatagramSocket {
  private readonly release: () => void;

  constructor(private readonly shared: SharedDatagrams) {
    super();
    // This DHT is the IPv4 one (BEP 5): KRPC from IPv6 senders is the IPv6 DHT's (sharedDatagrams6).
    this.release = shared.handle((buf, from) => isKrpcDatagram(buf) && !fromIpv6(from), (buf, from) => {
      const address = from.address.startsWith('::ffff:') ? from.address.slice(7) : from.address;
      const rinfo: RemoteInfo = { address, port: from.port, family: 'IPv4', size: buf.length };
      this.emit('message', buf, rinfo);
    });
  }

  send(buf: Buffer, offset: number, length: number, port: number, host: string, callback: (err: Error | null) => void): void {
    this.shared.send(buf.subarray(offset, offset + length), port, host);
    process.nextTick(() => callback(null));
  }

  address(): AddressInfo {
    const { address, port } = this.shared.address();
    return { address, port, family: 'IPv4' };
  }

  close(): void {
    this.release();
    process.nextTick(() => this.emit('close'));
  }
}

interface FolderStatus {
  lastAnnounceMs?: number;
  peersFound: number;
  lastError?: string;
}

export class DhtDiscovery extends Resource {
  private readonly log: Logger;
  private dht: DHT | null = null;
  private socket: DatagramSocket | null = null;
  private guard: GuardedSocket | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private rejoinTimer: NodeJS.Timeout | null = null;
  private readonly status = new Map<string, FolderStatus>();
  private announcing = false;
  private again = false;
  /** BEP 42: votes of DHT responders on our external IPv4 address. */
  private readonly vote = new ExternalIpVote();
  private externalSeen: string | undefined;
  private rekeying = false;
  private lastRekeyMs: number | undefined;
  /** Replies from public addresses, and how many of them came with a node ID not valid for the address (BEP 42). */
  private readonly idChecks = { responders: 0, invalid: 0 };
  /** Nodes from the other DHT already pinged (addNodes). */
  private readonly helped = new Set<string>();
  /** Nodes from the other DHT handed over before this one started: it joins through them. */
  private readonly handedEarly: Array<{ host: string; port: number }> = [];
  readonly family: 4 | 6;
  /** The IPv6 DHT's translating socket (its stand-ins map addresses back). */
  private six: Ipv6DhtSocket | null = null;

  constructor(private readonly options: DhtDiscoveryOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    this.family = options.family ?? 4;
  }

  /** HOST:PORT bootstrap entries of this DHT's family, as the library's nodes (IPv6 ones through their stand-ins once the socket is open). */
  private bootstrapNodes(texts: readonly string[], saved: ReadonlyArray<{ host: string; port: number }>): DhtNode[] {
    const nodes = [...texts.map((text) => parseNode(text, this.family)), ...saved.filter((n) => (isIP(n.host) === 6) === (this.family === 6))];
    return nodes
      .filter((node): node is DhtNode => node !== null)
      .map((node) => (this.six && isIP(node.host) === 6 ? { host: this.six.standIns.fake(node.host), port: node.port } : node));
  }

  protected async _open(): Promise<void> {
    const saved = this.options.loadState?.();
    const nodeId = saved && /^[0-9a-f]{40}$/.test(saved.nodeId) ? Buffer.from(saved.nodeId, 'hex') : randomBytes(20);
    await this.start(nodeId, [...(saved?.nodes ?? []).slice(0, DHT_SAVED_NODES), ...this.handedEarly.splice(0)]);
    this.every(this.options.intervalMs ?? DHT_ANNOUNCE_INTERVAL_MS, () => this.announceAll());
    this.every(DHT_SAVE_INTERVAL_MS, () => void this.save());
    const otherFamilyNodes = this.options.otherFamilyNodes;
    if (otherFamilyNodes && this.options.onOtherFamilyNodes) this.every(DHT_OTHER_FAMILY_ASK_MS, () => this.askForOtherFamily(otherFamilyNodes()));
    if (this.options.hasPeers) this.every(this.options.lonelyLookupMs ?? DHT_LONELY_LOOKUP_MS, () => this.lookupLonely());
  }

  /** Opens the socket and the DHT node with `nodeId`, joining through the configured nodes and `known` (real addresses). */
  private async start(nodeId: Buffer, known: ReadonlyArray<{ host: string; port: number }>): Promise<void> {
    // Loaded when the DHT starts: a daemon run with the DHT off holds none of it (1.4 MiB of heap).
    const { default: DHT } = await import('bittorrent-dht');
    this.socket = await this.openSocket();
    const bootstrap = this.bootstrapNodes(this.options.bootstrap, known);
    this.guard = new GuardedSocket(this.socket, (from, reason) => this.log.debug('ignoring a DHT message', { from, reason }));
    this.guard.onReplyIp = (from, ip) => this.onReplyIp(from.address, ip);
    this.guard.onResponder = (from, id) => this.checkId(from.address, id);
    const other = this.options.onOtherFamilyNodes;
    if (other && this.family === 4) this.guard.onNodes6 = (buf) => other(compactNodes(buf, 6));
    if (other && this.six) this.six.onNodes4 = (buf) => other(compactNodes(buf, 4));
    const dht = new DHT({ nodeId, bootstrap, socket: this.guard, ...DHT_LIMITS });
    this.dht = dht;
    dht.on('warning', (err: Error) => this.log.debug('DHT warning', { reason: err.message }));
    dht.on('error', (err: Error) => this.log.warn('DHT error', { reason: err.message }));
    dht.on('peer', (peer: DhtNode, infoHash: Buffer) => this.onPeer(peer, infoHash));
    dht.on('node', () => this.onNode());
    dht.once('ready', () => {
      this.log.info('DHT ready', { nodes: dht.nodes.count() });
      this.announceAll();
    });
    dht.listen();
    this.log.info('DHT listening', { family: `ipv${this.family}`, port: this.socket.address().port, bootstrap: bootstrap.length, nodeId: nodeId.toString('hex') });
  }

  /**
   * A responder's BEP 42 `ip`: one vote on our external address. Once enough distinct responders
   * agree, the address is reported (one more source next to STUN and the handshake), and a node ID
   * not valid for it (BEP 42) is replaced by one that is: the node restarts with its routing table.
   */
  private onReplyIp(responder: string, ip: Uint8Array): void {
    const seen = parseCompactEndpoint(ip);
    if (!seen || isIP(seen.host) !== this.family || this.closed) return; // what this DHT's family is seen at
    const agreed = this.vote.add(responder, seen);
    if (!agreed) return;
    const text = formatPeerAddress(agreed);
    if (text !== this.externalSeen) {
      this.externalSeen = text;
      const shared = this.socket instanceof SharedDhtSocket;
      this.log.info('DHT responders agree on our external address', { address: text, syncPort: shared });
      // Its port is the sync port's mapping only when the DHT rides the sync port's socket.
      if (shared) this.options.onExternalAddress?.(agreed);
    }
    const dht = this.dht;
    if (!dht || this.rekeying || isPrivateAddress(agreed.host) || validNodeId(dht.nodeId, agreed.host)) return;
    // An address that flaps between two values (two uplinks) must not restart the node each time.
    if (this.lastRekeyMs !== undefined && Date.now() - this.lastRekeyMs < DHT_REKEY_MIN_INTERVAL_MS) return;
    this.lastRekeyMs = Date.now();
    this.rekeying = true;
    void this.rekey(nodeIdFor(agreed.host), agreed.host).finally(() => (this.rekeying = false));
  }

  /** BEP 42 bookkeeping of responders' node IDs (not enforced: most of the DHT does not follow it yet). */
  private checkId(address: string, id: Uint8Array): void {
    const real = this.six ? this.six.standIns.real(address) : address;
    if (!real || isPrivateAddress(real)) return;
    this.idChecks.responders++;
    if (!validNodeId(id, real)) this.idChecks.invalid++;
  }

  /** Restarts the node with `nodeId`, bootstrapping from the current routing table (and the configured nodes). */
  private async rekey(nodeId: Buffer, forIp: string): Promise<void> {
    const dht = this.dht;
    if (!dht || this.closed) return;
    const nodes = this.knownNodes(dht);
    this.log.info('DHT node ID follows the external address (BEP 42)', { address: forIp, from: dht.nodeId.toString('hex'), to: nodeId.toString('hex') });
    this.dht = null;
    await new Promise<void>((resolve) => dht.destroy(() => resolve()));
    if (this.closed) return;
    await this.start(nodeId, nodes);
    await this.save();
  }

  /** The shared socket when it is IPv4 (the DHT's node lists are), else one of our own; for the IPv6 DHT the IPv6 equivalents. */
  private async openSocket(): Promise<DatagramSocket> {
    const shared = this.options.shared?.();
    if (this.family === 6) {
      this.six = new Ipv6DhtSocket(shared && (shared.family === 'udp6' || shared.ipv6) ? sharedDatagrams6(shared) : await this.ownDatagrams6());
      return this.six;
    }
    if (shared && shared.family === 'udp4') return new SharedDhtSocket(shared);
    let socket = createSocket('udp4');
    try {
      await bindUdp(socket, this.options.port, this.options.host);
    } catch (err) {
      this.log.info('DHT port taken; using any free port', { port: this.options.port, reason: (err as Error).message });
      await closeUdp(socket);
      socket = createSocket('udp4');
      await bindUdp(socket, 0, this.options.host);
    }
    return socket;
  }

  /** An IPv6-only socket of the IPv6 DHT's own (the preferred port, else any). */
  private async ownDatagrams6(): Promise<Datagrams6> {
    const host = isIP(this.options.host) === 6 ? this.options.host : '::';
    let socket = createSocket({ type: 'udp6', ipv6Only: true });
    try {
      await bindUdp(socket, this.options.port, host);
    } catch (err) {
      await closeUdp(socket);
      this.log.info('IPv6 DHT port taken; using any free port', { port: this.options.port, reason: (err as Error).message });
      socket = createSocket({ type: 'udp6', ipv6Only: true });
      await bindUdp(socket, 0, host);
    }
    const bound = socket;
    bound.on('error', (err) => this.log.debug('IPv6 DHT socket error', { reason: err.message }));
    return {
      send: (buf, port, to) => bound.send(buf, port, to),
      onMessage: (handler) => bound.on('message', (buf, rinfo) => handler(buf, rinfo)),
      address: () => bound.address(),
      close: () => void closeUdp(bound),
    };
  }

  /** Looks up (without announcing) each folder that has no connected peer. */
  private lookupLonely(): void {
    const dht = this.dht;
    if (!dht || this.closed || this.announcing) return;
    for (const folder of this.options.folders()) {
      if (this.options.hasPeers?.(folder.folderIdHex) !== false || !this.status.has(folder.folderIdHex)) continue;
      dht.lookup(folder.folderId, (err) => {
        if (err) this.log.debug('DHT lookup failed', { folder: folder.folderIdHex.slice(0, 8), reason: err.message });
      });
    }
  }

  protected async _close(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    if (this.rejoinTimer) clearTimeout(this.rejoinTimer);
    await this.save();
    const dht = this.dht;
    if (dht) await new Promise<void>((resolve) => dht.destroy(() => resolve()));
    this.dht = null;
  }

  /** Nodes in the routing table (0 before it starts). */
  get nodeCount(): number {
    return this.dht?.nodes.count() ?? 0;
  }

  /** The UDP port the DHT is on. */
  get port(): number {
    return this.socket?.address().port ?? 0;
  }

  /**
   * Nodes of this DHT's family heard of through the other DHT (BEP 32 `want`): while the routing
   * table is small each new one is pinged (and joins the table when it answers); bounded.
   */
  addNodes(nodes: ReadonlyArray<{ host: string; port: number }>): void {
    const dht = this.dht;
    if (this.closed) return;
    if (!dht) {
      // Not started yet (the other family's DHT opened first): join through them when it starts.
      for (const node of nodes) if (isIP(node.host) === this.family && this.handedEarly.length < DHT_SAVED_NODES) this.handedEarly.push(node);
      return;
    }
    if (dht.nodes.count() >= DHT_JOIN_HELP_BELOW) return;
    for (const node of nodes.slice(0, 8)) {
      const key = `${node.host}|${node.port}`;
      // While the table is still empty, a node pinged before is pinged again (that ping may have been lost).
      if (isIP(node.host) !== this.family || (this.helped.has(key) && dht.nodes.count() > 0)) continue;
      if (this.helped.size >= 1024) this.helped.clear();
      this.helped.add(key);
      dht.addNode({ host: this.six ? this.six.standIns.fake(node.host) : node.host, port: node.port });
    }
  }

  /**
   * The other family's DHT is still empty (its hand-over was missed, or nobody answered it): a
   * lookup of our own ID asks the nearest nodes again, with `want n4 n6`, and their replies carry
   * the other family's nodes to onOtherFamilyNodes.
   */
  private askForOtherFamily(otherCount: number): void {
    const dht = this.dht;
    if (!dht || this.closed || otherCount > 0 || dht.nodes.count() === 0) return;
    dht.lookup(dht.nodeId, (err) => {
      if (err) this.log.debug('DHT lookup for the other family failed', { reason: err.message });
    });
  }

  /** Folders changed, or the announced port did: announce again. */
  sync(): void {
    this.announceAll();
  }

  report(): unknown {
    return {
      family: `ipv${this.family}`,
      port: this.opened ? this.port : null,
      nodeId: this.dht?.nodeId.toString('hex') ?? null,
      nodes: this.nodeCount,
      ...(this.externalSeen ? { externalAddress: this.externalSeen } : {}),
      nodeIdValid: this.externalSeen ? validNodeId(this.dht?.nodeId ?? Buffer.alloc(0), this.externalSeen.replace(/^\[?(.*?)\]?:\d+$/, '$1')) : null,
      bep42: { ...this.idChecks },
      guard: this.guard?.stats ?? null,
      folders: Object.fromEntries(this.status),
    };
  }

  private every(ms: number, run: () => void): void {
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.add(timer);
  }

  private onNode(): void {
    if (!this.dht || this.dht.nodes.count() > DHT_SMALL_TABLE || this.rejoinTimer) return;
    this.rejoinTimer = setTimeout(() => {
      this.rejoinTimer = null;
      this.announceAll();
    }, 1_000);
    this.rejoinTimer.unref();
  }

  private onPeer(peer: DhtNode, infoHash: Buffer): void {
    const hex = Buffer.from(infoHash).toString('hex');
    const status = this.status.get(hex);
    if (!status || !(peer.port > 0)) return;
    const host = this.six ? this.six.standIns.real(peer.host) : peer.host;
    if (!host) return;
    status.peersFound++;
    this.options.onPeers(hex, [formatPeerAddress({ host, port: peer.port })]);
  }

  /** Looks up, then announces, every folder (coalesced with a round in progress). */
  private announceAll(): void {
    const dht = this.dht;
    if (!dht || this.closed) return;
    if (this.announcing) {
      this.again = true;
      return;
    }
    this.announcing = true;
    const folders = this.options.folders();
    for (const hex of this.status.keys()) if (!folders.some((f) => f.folderIdHex === hex)) this.status.delete(hex);
    const rounds = folders.map((folder) => {
      const status = this.status.get(folder.folderIdHex) ?? { peersFound: 0 };
      this.status.set(folder.folderIdHex, status);
      return new Promise<void>((resolve) => {
        dht.lookup(folder.folderId, () => {
          if (!this.dht) return resolve();
          dht.announce(folder.folderId, this.options.announcePort(), (err) => {
            status.lastAnnounceMs = Date.now();
            if (err) status.lastError = err.message;
            else delete status.lastError;
            this.log.debug('DHT announce', { folder: folder.folderIdHex.slice(0, 8), nodes: dht.nodes.count(), error: err?.message });
            resolve();
          });
        });
      });
    });
    void Promise.all(rounds).finally(() => {
      this.announcing = false;
      if (this.again) {
        this.again = false;
        this.announceAll();
      }
    });
  }

  /** The routing table's nodes at their real addresses (the IPv6 DHT's stand-ins mapped back). */
  private knownNodes(dht: DHT): Array<{ host: string; port: number }> {
    return dht
      .toJSON()
      .nodes.slice(0, DHT_SAVED_NODES)
      .flatMap(({ host, port }) => {
        const real = this.six ? this.six.standIns.real(host) : host;
        return real ? [{ host: real, port }] : [];
      });
  }

  private async save(): Promise<void> {
    if (!this.dht || !this.options.saveState) return;
    const nodes = this.knownNodes(this.dht);
    try {
      await this.options.saveState({ nodeId: this.dht.nodeId.toString('hex'), nodes });
    } catch (err) {
      this.log.warn('cannot save the DHT routing table', { err: err as Error });
    }
  }
}

/** HOST:PORT (IPv4 or a name) for the IPv4 DHT, [IPv6]:PORT for the IPv6 one, as a DHT node; null otherwise. */
export function parseNode(text: string, family: 4 | 6 = 4): DhtNode | null {
  const match = family === 6 ? /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text.trim()) : /^([^\s:[\]]+):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : 0;
  if (!match || !(port > 0 && port < 65536) || (family === 6 && isIP(match[1]!) !== 6)) return null;
  return { host: family === 6 ? match[1]!.toLowerCase() : match[1]!, port };
}

/** The nodes of a compact node list (26-byte IPv4 or 38-byte IPv6 entries: ID, address, port); port-0 entries skipped. */
export function compactNodes(bytes: Uint8Array, family: 4 | 6): Array<{ host: string; port: number }> {
  const size = family === 4 ? 26 : 38;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Array<{ host: string; port: number }> = [];
  for (let at = 0; at + size <= buf.length && out.length < 16; at += size) {
    const endpoint = parseCompactEndpoint(buf.subarray(at + 20, at + size));
    if (endpoint) out.push(endpoint);
  }
  return out;
}

/** The shared socket's IPv6 side as the IPv6 DHT's datagrams (IPv4 senders are the IPv4 DHT's). */
function sharedDatagrams6(shared: SharedDatagrams): Datagrams6 {
  let release: (() => void) | null = null;
  return {
    send: (buf, port, host) => shared.send(buf, port, host),
    onMessage: (handler) => {
      release = shared.handle((buf, from) => isKrpcDatagram(buf) && fromIpv6(from), handler);
    },
    address: () => shared.address(),
    close: () => release?.(),
  };
}
