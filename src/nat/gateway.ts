// The IPv4 default gateway from the kernel's routing table (/proc/net/route), for NAT-PMP.

import { open } from 'node:fs/promises';

const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;
const MAX_ROUTE_TABLE_BYTES = 256 * 1024;

/** Parses /proc/net/route text; returns the default route's gateway with the lowest metric, or null. */
export function parseDefaultGateway(table: string): string | null {
  let best: { gateway: string; metric: number } | null = null;
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const [, destination, gatewayHex, flagsHex, , , metricText, mask] = fields;
    const flags = parseInt(flagsHex!, 16);
    if (destination !== '00000000' || mask !== '00000000') continue;
    if (!(flags & RTF_UP) || !(flags & RTF_GATEWAY) || !/^[0-9A-Fa-f]{8}$/.test(gatewayHex!)) continue;
    const value = parseInt(gatewayHex!, 16);
    // The kernel prints the address in host order, which is little-endian on every machine Ferry targets.
    const gateway = [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24].join('.');
    const metric = Number(metricText);
    if (gateway === '0.0.0.0') continue;
    if (!best || metric < best.metric) best = { gateway, metric };
  }
  return best?.gateway ?? null;
}

/** The default gateway, or null when there is none (or no /proc, as on some NAS kernels' chroots). */
export async function defaultGateway(routeFile = '/proc/net/route'): Promise<string | null> {
  let handle;
  try {
    handle = await open(routeFile, 'r');
    const buffer = Buffer.alloc(MAX_ROUTE_TABLE_BYTES);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length);
      if (bytesRead === 0 || (length += bytesRead) >= buffer.length) break;
    }
    return parseDefaultGateway(buffer.subarray(0, length).toString('latin1'));
  } catch {
    return null;
  } finally {
    await handle?.close();
  }
}
