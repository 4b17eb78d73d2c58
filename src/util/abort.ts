// AbortSignal helpers: sleep that honours a signal, and a uniform ABORTED error.

import { FerryError } from '../errors.js';

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new FerryError('ABORTED', 'operation aborted', { cause: signal.reason });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new FerryError('ABORTED', 'operation aborted'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new FerryError('ABORTED', 'operation aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
