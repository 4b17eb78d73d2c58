// 48-bit digests of paths: sets of many paths in little memory, where a rare collision is harmless.

import { createHash } from 'node:crypto';

export function pathDigest(path: string): number {
  return createHash('sha1').update(path).digest().readUIntBE(0, 6);
}
