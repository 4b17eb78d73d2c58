// The receiver's side of streaming large files: blocks a peer announced (Hashing) while it still hashes the file are fetched into a temp file of their own, handed to the puller when the signed record arrives.

import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { rename, rm, statfs } from 'node:fs/promises';
import { isFerryError } from '../errors.js';
import { checkIndexPath } from '../index/keys.js';
import type { FileRecord } from '../index/records.js';
import type { FolderIndex } from '../index/types.js';
import { compareVersions } from '../index/records.js';
import type { Access } from '../keys/types.js';
import type { HashingMessage } from '../protocol/messages.js';
import { IgnoreRules, isLocalOnly, TEMP_FILE_PREFIX } from '../scan/ignore.js';
import type { FileIo } from '../util/file-io.js';
import type { Logger } from '../util/log.js';
import type { AlignedBuffers } from './aligned-buffers.js';
import { firstMismatchedBlock, verifyBlocks } from './block-hashes.js';
import type { ByteBudget } from './budget.js';
import { MAX_REQUEST_BYTES, type BlockPeer } from './fetcher.js';
import type { RateLimiter } from './rate-limit.js';
import { childPath, type DiskPaths } from './paths.js';
import { exists } from './pull-steps.js';
import { TempFile } from './temp-file.js';

/** Files prefetched at once from one peer, and in all (per folder). */
export const PREFETCH_MAX_PER_PEER = 2;
export const PREFETCH_MAX_FILES = 4;
/** A prefetch that heard no Hashing message and got no block for this long is dropped (its record never came). */
export const PREFETCH_IDLE_MS = 60_000;
/** Blocks failing their announced hash before the prefetch is dropped. */
export const PREFETCH_MAX_BAD_BLOCKS = 3;
/** Reasons kept for status. */
const REASONS_KEPT = 8;

/** The temp file of a prefetch: beside the target, named from the path and the announcement's tag (a `.ferry-tmp-` name the sweeps know). */
export function prefetchTempName(path: string, tag: Buffer): string {
  const digest = createHash('sha256').update(path).update('\0prefetch\0').update(tag).digest('hex');
  return `${TEMP_FILE_PREFIX}${digest.slice(0, 24)}`;
}

export interface PrefetchOptions {
  folderId: Buffer;
  root: string;
  index: FolderIndex;
  paths: DiskPaths;
  logger: Logger;
  /** The folder's bytes in flight (shared with the puller). */
  budget: ByteBudget;
  io: FileIo;
  /** Staging buffers for direct writes. */
  direct?: AlignedBuffers;
  /** The daemon's download limit (as the puller's): each run's size is taken before it is requested. */
  download?: RateLimiter;
  readOnly: boolean;
  excluded: readonly string[];
  /** The announcing device's link: its block peer and the access it proved; undefined when it is not attached (or ENC). */
  source(deviceId: string): { peer: BlockPeer; access: Access } | undefined;
  /** Ends every fetch (the folder closes). */
  signal: AbortSignal;
  /** @default PREFETCH_IDLE_MS */
  idleMs?: number;
}

/** Counters and the latest drops, for status and tests. */
export interface PrefetchReport {
  /** Files being prefetched now. */
  files: number;
  /** Hashing messages taken, and dropped (with the last reasons). */
  announcements: number;
  dropped: number;
  reasons: Array<{ path: string; reason: string }>;
  /** Blocks (and bytes) fetched, verified and written before any record. */
  blocksFetched: number;
  bytesFetched: number;
  /** Blocks (and bytes) the puller adopted from prefetched temps instead of fetching them. */
  blocksAdopted: number;
  bytesAdopted: number;
}

interface Prefetch {
  device: string;
  path: string;
  tag: Buffer;
  size: number;
  blockSize: number;
  tempAbs: string;
  /** Announced hash of each block (holes until told). */
  hashes: Array<Buffer | undefined>;
  /** Blocks written into the temp file and verified against hashes[i]. */
  have: boolean[];
  /** Blocks announced and not yet fetched (nor being fetched). */
  queue: number[];
  temp: Promise<TempFile> | undefined;
  controller: AbortController;
  running: Promise<void> | undefined;
  lastMs: number;
  badBlocks: number;
  /** The peer refused a request (the file moved on, or its record is in): nothing more is asked until its next Hashing. */
  refused: boolean;
  /** Being adopted: no new request goes out; those in flight land (their bytes are on the wire already). */
  draining: boolean;
}

