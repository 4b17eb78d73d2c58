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
  /** Post the block hashes as they become known (HashWorkerProgress), for a large file streamed to peers. */
  progress?: boolean;
}

/** Worker → main thread: one reply per request, with an outcome per job. */
export interface HashWorkerReply {
  replies: HashJobReply[];
}

/** Worker → main thread, while a job with `progress` runs: blocks `first`… of its part (32 bytes each, transferred). */
export interface HashWorkerProgress {
  progress: { id: number; first: number; hashes: ArrayBuffer };
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

function pack(blocks: Buffer[]): Uint8Array<ArrayBuffer> {
  const packed = new Uint8Array(blocks.length * 32);
  blocks.forEach((block, i) => packed.set(block, i * 32));
  return packed;
}

async function run({ id, path, blockSize, range, progress }: HashJob, transfers: ArrayBuffer[]): Promise<HashJobReply> {
  const controller = new AbortController();
  running.set(id, controller);
  const onBlocks = progress
    ? (first: number, blocks: Buffer[]): void => {
        const hashes = pack(blocks).buffer;
        port!.postMessage({ progress: { id, first, hashes } } satisfies HashWorkerProgress, [hashes]);
      }
    : undefined;
  try {
    // Small files synchronously (this thread has nothing else to do); large ones streamed and abortable.
    const result =
      (range || progress ? undefined : hashSmallFileSync(path, blockSize)) ?? (await hashFile(path, blockSize, controller.signal, range, onBlocks));
    const packed = pack(result.blocks);
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
