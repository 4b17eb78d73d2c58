// Block size by file size: powers of two from 128 KiB to 16 MiB so a file has at most ~4000 blocks.

export const MIN_BLOCK_SIZE = 128 * 1024;
export const MAX_BLOCK_SIZE = 16 * 1024 * 1024;
/**
 * Target ceiling on blocks per file; exceeded only by files larger than MAX_BLOCK_SIZE × this.
 * Twice Syncthing's 2000: a 1 GiB file gets 256 KiB blocks, so a 1 MiB edit costs about 1 MiB on the
 * wire rather than two 1 MiB blocks, for a 128 KiB longer record and a few more requests.
 */
export const MAX_BLOCKS_PER_FILE = 4096;

/** The smallest power of two in [128 KiB, 16 MiB] that keeps the file within MAX_BLOCKS_PER_FILE blocks. */
export function blockSizeFor(fileSize: number): number {
  let size = MIN_BLOCK_SIZE;
  while (size < MAX_BLOCK_SIZE && Math.ceil(fileSize / size) > MAX_BLOCKS_PER_FILE) size *= 2;
  return size;
}
