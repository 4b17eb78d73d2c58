// The IPv6 mainline DHT (BEP 32) with the same library as the IPv4 one: bittorrent-dht speaks only
// IPv4 compact forms, so this socket shows it an IPv4 world. Each IPv6 address it meets stands
// for a stand-in address in 240.0.0.0/4 (reserved, never routed), the port kept; KRPC messages are
// rewritten on the way in and out:
//   in:  r.nodes6 (38-byte entries) → r.nodes (26-byte, stand-ins); r.nodes (IPv4 nodes, not for
//        this DHT) dropped; r.values' 18-byte peers → 6-byte stand-ins
//   out: r.nodes / r.values stand-ins → r.nodes6 / 18-byte values; queries ask want: ["n4", "n6"]
//        (the IPv4 nodes of the replies go to the IPv4 DHT: onNodes4)
// The table of stand-ins is bounded (least recently used goes): a node whose stand-in was dropped
// stops answering, and the library's routing table ages it out like any dead node.

import { EventEmitter } from 'node:events';
import type { RemoteInfo } from 'node:dgram';
import { isIP, type AddressInfo } from 'node:net';
import bencode from 'bencode';
import { ipBytes } from './bep42.js';
import type { DatagramSocket } from './dht-guard.js';

/** Stand-ins kept at once. */
export const MAX_STAND_INS = 4096;
/** Queries awaiting a reply, remembered (the oldest forgotten beyond). */
const MAX_PENDING = 4096;
/** Nodes and values taken from one reply (a node sends 8; more only churns the stand-ins). */
const MAX_NODES_PER_REPLY = 16;
const MAX_VALUES_PER_REPLY = 100;
const BASE = 0xf0000001; // 240.0.0.1

type Dict = Record<string, unknown>;
const isDict = (value: unknown): value is Dict => typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);

/** The IPv6 datagrams under the translation: an IPv6 socket of the DHT's own, or the sync port's shared one (IPv6 senders). */
export interface Datagrams6 {
  send(buf: Buffer, port: number, host: string): void;
  onMessage(handler: (buf: Buffer, from: { address: string; port: number }) => void): void;
  address(): { address: string; port: number };
  close(): void;
}

export class StandIns {
  /** IPv6 address → stand-in (as a 32-bit number); insertion order = recency. */
  private readonly byReal = new Map<string, number>();
  private readonly byFake = new Map<number, string>();
  private next = 0;

  constructor(private readonly max = MAX_STAND_INS) {}

  /** The stand-in IPv4 address for an IPv6 one (made, or refreshed, now). */
  fake(real: string): string {
    let n = this.byReal.get(real);
    if (n === undefined) {
      if (this.byReal.size >= this.max) {
        const [oldReal, oldFake] = this.byReal.entries().next().value!;
        this.byReal.delete(oldReal);
        this.byFake.delete(oldFake);
      }
      do n = BASE + (this.next++ % 0x0ffffffe);
      while (this.byFake.has(n));
      this.byFake.set(n, real);
    } else this.byReal.delete(real);
    this.byReal.set(real, n);
    return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
  }

  /** The IPv6 address a stand-in stands for, or undefined (not one, or forgotten). */
  real(fake: string): string | undefined {
    if (isIP(fake) !== 4) return undefined;
    const [a, b, c, d] = fake.split('.').map(Number) as [number, number, number, number];
    return this.byFake.get(((a << 24) | (b << 16) | (c << 8) | d) >>> 0);
  }

  get size(): number {
    return this.byReal.size;
  }
}

function v6Text(buf: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + i * 2).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

const v4Bytes = (ip: string): Buffer => Buffer.from(ip.split('.').map(Number));

/** The datagram socket bittorrent-dht drives for the IPv6 DHT (see the top of this file). */
export class Ipv6DhtSocket extends EventEmitter implements DatagramSocket {
  readonly standIns: StandIns;
  /** `address|port|t` of our queries: only their replies' nodes and values make stand-ins (a stranger's cannot churn the table). */
  private readonly pending = new Set<string>();
  /** BEP 32: the IPv4 `nodes` of replies to our queries (we ask want n4 and n6), for the IPv4 DHT. */
  onNodes4: ((nodes: Uint8Array) => void) | null = null;

  constructor(private readonly inner: Datagrams6, maxStandIns = MAX_STAND_INS) {
    super();
    this.standIns = new StandIns(maxStandIns);
    inner.onMessage((buf, from) => this.receive(buf, from));
  }