/** One folder's prefetches, by path. */
export class Prefetcher {
  private readonly entries = new Map<string, Prefetch>();
  private readonly counters: PrefetchReport = {
    files: 0, announcements: 0, dropped: 0, reasons: [], blocksFetched: 0, bytesFetched: 0, blocksAdopted: 0, bytesAdopted: 0,
  };
  private readonly idleMs: number;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Hashing attempts whose record the puller has taken (path → tag): announcements of them again (a peer's replay on a new link) are not prefetched. */
  private readonly recorded = new Map<string, Buffer>();
  /** Paths being set up (an async check runs), so two messages do not open two entries. */
  private readonly starting = new Map<string, Promise<void>>();

  constructor(private readonly options: PrefetchOptions) {
    this.idleMs = options.idleMs ?? PREFETCH_IDLE_MS;
  }

  report(): PrefetchReport {
    return { ...this.counters, files: this.entries.size, reasons: [...this.counters.reasons] };
  }

  /** A peer's Hashing message. Never throws: whatever breaks a rule is dropped with a reason. */
  receive(deviceId: string, message: HashingMessage): Promise<void> {
    const previous = this.starting.get(message.path) ?? Promise.resolve();
    const next = previous.then(() => this.take(deviceId, message)).catch((err: unknown) => {
      this.drop(message.path, `cannot prefetch: ${err instanceof Error ? err.message : String(err)}`);
    });
    const tracked = next.finally(() => {
      if (this.starting.get(message.path) === tracked) this.starting.delete(message.path);
    });
    this.starting.set(message.path, tracked);
    return tracked;
  }

  /**
   * The puller is about to build `record` in `tempAbs`: a prefetch of the path with the same block
   * size is stopped and its temp renamed to `tempAbs`. Returns, per block of the record, whether
   * the temp already holds it (announced hash = the record's, fetched and verified); undefined
   * when there is nothing to adopt.
   */
  async adopt(record: FileRecord, tempAbs: string): Promise<boolean[] | undefined> {
    await this.starting.get(record.path);
    const entry = this.entries.get(record.path);
    if (!entry) return undefined;
    this.recorded.delete(record.path);
    this.recorded.set(record.path, entry.tag);
    while (this.recorded.size > PREFETCH_MAX_FILES * 16) this.recorded.delete(this.recorded.keys().next().value!);
    await this.stop(entry, true);
    const kept = record.blocks.map((hash, i) => entry.have[i] === true && entry.hashes[i] !== undefined && entry.hashes[i]!.equals(hash));
    const count = kept.filter(Boolean).length;
    if (entry.blockSize !== record.blockSize || count === 0 || entry.temp === undefined || (await exists(tempAbs))) {
      await this.removeTemp(entry);
      return undefined;
    }
    try {
      await rename(entry.tempAbs, tempAbs);
    } catch (err) {
      this.options.logger.debug('cannot adopt a prefetched temp file', { path: record.path, err: String(err) });
      await this.removeTemp(entry);
      return undefined;
    }
    this.counters.blocksAdopted += count;
    kept.forEach((yes, i) => {
      if (yes) this.counters.bytesAdopted += Math.min(record.blockSize, record.size - i * record.blockSize);
    });
    this.options.logger.debug('prefetched blocks adopted', { path: record.path, blocks: count, of: record.blocks.length });
    return kept;
  }

  /** Drops every prefetch and removes their temps (the folder closes). */
  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    await Promise.allSettled([...this.starting.values()]);
    for (const entry of [...this.entries.values()]) await this.discard(entry);
  }

