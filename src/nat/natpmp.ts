// NAT-PMP (RFC 6886): external address and port mappings from the default gateway, with retries and checks.

import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';
import { FerryError } from '../errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { defaultGateway } from './gateway.js';
import type { MapRequest, Mapping, MappingClient, MappingProtocol } from './types.js';

export const NATPMP_PORT = 5351;
const OP_EXTERNAL_ADDRESS = 0;
const OP_MAP_UDP = 1;
const OP_MAP_TCP = 2;
/** RFC 6886 §3.1: first retry after 250 ms, doubling. */
const FIRST_RETRY_MS = 250;
/** Log lines about ignored replies per request; the rest are only counted. */
const MAX_IGNORED_LOG_LINES = 5;

const RESULT_TEXT: Record<number, string> = {
  1: 'unsupported version',
  2: 'not authorized or refused',
  3: 'network failure',
  4: 'out of resources',
  5: 'unsupported opcode',
};

export interface NatPmpOptions {
  /** The router; default: the default gateway from the routing table. */
  gateway?: string;
  /** @default NATPMP_PORT */
  port?: number;
  /** Deadline of one request, retries included (the RFC's full 64 s schedule is too slow for a start-up). @default 2000 */
  timeoutMs?: number;
  /** Where the routing table is read. @default '/proc/net/route' */
  routeFile?: string;
  logger?: Logger;
}

export interface NatPmpMapResult {
  internalPort: number;
  externalPort: number;
  lifetimeS: number;
  epoch: number;
}

function opcodeFor(protocol: MappingProtocol): number {
  return protocol === 'TCP' ? OP_MAP_TCP : OP_MAP_UDP;
}

export class NatPmpClient implements MappingClient {
  readonly method = 'natpmp';
  private readonly log: Logger;
  private readonly port: number;
  private readonly timeoutMs: number;
  /** The lifetime each mapping was asked for (the router may grant less; renewals ask again). */
  private readonly requestedLeaseS = new WeakMap<Mapping, number>();

  constructor(private readonly options: NatPmpOptions = {}) {
    this.log = options.logger ?? silentLogger;
    this.port = options.port ?? NATPMP_PORT;
    this.timeoutMs = options.timeoutMs ?? 2000;
  }

  private async gateway(): Promise<string> {
    const gateway = this.options.gateway ?? (await defaultGateway(this.options.routeFile));
    if (!gateway || !isIPv4(gateway)) throw new FerryError('TIMEOUT', 'no IPv4 default gateway to ask by NAT-PMP');
    return gateway;
  }

