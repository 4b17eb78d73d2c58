// Small promise helpers over node:dgram (bind, send, close) that never throw past their caller.

import type { Socket } from 'node:dgram';

export function bindUdp(socket: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind({ port, address }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

/** Sends one datagram; resolves with the error instead of rejecting. */
export function sendUdp(socket: Socket, packet: Buffer, port: number, host: string): Promise<Error | null> {
  return new Promise((resolve) => {
    try {
      socket.send(packet, port, host, (err) => resolve(err ?? null));
    } catch (err) {
      resolve(err as Error);
    }
  });
}

export function closeUdp(socket: Socket | null): Promise<void> {
  return new Promise((resolve) => {
    if (!socket) return resolve();
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