  private async take(deviceId: string, message: HashingMessage): Promise<void> {
    if (this.options.signal.aborted) return;
    if (message.rejected) return this.drop(message.path, `refused from ${deviceId}: ${message.rejected}`);
    this.counters.announcements++;
    const source = this.options.source(deviceId);
    if (!source) return this.drop(message.path, `${deviceId} is not attached`);
    if (this.recorded.get(message.path)?.equals(message.tag)) return this.drop(message.path, 'its record is here already');
    if (source.access !== 'rw') return this.drop(message.path, `${deviceId} has ${source.access} access: it cannot publish the record`);
    let entry = this.entries.get(message.path);
    if (entry && entry.device !== deviceId) return this.drop(message.path, `already prefetched from ${entry.device}`);
    if (entry && (!entry.tag.equals(message.tag) || entry.size !== message.size || entry.blockSize !== message.blockSize)) {
      if (entry.blockSize === message.blockSize && message.size >= entry.size) {
        // The sender hashes the file again (it was still being written): the blocks already in the
        // temp stay, each under the hash it was verified against. Requests in flight land first, so
        // nothing of the old attempt is written after a block is fetched again for the new one.
        const old = entry;
        await this.stop(old, true);
        entry = this.register(deviceId, message, old.tempAbs);
        // Only blocks in the temp carry over: the rest are queued when the new attempt announces them.
        entry.have = old.have.map((yes) => yes === true);
        entry.hashes = old.hashes.map((hash, i) => (entry!.have[i] ? hash : undefined));
      } else {
        // Smaller, or cut into other blocks: what was fetched for the old attempt goes.
        await this.discard(entry);
        entry = undefined;
      }
    }
    if (!entry) {
      entry = await this.start(deviceId, message);
      if (!entry) return;
    }
    entry.lastMs = Date.now();
    entry.refused = false;
    const first = message.firstBlock;
    for (let j = 0; j < message.hashes.length / 32; j++) {
      const i = first + j;
      const hash = message.hashes.subarray(j * 32, (j + 1) * 32);
      if (entry.hashes[i]?.equals(hash)) continue;
      entry.hashes[i] = Buffer.from(hash);
      entry.have[i] = false;
      // A block some local file already holds (a touched or appended file) is copied by the puller, not fetched.
      if (this.options.index.findBlock(hash, message.path) === undefined) entry.queue.push(i);
    }
    this.pump(entry, source.peer);
  }

  /** A new prefetch, if this device wants the file; undefined (and dropped with the reason) if not. */
  private async start(deviceId: string, message: HashingMessage): Promise<Prefetch | undefined> {
    const { path } = message;
    const full = (): string | undefined => {
      const fromPeer = [...this.entries.values()].filter((e) => e.device === deviceId).length;
      if (fromPeer >= PREFETCH_MAX_PER_PEER) return `${PREFETCH_MAX_PER_PEER} files already prefetched from ${deviceId}`;
      if (this.entries.size >= PREFETCH_MAX_FILES) return `${PREFETCH_MAX_FILES} files already prefetched`;
      return undefined;
    };
    const before = full();
    if (before) return void this.drop(path, before);
    const unwanted = await this.unwanted(path, message.size);
    if (unwanted) return void this.drop(path, unwanted);
    let parentAbs: string;
    try {
      parentAbs = await this.tempDir(path);
    } catch (err) {
      return void this.drop(path, `no directory for its temp file (${err instanceof Error ? err.message : String(err)})`);
    }
    // Other paths may have started meanwhile: the bounds hold at the moment the entry is made.
    const after = this.options.signal.aborted ? 'the folder is closing' : full();
    if (after) return void this.drop(path, after);
    return this.register(deviceId, message, childPath(parentAbs, prefetchTempName(path, message.tag)));
  }

  /**
   * Where the prefetch's temp file goes: the file's directory, or when that is not here yet, its nearest ancestor that
   * is. A directory moved in whole (the usual way a large file arrives) is announced in the sender's index only after
   * the scan that hashes its files: waiting for it left nothing to overlap. The puller creates the directory and the
   * adoption renames the temp into it (the same file system; across a mount point the rename fails and the puller
   * fetches instead). Nothing is created here before a record exists. Throws when a directory on the way is unsafe.
   */
  private async tempDir(path: string): Promise<string> {
    const parts = path.split('/');
    for (let depth = parts.length - 1; ; depth--) {
      try {
        return (await this.options.paths.resolveParent([...parts.slice(0, depth), parts[parts.length - 1]!].join('/'))).parentAbs;
      } catch (err) {
        const missing = isFerryError(err, 'IO') && (err.cause as { code?: string } | undefined)?.code === 'ENOENT';
        if (!missing || depth === 0) throw err;
      }
    }
  }

