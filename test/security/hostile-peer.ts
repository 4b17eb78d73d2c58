// Hostile-peer helpers for test/security: a keyless TLS client with a throwaway certificate, the daemon's RSS, sync addresses.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { loadOrCreateDeviceIdentity, type DeviceIdentity } from '../../src/keys/index.js';
import { clientTlsOptions } from '../../src/protocol/index.js';
import { parseAddress } from '../../src/util/address.js';
import type { DaemonProcess, StatusJson } from '../helpers/daemon.js';

/** A device identity that holds no folder key (a stranger). */
export function strangerIdentity(dir: string, name = 'stranger'): Promise<DeviceIdentity> {
  return loadOrCreateDeviceIdentity(join(dir, name), { name });
}

/** The daemon's peer listen address, HOST:PORT. */
export async function listenAddress(daemon: DaemonProcess): Promise<string> {
  const status = (await daemon.status()) as StatusJson & { listen: string };
  return status.listen;
}

/** TLS 1.3 with the stranger's certificate, as a peer would dial. `localAddress` picks a loopback source (127.0.0.2, …). */
export function dialTlsAs(identity: DeviceIdentity, address: string, localAddress?: string): Promise<TLSSocket> {
  const { host, port } = parseAddress(address);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...clientTlsOptions(identity), host, port, ...(localAddress ? { localAddress } : {}) });
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      // Read (and drop) what the daemon says, so its hang-up is seen.
      socket.resume();
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Resident memory of a process in bytes (Linux /proc). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** Resolves when the socket has closed (whoever closed it). */
export function closed(socket: { destroyed: boolean; once(event: 'close', listener: () => void): unknown }): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}
