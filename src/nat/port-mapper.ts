// Keeps one port mapped on the home router: tries UPnP IGD then NAT-PMP, renews before the lease ends, removes on close.

import { formatAddress } from '../util/address.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import type { MapRequest, Mapping, MappingClient } from './types.js';

/** @default of PortMapperOptions.leaseS: an hour, renewed at half-time. */
export const DEFAULT_LEASE_S = 3600;
/** @default of PortMapperOptions.retryMs: how long to wait after every method failed. */
export const DEFAULT_RETRY_MS = 5 * 60_000;
/** @default of PortMapperOptions.unmapTimeoutMs: removal on close is best effort within this. */
export const DEFAULT_UNMAP_TIMEOUT_MS = 3000;
/** Permanent leases (lifetime 0) are refreshed this often anyway, to notice a router that forgot them. */
const PERMANENT_REFRESH_S = 30 * 60;

export type PortMapperState = 'idle' | 'mapping' | 'mapped' | 'failed' | 'closed';

export interface PortMapperOptions {
  /** Tried in this order; the first that maps the port wins. */
  clients: MappingClient[];
  request: Omit<MapRequest, 'leaseS' | 'externalPort'> & { leaseS?: number; externalPort?: number };
  retryMs?: number;
  unmapTimeoutMs?: number;
  logger?: Logger;
  /** Called when the mapping appears, changes (address or port) or goes. */
  onChange?: (mapping: Mapping | null, reason: string) => void;
}

export interface PortMapperReport {
  state: PortMapperState;
  method: string | null;
  /** EXTERNAL_ADDRESS:PORT while mapped. */
  external: string | null;
  internalPort: number;
  protocol: string;
  gateway: string | null;
  lifetimeS: number | null;
  /** When the lease is renewed next (ISO time). */
  renewAt: string | null;
  /** Why there is no mapping (each method's last error). */
  error: string | null;
}

function sameMapping(a: Mapping | null, b: Mapping | null): boolean {
  return a?.method === b?.method && a?.externalAddress === b?.externalAddress && a?.externalPort === b?.externalPort;
}

export class PortMapper extends Resource {
  private readonly log: Logger;
  private readonly request: MapRequest;
  private readonly abort = new AbortController();
  private mapping: Mapping | null = null;
  private client: MappingClient | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private state: PortMapperState = 'idle';
  private error: string | null = null;
  private renewAt: number | null = null;

  constructor(private readonly options: PortMapperOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    this.request = {
      ...options.request,
      leaseS: options.request.leaseS ?? DEFAULT_LEASE_S,
      externalPort: options.request.externalPort ?? options.request.internalPort,
    };
  }

  /** Starts mapping in the background: open() does not wait for the router. */
  protected async _open(): Promise<void> {
    this.run(() => this.establish());
  }