  /** A prefetch of `message`'s file into `tempAbs`, listed (the bounds were checked by the caller). */
  private register(deviceId: string, message: HashingMessage, tempAbs: string): Prefetch {
    const { path } = message;
    const entry: Prefetch = {
      device: deviceId,
      path,
      tag: Buffer.from(message.tag),
      size: message.size,
      blockSize: message.blockSize,
      tempAbs,
      hashes: [],
      have: [],
      queue: [],
      temp: undefined,
      controller: new AbortController(),
      running: undefined,
      lastMs: Date.now(),
      badBlocks: 0,
      refused: false,
      draining: false,
    };
    this.entries.set(path, entry);
    this.sweepTimer ??= setInterval(() => this.sweep(), Math.max(1000, Math.floor(this.idleMs / 4)));
    this.sweepTimer.unref();
    this.options.logger.debug('prefetching a file the peer is hashing', { path, device: deviceId, size: message.size });
    return entry;
  }

  /** Why this device does not take the file now, or undefined when it does. */
  private async unwanted(path: string, size: number): Promise<string | undefined> {
    try {
      checkIndexPath(path);
    } catch (err) {
      return `cannot be indexed here: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (isLocalOnly(path)) return 'a local-only file';
    const ignore = (await IgnoreRules.load(this.options.root).catch(() => IgnoreRules.builtIn())).withExcluded(this.options.excluded);
    if (ignore.unselected(path)) return 'in a subtree this device does not take';
    if (ignore.ignores(path, false)) return 'ignored here';
    if (this.options.readOnly) {
      const local = this.options.index.getLocal(path);
      const global = this.options.index.getGlobal(path);
      if (local && (!global || compareVersions(local.version, global.version) !== 'equal')) return 'a local change of this read-only device';
    }
    try {
      const fs = await statfs(this.options.root);
      if (fs.bavail * fs.bsize < size) return `not enough disk space (${size} bytes announced)`;
    } catch {
      // No answer from statfs: the writes will tell.
    }
    return undefined;
  }

  /** Fetches the queued blocks of a prefetch, runs of adjacent ones per request, within the budgets. */
  private pump(entry: Prefetch, peer: BlockPeer): void {
    if (entry.running || entry.queue.length === 0 || entry.refused) return;
    entry.running = this.fetchQueued(entry, peer)
      .catch((err: unknown) => {
        if (entry.controller.signal.aborted || this.options.signal.aborted) return;
        if (isFerryError(err, 'DISK_FULL') || isFerryError(err, 'IO') || isFerryError(err, 'PATH_UNSAFE')) {
          void this.discard(entry, `cannot write its temp file: ${err.message}`);
          return;
        }
        this.options.logger.debug('prefetch stopped', { path: entry.path, err: err instanceof Error ? err.message : String(err) });
      })
      .finally(() => {
        entry.running = undefined;
        if (this.entries.get(entry.path) === entry && !entry.controller.signal.aborted) this.pump(entry, peer);
      });
  }

  private async fetchQueued(entry: Prefetch, peer: BlockPeer): Promise<void> {
    const signal = AbortSignal.any([this.options.signal, entry.controller.signal]);
    setMaxListeners(0, signal);
    const tasks = new Set<Promise<void>>();
    const maxRequestBytes = peer.multiBlock ? Math.min(MAX_REQUEST_BYTES, this.options.budget.limitBytes, peer.budget.limitBytes) : 0;
    const length = (i: number): number => Math.min(entry.blockSize, entry.size - i * entry.blockSize);
    try {
      entry.queue.sort((a, b) => a - b);
      while (entry.queue.length > 0 && !signal.aborted && !entry.refused && !entry.draining) {
        const run = [entry.queue.shift()!];
        let bytes = length(run[0]!);
        while (entry.queue[0] === run[run.length - 1]! + 1 && bytes + length(entry.queue[0]!) <= maxRequestBytes) {
          run.push(entry.queue.shift()!);
          bytes += length(run[run.length - 1]!);
        }
        try {
          await this.options.budget.acquire(bytes, signal);
        } catch (err) {
          entry.queue.unshift(...run);
          throw err;
        }
        const task = this.fetchRun(entry, peer, run, bytes, signal)
          .catch((err: unknown) => {
            if (signal.aborted) return;
            if (isFerryError(err, 'DISK_FULL') || isFerryError(err, 'IO') || isFerryError(err, 'PATH_UNSAFE')) throw err;
            // The sender no longer serves these blocks (its record is in, or the file moved on): wait for its next word.
            entry.refused = true;
            entry.queue.push(...run.filter((i) => !entry.have[i]));
          })
          .finally(() => {
            this.options.budget.release(bytes);
            tasks.delete(task);
          });
        tasks.add(task);
      }
    } finally {
      const outcomes = await Promise.allSettled([...tasks]);
      const failed = outcomes.find((o) => o.status === 'rejected');
      if (failed && !signal.aborted) throw (failed as PromiseRejectedResult).reason;
    }
  }

  private async fetchRun(entry: Prefetch, peer: BlockPeer, run: number[], bytes: number, signal: AbortSignal): Promise<void> {
    const offset = run[0]! * entry.blockSize;
    const hashes = run.map((i) => entry.hashes[i]!);
    await peer.budget.acquire(bytes, signal);
    let data: Buffer;
    try {
      await this.options.download?.take(bytes, signal);
      data = await peer.request({ folderId: this.options.folderId, path: entry.path, offset, size: bytes, hash: Buffer.concat(hashes) }, signal);
    } finally {
      peer.budget.release(bytes);
    }
    const mismatch = data.length === bytes ? await verifyBlocks(data, entry.blockSize, run.length, (j) => hashes[j]!) : 0;
    if (mismatch >= 0) {
      // Each wrong block counts (the run is not written; its blocks come with the record, from a peer that has it).
      let bad = 1;
      for (let j = mismatch + 1; j < run.length && data.length === bytes; j++) {
        if (firstMismatchedBlock(data.subarray(j * entry.blockSize), entry.blockSize, 1, () => hashes[j]!) >= 0) bad++;
      }
      peer.recycle(data);
      entry.badBlocks += bad;
      if (entry.badBlocks >= PREFETCH_MAX_BAD_BLOCKS) {
        void this.discard(entry, `${entry.badBlocks} blocks failed their announced hash`);
      }
      return;
    }
    // A prefetch being adopted (draining, no longer listed) still writes what lands: those bytes were sent already.
    if (signal.aborted) return peer.recycle(data);
    try {
      const temp = await this.tempOf(entry, signal);
      await temp.write(data, offset);
    } finally {
      peer.recycle(data);
    }
    // Verified against the hashes it was asked with; a hash changed since (same tag: never) is fetched again.
    run.forEach((i, j) => {
      if (entry.hashes[i]?.equals(hashes[j]!)) entry.have[i] = true;
    });
    entry.lastMs = Date.now();
    this.counters.blocksFetched += run.length;
    this.counters.bytesFetched += bytes;
  }

  private tempOf(entry: Prefetch, signal: AbortSignal): Promise<TempFile> {
    entry.temp ??= TempFile.open({
      root: this.options.root,
      tempAbs: entry.tempAbs,
      path: entry.path,
      size: entry.size,
      singleBlock: false,
      io: this.options.io,
      dirs: this.options.paths.dirs,
      ...(this.options.direct ? { direct: this.options.direct } : {}),
      stats: { bytesWrittenDirect: 0 },
      signal,
      logger: this.options.logger,
    });
    return entry.temp;
  }

  /** Stops fetching (`drain`: requests in flight land first) and closes the temp file (kept on disk). */
  private async stop(entry: Prefetch, drain = false): Promise<void> {
    if (this.entries.get(entry.path) === entry) this.entries.delete(entry.path);
    entry.draining = true;
    if (drain) await entry.running;
    entry.controller.abort();
    await entry.running;
    const temp = await entry.temp?.catch(() => undefined);
    await temp?.close();
  }

  private async removeTemp(entry: Prefetch): Promise<void> {
    if (entry.temp) await rm(entry.tempAbs, { force: true }).catch(() => undefined);
  }

  /** Stops a prefetch and removes its temp; with a reason, counted as dropped. */
  private async discard(entry: Prefetch, reason?: string): Promise<void> {
    if (reason) this.drop(entry.path, reason);
    await this.stop(entry);
    await this.removeTemp(entry);
  }

  private drop(path: string, reason: string): void {
    this.counters.dropped++;
    this.counters.reasons.push({ path: path.slice(0, 256), reason });
    if (this.counters.reasons.length > REASONS_KEPT) this.counters.reasons.shift();
    this.options.logger.debug('announcement of a file being hashed dropped', { path: path.slice(0, 256), reason });
  }

  private sweep(): void {
    const now = Date.now();
    for (const entry of [...this.entries.values()]) {
      if (now - entry.lastMs > this.idleMs && !entry.running) void this.discard(entry, `no record within ${Math.round(this.idleMs / 1000)} s`);
    }
    if (this.entries.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }
}
