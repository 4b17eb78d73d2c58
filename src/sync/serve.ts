// Answers a peer's block Request from the local file, checking the request against our record and the data against its hash.

import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { isFerryError } from '../errors.js';
import type { FolderIndex } from '../index/types.js';
import type { RequestMessage, ResponseError } from '../protocol/messages.js';
import type { Logger } from '../util/log.js';
import { DiskPaths } from './paths.js';

export type BlockAnswer = { data: Buffer } | { error: ResponseError };

/**
 * Reads the requested block if our current local record of the path has exactly that block (same
 * offset, size and hash); a file that changed on disk since it was indexed answers HASH_MISMATCH
 * (and gets rescanned). Never reads through a symlink.
 */
export async function answerRequest(
  request: RequestMessage,
  folder: { root: string; index: FolderIndex; logger: Logger; requestScan(path: string): void },
): Promise<BlockAnswer> {
  const local = folder.index.getLocal(request.path);
  if (!local || local.deleted || local.type !== 'file' || local.blockSize === 0) return { error: 'NO_SUCH_FILE' };
  const blockIndex = request.offset / local.blockSize;
  const expectedSize = Math.min(local.blockSize, local.size - request.offset);
  const expectedHash = Number.isInteger(blockIndex) ? local.blocks[blockIndex] : undefined;
  if (!expectedHash || request.size !== expectedSize || Buffer.compare(expectedHash, request.hash) !== 0) {
    return { error: 'NO_SUCH_FILE' };
  }
  let data: Buffer;
  try {
    const target = await new DiskPaths(folder.root).resolve(request.path);
    if (!target.stats?.isFile()) return { error: 'NO_SUCH_FILE' };
    const handle = await open(target.abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      data = Buffer.allocUnsafe(request.size);
      let done = 0;
      while (done < request.size) {
        const { bytesRead } = await handle.read(data, done, request.size - done, request.offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      if (done < request.size) data = data.subarray(0, done);
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (isFerryError(err, 'PATH_UNSAFE')) {
      folder.logger.warn('not serving a path through a symlink', { path: request.path });
      return { error: 'NO_SUCH_FILE' };
    }
    folder.logger.debug('cannot read a requested block', { path: request.path, err: err instanceof Error ? err : String(err) });
    return { error: 'NO_SUCH_FILE' };
  }
  if (data.length !== request.size || !createHash('sha256').update(data).digest().equals(request.hash)) {
    folder.logger.info('file changed since it was indexed; rescanning', { path: request.path });
    folder.requestScan(request.path);
    return { error: 'HASH_MISMATCH' };
  }
  return { data };
}
