// Security test helpers: a source address that is not loopback, to play a browser elsewhere on the LAN.

import { networkInterfaces } from 'node:os';
import { underCi } from '../helpers/needs.js';

/** A non-loopback IPv4 address of this machine (a connection from it is not "on this machine" for the web admin's loopback rule). */
export function lanAddress(): string | undefined {
  for (const infos of Object.values(networkInterfaces())) {
    for (const info of infos ?? []) {
      if (info.family === 'IPv4' && !info.internal && !info.address.startsWith('169.254.')) return info.address;
    }
  }
  return undefined;
}

/** Skip reason when the machine has no LAN address; under CI a missing address is a failure, not a skip. */
export function lanSkip(): string | false {
  if (lanAddress()) return false;
  if (underCi()) throw new Error('CI: this machine has no non-loopback IPv4 address to test from');
  return 'no non-loopback IPv4 address on this machine';
}