  private receive(buf: Buffer, from: { address: string; port: number }): void {
    const address = from.address.replace(/%.*$/, '');
    if (isIP(address) !== 6) return;
    let message: unknown;
    try {
      message = bencode.decode(buf);
    } catch {
      return; // the guard above would drop it too; nothing to translate
    }
    if (!isDict(message)) return;
    if (isDict(message.r)) {
      const key = `${address}|${from.port}|${message.t instanceof Uint8Array ? Buffer.from(message.t).toString('hex') : ''}`;
      const ours = this.pending.delete(key);
      message.r = ours ? this.inward(message.r) : { ...message.r, nodes: undefined, nodes6: undefined, values: undefined };
      for (const k of ['nodes', 'nodes6', 'values']) if ((message.r as Dict)[k] === undefined) delete (message.r as Dict)[k];
    }
    const packet = Buffer.from(bencode.encode(message));
    const rinfo: RemoteInfo = { address: this.standIns.fake(address), port: from.port, family: 'IPv4', size: packet.length };
    this.emit('message', packet, rinfo);
  }

  private inward(r: Dict): Dict {
    const out: Dict = { ...r };
    if (r.nodes instanceof Uint8Array && r.nodes.length > 0 && r.nodes.length % 26 === 0) this.onNodes4?.(r.nodes);
    delete out.nodes;
    delete out.nodes6;
    if (r.nodes6 instanceof Uint8Array) {
      const six = Buffer.from(r.nodes6);
      const entries: Buffer[] = [];
      for (let at = 0; at + 38 <= six.length && entries.length < MAX_NODES_PER_REPLY; at += 38) {
        const port = six.readUInt16BE(at + 36);
        if (port === 0) continue;
        entries.push(Buffer.concat([six.subarray(at, at + 20), v4Bytes(this.standIns.fake(v6Text(six, at + 20))), six.subarray(at + 36, at + 38)]));
      }
      out.nodes = Buffer.concat(entries);
    }
    if (Array.isArray(r.values)) {
      out.values = r.values
        .filter((v): v is Uint8Array => v instanceof Uint8Array && v.length === 18)
        .slice(0, MAX_VALUES_PER_REPLY)
        .map((v) => {
          const b = Buffer.from(v);
          return Buffer.concat([v4Bytes(this.standIns.fake(v6Text(b, 0))), b.subarray(16, 18)]);
        });
    }
    return out;
  }

  private outward(r: Dict): Dict {
    const out: Dict = { ...r };
    if (r.nodes instanceof Uint8Array) {
      delete out.nodes;
      const four = Buffer.from(r.nodes);
      const entries: Buffer[] = [];
      for (let at = 0; at + 26 <= four.length; at += 26) {
        const real = this.standIns.real(`${four[at + 20]}.${four[at + 21]}.${four[at + 22]}.${four[at + 23]}`);
        const bytes = real ? ipBytes(real) : null;
        if (bytes) entries.push(Buffer.concat([four.subarray(at, at + 20), bytes, four.subarray(at + 24, at + 26)]));
      }
      out.nodes6 = Buffer.concat(entries);
    }
    if (Array.isArray(r.values)) {
      out.values = r.values.flatMap((v: unknown) => {
        if (!(v instanceof Uint8Array) || v.length !== 6) return [];
        const real = this.standIns.real(`${v[0]}.${v[1]}.${v[2]}.${v[3]}`);
        const bytes = real ? ipBytes(real) : null;
        return bytes ? [Buffer.concat([bytes, Buffer.from(v.subarray(4, 6))])] : [];
      });
    }
    return out;
  }

  send(buf: Buffer, offset: number, length: number, port: number, host: string, callback: (err: Error | null) => void): void {
    const real = this.standIns.real(host) ?? (isIP(host) === 6 ? host : undefined);
    if (!real) {
      process.nextTick(() => callback(new Error(`no IPv6 address behind ${host}`)));
      return;
    }
    let message: unknown;
    try {
      message = bencode.decode(buf.subarray(offset, offset + length));
    } catch {
      message = undefined;
    }
    let packet = buf.subarray(offset, offset + length);
    if (isDict(message)) {
      if (isDict(message.r)) message.r = this.outward(message.r);
      // BEP 32: ask for IPv6 nodes (a node answering on IPv6 gives them anyway; libtorrent honours want).
      if (isDict(message.a) && (message.q instanceof Uint8Array) && ['find_node', 'get_peers'].includes(Buffer.from(message.q).toString())) {
        message.a = { ...message.a, want: [Buffer.from('n4'), Buffer.from('n6')] };
      }
      if (message.y instanceof Uint8Array && Buffer.from(message.y).toString() === 'q' && message.t instanceof Uint8Array) {
        if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.values().next().value!);
        this.pending.add(`${real}|${port}|${Buffer.from(message.t).toString('hex')}`);
      }
      packet = Buffer.from(bencode.encode(message));
    }
    this.inner.send(packet, port, real);
    process.nextTick(() => callback(null));
  }

  address(): AddressInfo {
    const { address, port } = this.inner.address();
    return { address, port, family: 'IPv4' };
  }

  close(): void {
    this.inner.close();
    process.nextTick(() => this.emit('close'));
  }
}
