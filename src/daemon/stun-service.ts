// The STUN service: asks the configured STUN servers, in order until one answers, which address
// our UDP datagrams come from, at start and then periodically, and adds it to the reachability.

import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { StunClient, dgramPort, type UdpEndpoint } from '../nat/index.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import type { Service, ServiceContext, ServiceFactory } from './services.js';
import { formatAddress, isLoopback, parseHostPort } from '../util/address.js';

/** How often the external address is asked for again (NAT mappings and addresses change). */
export const STUN_REFRESH_MS = 10 * 60_000;

interface StunReport {
  servers: string[];
  state: 'idle' | 'asking' | 'found' | 'failed' | 'off';
  external: string | null;
  server: string | null;
  atMs: number | null;
  error: string | null;
}

export class StunService extends Resource implements Service {
  readonly name = 'stun';
  private readonly log: Logger;
  private socket: Socket | null = null;
  private client: StunClient | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly lifetime = new AbortController();
  private running: Promise<void> | null = null;
  private readonly state: StunReport;

  constructor(private readonly context: ServiceContext, private readonly skipped: string | null) {
    super();
    this.log = context.logger.child('stun');
    this.state = { servers: context.settings.stunServers, state: skipped ? 'off' : 'idle', external: null, server: null, atMs: null, error: skipped };
  }

  protected async _open(): Promise<void> {
    if (this.skipped) return;
    // The sync port's shared UDP socket when UDP is on: the port learned is the one peers and
    // trackers need, the mapping the µTP transport uses. Else a socket of our own (any port).
    const shared = this.context.connections.udpSocket();
    if (shared) {
      this.client = new StunClient(shared);
    } else {
      const family = this.context.listen.host.includes(':') ? 'udp6' : 'udp4';
      const socket = createSocket(family);
      socket.on('error', (err) => this.log.debug('STUN socket error', { reason: err.message }));
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        const host = this.context.listen.host;
        socket.bind(0, host === '0.0.0.0' || host === '::' ? undefined : host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      this.socket = socket;
      this.client = new StunClient(dgramPort(socket));
    }
    this.refresh();
    this.timer = setInterval(() => this.refresh(), STUN_REFRESH_MS);
    this.timer.unref();
  }

  protected async _close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.lifetime.abort();
    await this.running?.catch(() => undefined);
    this.client?.close();
    const socket = this.socket;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  /** Resolves when the current round of asking is over (tests and reports). */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  report(): StunReport {
    return { ...this.state };
  }

  private refresh(): void {
    if (this.running || this.closed) return;
    this.running = this.ask().finally(() => (this.running = null));
  }

  private async ask(): Promise<void> {
    this.state.state = 'asking';
    const errors: string[] = [];
    for (const text of this.context.settings.stunServers) {
      if (this.lifetime.signal.aborted) return;
      try {
        const server = await this.resolve(text);
        const mapped = await this.client!.binding(server, this.lifetime.signal);
        const at = { host: mapped.address, port: mapped.port };
        Object.assign(this.state, { state: 'found', external: formatAddress(at), server: text, atMs: Date.now(), error: null });
        this.log.info('external address from STUN', { external: formatAddress(at), server: text });
        this.context.reachability.learn('stun', at, text);
        return;
      } catch (err) {
        errors.push(`${text}: ${(err as Error).message}`);
      }
    }
    if (this.lifetime.signal.aborted) return;
    Object.assign(this.state, { state: 'failed', error: errors.join('; ') || 'no STUN server configured' });
    this.log.info('no STUN server answered', { errors: errors.join('; ') });
  }

  private async resolve(text: string): Promise<UdpEndpoint> {
    const { host, port } = parseHostPort(text, 'STUN server');
    const family = this.context.listen.host.includes(':') ? 6 : 4;
    if (isIP(host)) return { address: host, port };
    const found = await lookup(host, { family });
    return { address: found.address, port };
  }
}

export const stunServiceFactory: ServiceFactory = (context) => {
  if (!context.settings.stun) return null;
  // A loopback listener has no outside address to learn (and tests must never ask public servers).
  const skipped = isLoopback(context.listen.host) ? `listening on ${context.listen.host} only` : null;
  return new StunService(context, skipped);
};