  /** Sends `request` until a well-formed reply for `opcode` arrives; returns it (result code checked). */
  private request(
    gateway: string,
    request: Buffer,
    replyLength: number,
    bindAddress?: string,
    signal?: AbortSignal,
  ): Promise<{ reply: Buffer; localAddress: string }> {
    const opcode = request[1]!;
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket('udp4');
      const timers: NodeJS.Timeout[] = [];
      let ignored = 0;
      let done = false;
      let localAddress = '';
      const finish = (err: Error | null, reply?: Buffer): void => {
        if (done) return;
        done = true;
        for (const timer of timers) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (ignored > MAX_IGNORED_LOG_LINES) this.log.warn('NAT-PMP replies ignored', { count: ignored });
        try {
          socket.close();
        } catch {
          // already closed
        }
        if (err) reject(err);
        else resolve({ reply: reply!, localAddress });
      };
      const onAbort = (): void => finish(new FerryError('ABORTED', 'operation aborted'));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      const ignore = (from: string, reason: string): void => {
        if (++ignored <= MAX_IGNORED_LOG_LINES) this.log.warn('ignoring NAT-PMP reply', { from, reason });
      };

      timers.push(setTimeout(() => finish(new FerryError('TIMEOUT', `no NAT-PMP answer from ${gateway} in ${this.timeoutMs} ms`)), this.timeoutMs));
      socket.on('error', (err) => finish(new FerryError('IO', `NAT-PMP to ${gateway}: ${err.message}`, { cause: err })));
      socket.on('message', (reply, rinfo) => {
        const from = `${rinfo.address}:${rinfo.port}`;
        if (rinfo.address !== gateway || rinfo.port !== this.port) return ignore(from, 'not from the gateway');
        if (reply.length < 4) return ignore(from, `${reply.length}-byte reply`);
        if (reply[0] !== 0) return ignore(from, `version ${reply[0]}`);
        if (reply[1] !== 128 + opcode) return ignore(from, `opcode ${reply[1]} for a request with opcode ${opcode}`);
        const result = reply.readUInt16BE(2);
        if (result !== 0) {
          finish(new FerryError('REQUEST_FAILED', `NAT-PMP: ${gateway} answered result ${result} (${RESULT_TEXT[result] ?? 'unknown'})`));
          return;
        }
        if (reply.length < replyLength) return ignore(from, `${reply.length}-byte reply, expected ${replyLength}`);
        finish(null, reply.subarray(0, replyLength));
      });
      socket.bind({ port: 0, address: bindAddress }, () => {
        // Connected: the kernel picks (and reports) the local address toward the gateway.
        socket.connect(this.port, gateway, () => {
          if (done) return;
          try {
            localAddress = socket.address().address;
          } catch {
            // closed meanwhile
          }
          let delay = FIRST_RETRY_MS;
          let at = 0;
          const send = (): void => {
            if (done) return;
            socket.send(request, (err) => {
              if (err) finish(new FerryError('IO', `NAT-PMP to ${gateway}: ${err.message}`, { cause: err }));
            });
          };
          send();
          while ((at += delay) < this.timeoutMs) {
            timers.push(setTimeout(send, at));
            delay *= 2;
          }
        });
      });
    });
  }

  private bindAddress(host?: string): string | undefined {
    return host && isIPv4(host) && host !== '0.0.0.0' ? host : undefined;
  }

  async externalAddress(signal?: AbortSignal, bindAddress?: string): Promise<{ address: string; epoch: number; localAddress: string }> {
    const gateway = await this.gateway();
    const { reply, localAddress } = await this.request(gateway, Buffer.from([0, OP_EXTERNAL_ADDRESS]), 12, bindAddress, signal);
    return { address: [...reply.subarray(8, 12)].join('.'), epoch: reply.readUInt32BE(4), localAddress };
  }

  /** One mapping request (lifetimeS 0 with externalPort 0 removes it). */
  async requestMapping(
    m: { protocol: MappingProtocol; internalPort: number; externalPort: number; lifetimeS: number },
    signal?: AbortSignal,
    bindAddress?: string,
  ): Promise<NatPmpMapResult> {
    const gateway = await this.gateway();
    const request = Buffer.alloc(12);
    request[1] = opcodeFor(m.protocol);
    request.writeUInt16BE(m.internalPort, 4);
    request.writeUInt16BE(m.externalPort, 6);
    request.writeUInt32BE(m.lifetimeS, 8);
    const { reply } = await this.request(gateway, request, 16, bindAddress, signal);
    const result = {
      epoch: reply.readUInt32BE(4),
      internalPort: reply.readUInt16BE(8),
      externalPort: reply.readUInt16BE(10),
      lifetimeS: reply.readUInt32BE(12),
    };
    if (result.internalPort !== m.internalPort) {
      throw new FerryError('PROTOCOL', `NAT-PMP: reply for internal port ${result.internalPort}, asked for ${m.internalPort}`);
    }
    if (m.lifetimeS > 0 && (result.externalPort === 0 || result.lifetimeS === 0)) {
      throw new FerryError('PROTOCOL', 'NAT-PMP: mapping reply without a port or a lifetime');
    }
    return result;
  }

  async map(request: MapRequest, signal?: AbortSignal): Promise<Mapping> {
    const gateway = await this.gateway();
    const bind = this.bindAddress(request.internalHost);
    const { address, localAddress } = await this.externalAddress(signal, bind);
    if (address === '0.0.0.0') throw new FerryError('REQUEST_FAILED', `NAT-PMP: ${gateway} has no external address yet`);
    const result = await this.requestMapping({ ...request, lifetimeS: request.leaseS }, signal, bind);
    const mapping: Mapping = {
      method: 'natpmp',
      protocol: request.protocol,
      internalPort: request.internalPort,
      internalClient: bind ?? localAddress,
      externalAddress: address,
      externalPort: result.externalPort,
      lifetimeS: result.lifetimeS,
      gateway,
    };
    this.requestedLeaseS.set(mapping, request.leaseS);
    return mapping;
  }

  async renew(mapping: Mapping, signal?: AbortSignal): Promise<Mapping> {
    const bind = this.bindAddress(mapping.internalClient);
    const { address } = await this.externalAddress(signal, bind);
    const leaseS = this.requestedLeaseS.get(mapping) ?? mapping.lifetimeS;
    const result = await this.requestMapping(
      { protocol: mapping.protocol, internalPort: mapping.internalPort, externalPort: mapping.externalPort, lifetimeS: leaseS },
      signal,
      bind,
    );
    const renewed: Mapping = { ...mapping, externalAddress: address, externalPort: result.externalPort, lifetimeS: result.lifetimeS };
    this.requestedLeaseS.set(renewed, leaseS);
    return renewed;
  }

  async unmap(mapping: Mapping, signal?: AbortSignal): Promise<void> {
    await this.requestMapping(
      { protocol: mapping.protocol, internalPort: mapping.internalPort, externalPort: 0, lifetimeS: 0 },
      signal,
      this.bindAddress(mapping.internalClient),
    );
  }
}
