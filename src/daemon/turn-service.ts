// The TURN service: one allocation on each TURN server the user gave (`--turn
// turn://USER:PASSWORD@HOST:PORT`, the `turnServers` setting), kept while the daemon runs. Each
// allocation carries µTP (and TLS, and the handshake) as a relay of the connection manager, shows
// its relayed address among the external ones (source 'turn'), and discovery announces that
// address to udp:// trackers through the allocation itself. Two devices behind any NATs that use
// the same server thus find and reach each other with no public Ferry peer: each lets the server's
// relay IP in, and dials the other's relayed address through its own allocation.
// The credentials stay here: reports and logs name the server as HOST:PORT only.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { TurnClient, parseTurnUrl, turnServerLabel, type TurnServer } from '../nat/index.js';
import { Backoff } from '../util/backoff.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import type { Service, ServiceContext, ServiceFactory } from './services.js';

/** Retry of a failed or lost allocation. */
export const TURN_RETRY = { initialMs: 5_000, maxMs: 5 * 60_000 };
/** How often a live allocation's health is looked at (a failed refresh means it is gone). */
const HEALTH_CHECK_MS = 15_000;

interface Entry {
  label: string;
  host: string;
  server: TurnServer;
  client: TurnClient | null;
  removeRelay: (() => Promise<void>) | null;
  state: 'idle' | 'allocating' | 'allocated' | 'failed';
  relayed: string | null;
  error: string | null;
  backoff: Backoff;
  timer: NodeJS.Timeout | null;
}

export class TurnService extends Resource implements Service {
  readonly name = 'turn';
  private readonly log: Logger;
  private readonly entries: Entry[];
  private health: NodeJS.Timeout | null = null;

  constructor(private readonly context: ServiceContext, servers: TurnServer[]) {
    super();
    this.log = context.logger.child('turn');
    this.entries = servers.map((server) => ({
      label: turnServerLabel(server),
      host: server.host,
      server,
      client: null,
      removeRelay: null,
      state: 'idle',
      relayed: null,
      error: null,
      backoff: new Backoff(TURN_RETRY),
      timer: null,
    }));
  }

  protected async _open(): Promise<void> {
    // In the background: an unreachable server must not hold up the daemon's start.
    for (const entry of this.entries) this.later(entry, 0);
    this.health = setInterval(() => this.checkHealth(), HEALTH_CHECK_MS);
    this.health.unref();
  }

  protected async _close(): Promise<void> {
    if (this.health) clearInterval(this.health);
    await Promise.allSettled(this.entries.map((entry) => this.release(entry)));
  }

  report(): unknown {
    return {
      servers: this.entries.map((entry) => ({
        server: entry.label,
        state: entry.state,
        relayed: entry.relayed,
        peers: entry.client?.peerCount ?? 0,
        error: entry.error,
      })),
    };
  }

  private later(entry: Entry, delayMs: number): void {
    if (this.closed) return;
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = null;
      void this.allocate(entry);
    }, delayMs);
    entry.timer.unref();
  }

  private async allocate(entry: Entry): Promise<void> {
    if (this.closed) return;
    entry.state = 'allocating';
    const { server } = entry;
    let client: TurnClient | null = null;
    try {
      const family = this.context.listen.host.includes(':') ? 6 : 4;
      const address = isIP(server.host) ? server.host : (await lookup(server.host, { family })).address;
      const listenHost = this.context.listen.host;
      const bindHost = listenHost === '0.0.0.0' || listenHost === '::' ? undefined : listenHost;
      client = new TurnClient({ server: { address, port: server.port }, username: server.username, password: server.password, bindHost, logger: this.log });
      entry.client = client;
      await client.open();
      const relayed = client.address();
      // Other allocations on this server send from its relay IP: let them in (permissions are per IP).
      await client.permit(relayed.address);
      if (this.closed) throw new Error('closing');
      entry.removeRelay = await this.context.connections.addRelay(`turn ${entry.label}`, client, `turn ${entry.host}`);
      entry.relayed = `${relayed.address}:${relayed.port}`;
      entry.state = 'allocated';
      entry.error = null;
      entry.backoff.reset();
      this.context.reachability.learn('turn', { host: relayed.address, port: relayed.port }, entry.label);
      this.log.info('relaying through TURN', { server: entry.label, relayed: entry.relayed });
    } catch (err) {
      await client?.close().catch(() => undefined);
      entry.client = null;
      if (this.closed) return;
      entry.state = 'failed';
      entry.error = (err as Error).message;
      const retryInMs = entry.backoff.next();
      this.log.info('no TURN allocation', { server: entry.label, reason: entry.error, retryInMs });
      this.later(entry, retryInMs);
    }
  }

  /** An allocation whose refresh failed is gone: drop it and allocate again. */
  private checkHealth(): void {
    for (const entry of this.entries) {
      if (entry.state !== 'allocated' || entry.client?.state === 'allocated') continue;
      entry.error = entry.client?.error ?? 'allocation lost';
      this.log.info('TURN allocation lost; allocating again', { server: entry.label, reason: entry.error });
      void this.release(entry).then(() => this.later(entry, 0));
    }
  }

  private async release(entry: Entry): Promise<void> {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    const { removeRelay, client, relayed } = entry;
    entry.removeRelay = null;
    entry.client = null;
    entry.relayed = null;
    entry.state = 'idle';
    if (relayed) {
      const at = client?.address();
      if (at) this.context.reachability.forget('turn', { host: at.address, port: at.port });
    }
    await removeRelay?.().catch(() => undefined);
    await client?.close().catch(() => undefined);
  }
}

export const turnServiceFactory: ServiceFactory = (context) => {
  const urls = context.settings.turnServers;
  if (!urls.length) return null;
  return new TurnService(context, urls.map((url) => parseTurnUrl(url)));
};
