// The web listener's Host header check (against DNS rebinding) and the loopback test for first-start setup.

import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { localAddresses } from '../discovery/index.js';
import { isLoopback } from '../util/address.js';

/** A name the page may be reached by: loopback, this machine's addresses and names, the bound address, `webHosts`. */
export interface HostCheckOptions {
  /** The host the web listener is bound to (0.0.0.0 and :: add nothing beyond the interface addresses). */
  boundHost?: () => string | undefined;
  /** Extra names or addresses the owner reaches the page by (setting `webHosts`, e.g. a reverse proxy's name). */
  extraHosts?: () => readonly string[];
  /** This machine's interface addresses (default: read from the OS on each check). */
  interfaceAddresses?: () => Set<string>;
  machineName?: string;
}

/** The host part of a Host header, lowercased, without port, brackets or a trailing dot; undefined if malformed. */
export function hostOfHeader(header: string): string | undefined {
  const text = header.trim().toLowerCase();
  const match = /^(?:\[([0-9a-f:.]+)\]|([^\s:[\]/@]+))(?::(\d{1,5}))?$/.exec(text);
  if (!match) return undefined;
  if (match[1] !== undefined) return isIP(match[1]) === 6 ? match[1] : undefined;
  return match[2]!.replace(/\.$/, '');
}

export class HostCheck {
  private readonly machine: string;

  constructor(private readonly options: HostCheckOptions = {}) {
    this.machine = (options.machineName ?? hostname()).toLowerCase();
  }

  /** True when a page asked for by this Host header may be served; a missing header (no browser omits it) passes. */
  allows(header: string | undefined): boolean {
    if (header === undefined || header === '') return true;
    const host = hostOfHeader(header);
    if (host === undefined) return false;
    if (host === 'localhost' || host.endsWith('.localhost') || isLoopback(host)) return true;
    if (host === this.machine || host === `${this.machine}.local`) return true;
    const bound = this.options.boundHost?.()?.toLowerCase();
    if (bound && host === bound) return true;
    if (isIP(host) !== 0) {
      const own = this.options.interfaceAddresses?.() ?? localAddresses();
      if (own.has(host) || own.has(host.replace(/^::ffff:/, ''))) return true;
    }
    for (const extra of this.options.extraHosts?.() ?? []) {
      const allowed = hostOfHeader(extra) ?? extra.toLowerCase();
      if (host === allowed) return true;
    }
    return false;
  }
}
