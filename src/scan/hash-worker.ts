// Worker thread body of the HashPool: hashes the files of each request in turn and posts their block hashes back, packed, in one reply.

import { parentPort } from 'node:worker_threads';
import { hashFile, hashSmallFileSync, type HashRange } from './hasher.js';

/** Main thread → worker: files to hash (several small ones, or one), or a job to abort. */
export type HashWorkerRequest = { jobs: HashJob[] } | { cancel: number };

export interface HashJob {
  id: number;
  path: string;
  blockSize: number;
  range?: HashRange;
}

/** Worker → main thread: one reply per request, with an outcome per job. */
export interface HashWorkerReply {
  replies: HashJobReply[];
}

/** `hashes` holds 32 bytes per block, back to back (transferred, not copied). */
export type HashJobReply =
  | {
      id: number;
      ok: true;
      size: number;
      mtimeMs: number;
      inode: number;
      mode: number;
      changedDuringHash: boolean;
      hashes: ArrayBuffer;
      /** For a part of a file: the whole file's size. */
      fileSize?: number;
    }
  | { id: number; ok: false; code: string; message: string };

const port = parentPort;
if (!port) throw new Error('hash-worker.js must run as a worker thread');

const running = new Map<number, AbortController>();

async function run({ id, path, blockSize, range }: HashJob, transfers: ArrayBuffer[]): Promise<HashJobReply> {
  const controller = new AbortController();
  running.set(id, controller);
  try {
    // Small files synchronously (this thread has nothing else to do); large ones streamed and abortable.
    const result = (range ? undefined : hashSmallFileSync(path, blockSize)) ?? (await hashFile(path, blockSize, controller.signal, range));
    const packed = new Uint8Array(result.blocks.length * 32);
    result.blocks.forEach((block, i) => packed.set(block, i * 32));
    transfers.push(packed.buffer);
    return {
      id,
      ok: true,
      size: result.size,
      mtimeMs: result.mtimeMs,
      inode: result.inode,
      mode: result.mode,
      changedDuringHash: result.changedDuringHash,
      hashes: packed.buffer,
      ...(result.fileSize !== undefined ? { fileSize: result.fileSize } : {}),
    };
  } catch (err) {
    const code = String((err as { code?: unknown }).code ?? 'IO');
    return { id, ok: false, code, message: (err as Error).message };
  } finally {
    running.delete(id);
  }
}

async function runAll(jobs: HashJob[]): Promise<void> {
  const replies: HashJobReply[] = [];
  const transfers: ArrayBuffer[] = [];
  for (const job of jobs) replies.push(await run(job, transfers));
  port!.postMessage({ replies } satisfies HashWorkerReply, transfers);
}

port.on('message', (request: HashWorkerRequest) => {
  if ('cancel' in request) running.get(request.cancel)?.abort();
  else void runAll(request.jobs);
});
