// The device ID a TLS peer's certificate shows, readable any number of times before establishPeer runs.

import type { TLSSocket } from 'node:tls';
import { deviceIdFromCertificate } from '../keys/index.js';

/**
 * Undefined when the peer sent no usable certificate (establishPeer then refuses it with the
 * reason). Reads getPeerCertificate().raw: on Node 20 a TLS client's getPeerX509Certificate()
 * returns the certificate only on its first call, and establishPeer's own check needs that call.
 */
export function certificateDeviceId(socket: TLSSocket): string | undefined {
  const raw = socket.getPeerCertificate()?.raw;
  if (!raw || raw.length === 0) return undefined;
  try {
    return deviceIdFromCertificate(raw);
  } catch {
    return undefined;
  }
}
