// Worker thread body of the HashPool: hashes one file at a time and posts the block hashes back, packed.

import { parentPort } from 'node:worker_threads';
import { hashFile, hashSmallFileSync } from './hasher.js';

/** Main thread → worker. */
export type HashWorkerRequest = { id: number; path: string; blockSize: number } | { cancel: number };

/** Worker → main thread; `hashes` holds 32 bytes per block, back to back (transferred, not copied). */
export type HashWorkerReply =
  | {
      id: number;
      ok: true;
      size: number;
      mtimeMs: number;
      inode: number;
      mode: number;
      changedDuringHash: boolean;
      hashes: ArrayBuffer;
    }
  | { id: number; ok: false; code: string; message: string };

const port = parentPort;
if (!port) throw new Error('hash-worker.js must run as a worker thread');

const running = new Map<number, AbortController>();

async function run(id: number, path: string, blockSize: number): Promise<void> {
  const controller = new AbortController();
  running.set(id, controller);
  try {
    // Small files synchronously (this thread has nothing else to do); large ones streamed and abortable.
    const result = hashSmallFileSync(path, blockSize) ?? (await hashFile(path, blockSize, controller.signal));
    const packed = new Uint8Array(result.blocks.length * 32);
    result.blocks.forEach((block, i) => packed.set(block, i * 32));
    const reply: HashWorkerReply = {
      id,
      ok: true,
      size: result.size,
      mtimeMs: result.mtimeMs,
      inode: result.inode,
      mode: result.mode,
      changedDuringHash: result.changedDuringHash,
      hashes: packed.buffer,
    };
    port!.postMessage(reply, [packed.buffer]);
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? 'IO');
    const reply: HashWorkerReply = { id, ok: false, code, message: (err as Error).message };
    port!.postMessage(reply);
  } finally {
    running.delete(id);
  }
}

port.on('message', (request: HashWorkerRequest) => {
  if ('cancel' in request) running.get(request.cancel)?.abort();
  else void run(request.id, request.path, request.blockSize);
});