  /** Resolves when the first attempt (every method tried) has finished; for tests and reports. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  current(): Mapping | null {
    return this.mapping;
  }

  report(): PortMapperReport {
    const m = this.mapping;
    return {
      state: this.state,
      method: m?.method ?? null,
      external: m ? formatAddress({ host: m.externalAddress, port: m.externalPort }) : null,
      internalPort: this.request.internalPort,
      protocol: this.request.protocol,
      gateway: m?.gateway ?? null,
      lifetimeS: m?.lifetimeS ?? null,
      renewAt: this.renewAt === null ? null : new Date(this.renewAt).toISOString(),
      error: this.error,
    };
  }

  private run(step: () => Promise<void>): void {
    if (this.closed) return;
    const running = step()
      .catch((err: unknown) => this.log.error('port mapping step failed', { err: err as Error }))
      .finally(() => {
        if (this.running === running) this.running = null;
      });
    this.running = running;
  }

  private schedule(delayMs: number, step: () => Promise<void>): void {
    if (this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.run(step);
    }, delayMs);
    this.timer.unref?.();
  }

  private setMapping(mapping: Mapping | null, reason: string): void {
    const changed = !sameMapping(this.mapping, mapping);
    this.mapping = mapping;
    if (changed) this.options.onChange?.(mapping, reason);
  }

  private scheduleRenewal(mapping: Mapping): void {
    const lifetimeS = mapping.lifetimeS > 0 ? mapping.lifetimeS : PERMANENT_REFRESH_S * 2;
    // Half-time, as RFC 6886 suggests: room for a failed renewal and a fresh mapping before the end.
    const delayMs = Math.max(500, lifetimeS * 500);
    this.renewAt = Date.now() + delayMs;
    this.schedule(delayMs, () => this.renew());
  }

  /** Tries each method in turn; the first mapping wins. */
  private async establish(): Promise<void> {
    this.state = 'mapping';
    const errors: string[] = [];
    for (const client of this.options.clients) {
      if (this.closed) return;
      try {
        const mapping = await client.map(this.request, this.abort.signal);
        if (this.closed) {
          // close() is already past its removal step: take this one down here.
          await client.unmap(mapping, AbortSignal.timeout(this.options.unmapTimeoutMs ?? DEFAULT_UNMAP_TIMEOUT_MS)).catch(() => undefined);
          return;
        }
        this.client = client;
        this.state = 'mapped';
        this.error = null;
        this.log.info('port mapped', {
          method: mapping.method,
          external: formatAddress({ host: mapping.externalAddress, port: mapping.externalPort }),
          internal: formatAddress({ host: mapping.internalClient, port: mapping.internalPort }),
          protocol: mapping.protocol,
          lifetimeS: mapping.lifetimeS,
          gateway: mapping.gateway,
        });
        this.setMapping(mapping, mapping.method);
        this.scheduleRenewal(mapping);
        return;
      } catch (err) {
        if (this.closed) return;
        const text = err instanceof Error ? err.message : String(err);
        errors.push(`${client.method}: ${text}`);
        this.log.info('no port mapping by this method', { method: client.method, err: err as Error });
      }
    }
    this.state = 'failed';
    this.error = errors.join('; ') || 'no mapping method';
    this.renewAt = null;
    this.setMapping(null, 'no port mapping');
    const retryMs = this.options.retryMs ?? DEFAULT_RETRY_MS;
    this.log.info('no port mapping; will try again', { retryS: Math.round(retryMs / 1000) });
    this.schedule(retryMs, () => this.establish());
  }

  private async renew(): Promise<void> {
    const mapping = this.mapping;
    const client = this.client;
    if (!mapping || !client || this.closed) return;
    try {
      const renewed = await client.renew(mapping, this.abort.signal);
      if (this.closed) return;
      this.log.debug('port mapping renewed', {
        method: renewed.method,
        external: formatAddress({ host: renewed.externalAddress, port: renewed.externalPort }),
        lifetimeS: renewed.lifetimeS,
      });
      if (!sameMapping(mapping, renewed)) this.log.info('port mapping changed', { external: formatAddress({ host: renewed.externalAddress, port: renewed.externalPort }) });
      this.setMapping(renewed, renewed.method);
      this.scheduleRenewal(renewed);
    } catch (err) {
      if (this.closed) return;
      this.log.warn('port mapping renewal failed; mapping again', { method: mapping.method, err: err as Error });
      this.client = null;
      this.setMapping(null, 'renewal failed'); // listeners hear it went (setMapping clears it)
      await this.establish();
    }
  }

  protected async _close(): Promise<void> {
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort.abort();
    await this.running?.catch(() => undefined);
    const mapping = this.mapping;
    const client = this.client;
    this.mapping = null;
    this.client = null;
    this.renewAt = null;
    if (!mapping || !client) return;
    try {
      await client.unmap(mapping, AbortSignal.timeout(this.options.unmapTimeoutMs ?? DEFAULT_UNMAP_TIMEOUT_MS));
      this.log.info('port mapping removed', { method: mapping.method, external: formatAddress({ host: mapping.externalAddress, port: mapping.externalPort }) });
    } catch (err) {
      this.log.warn('could not remove the port mapping', { method: mapping.method, err: err as Error });
    }
  }
}
