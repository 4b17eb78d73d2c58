// The machine's limits in the same run: `cp -r` of each dataset (cold cache, synced), OpenSSL's SHA-256 and AES-256-GCM speed.

import { rm } from 'node:fs/promises';
import { run, seconds, settlePageCache } from './lib.js';

export interface CryptoLimits {
  /** MiB/s of one thread, from `openssl speed -evp`. */
  sha256MiBps: number;
  aes256gcmMiBps: number;
}

async function opensslSpeed(algorithm: string, bytes: number): Promise<number> {
  const { stdout } = await run('openssl', ['speed', '-evp', algorithm, '-bytes', String(bytes), '-seconds', '2']);
  // Last line: "<name>   <rate>k" in 1000s of bytes per second.
  const match = /([\d.]+)k\s*$/.exec(stdout.trim());
  if (!match) throw new Error(`cannot read openssl speed output for ${algorithm}: ${stdout}`);
  return (Number(match[1]) * 1000) / (1024 * 1024);
}

export async function cryptoLimits(): Promise<CryptoLimits> {
  return {
    sha256MiBps: await opensslSpeed('sha256', 1024 * 1024),
    aes256gcmMiBps: await opensslSpeed('aes-256-gcm', 16 * 1024),
  };
}

/**
 * Seconds for `cp -r` of a directory plus `sync`, from a settled page cache. The copy is left for
 * the caller to remove once the timed runs after it are done (see benchSync).
 */
export async function copySeconds(source: string, target: string): Promise<number> {
  await rm(target, { recursive: true, force: true });
  await settlePageCache();
  const start = process.hrtime.bigint();
  await run('cp', ['-r', source, target]);
  await run('sync');
  return seconds(start);
}
