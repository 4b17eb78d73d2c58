// Dials one address: TCP connect and TLS 1.3 handshake as a client, with a deadline and an AbortSignal.

import tls, { type TLSSocket } from 'node:tls';
import { FerryError, ioError } from '../errors.js';
import type { DeviceIdentity } from '../keys/index.js';
import { clientTlsOptions } from '../protocol/index.js';
import { formatAddress, type HostPort } from '../util/address.js';

export interface DialOptions {
  /** Covers TCP connect and the TLS handshake. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Resolves with a socket past its TLS handshake ('secureConnect'); the peer is not yet trusted
 * (in TLS 1.3 a server may still refuse our certificate): run establishPeer on it next.
 * Rejects with IO (unreachable), CLOSED, TIMEOUT or ABORTED, the socket destroyed.
 */
export function dialTls(target: HostPort, identity: Pick<DeviceIdentity, 'certPem' | 'keyPem'>, options: DialOptions): Promise<TLSSocket> {
  const where = formatAddress(target);
  if (options.signal?.aborted) return Promise.reject(new FerryError('ABORTED', `dial to ${where} aborted`));
  const socket = tls.connect({ ...clientTlsOptions(identity), host: target.host, port: target.port });
  socket.setNoDelay(true); // see the listener: Nagle's algorithm stalls request/response traffic
  return awaitSecureConnect(socket, { where, transport: '', timeoutMs: options.timeoutMs, signal: options.signal });
}

/**
 * Settles when a client TLS socket (over TCP, or over µTP: udp-transport.ts) is past its handshake:
 * rejects with IO, CLOSED, TIMEOUT or ABORTED, the socket destroyed. `transport` names a non-TCP
 * path in the messages (' over UDP').
 */
export function awaitSecureConnect(
  socket: TLSSocket,
  options: { where: string; transport: string; timeoutMs: number; signal?: AbortSignal },
): Promise<TLSSocket> {
  const { where, transport } = options;
  // Stays attached: an error between hand-off and PeerConnection's own handler must not be uncaught.
  socket.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    const settle = (err?: FerryError): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.off('secureConnect', onSecure);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(socket);
      }
    };
    const onError = (err: Error): void => settle(ioError(`cannot connect to ${where}${transport}`, err));
    const onClose = (): void => settle(new FerryError('CLOSED', `${where} closed the connection${transport} during the TLS handshake`));
    const onAbort = (): void => settle(new FerryError('ABORTED', `dial to ${where} aborted`));
    const onSecure = (): void => settle();
    const timer = setTimeout(
      () => settle(new FerryError('TIMEOUT', `no TLS connection to ${where}${transport} within ${Math.round(options.timeoutMs)} ms`)),
      Math.max(1, options.timeoutMs),
    );
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.once('secureConnect', onSecure);
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
