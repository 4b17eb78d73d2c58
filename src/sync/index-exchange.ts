// Index exchange with one peer for one folder: what we publish (signed), batches after a sequence, and checks on what we receive.

import { FerryError } from '../errors.js';
import { SIGNATURE_BYTES, type FolderKeys, type GrantBook, type RecordSignatureCheck } from '../keys/index.js';
import { compareVersions, type FileRecord } from '../index/records.js';
import type { FolderIndex } from '../index/types.js';
import type { PeerConnection } from '../protocol/connection.js';
import type { IndexMessage } from '../protocol/messages.js';
import { recordSigningBytes } from '../protocol/records.js';
import { isLocalOnly } from '../scan/ignore.js';
import type { Logger } from '../util/log.js';
import type { RecordCache } from './record-cache.js';

/** Records per Index / IndexUpdate message. */
export const INDEX_BATCH_RECORDS = 1000;
/** Approximate bytes per Index / IndexUpdate message (well under the frame limit). */
export const INDEX_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * Least time between two sends of index changes to a peer. The first change after a quiet spell
 * goes at once; a stream of changes (a receiver installing small files a few dozen at a time) goes
 * in one message per gap instead of hundreds, each of which cost the peer an index transaction.
 */
export const INDEX_UPDATE_GAP_MS = 100;

/** A record's rough wire size, for batching. */
function wireSize(record: FileRecord): number {
  return 160 + Buffer.byteLength(record.path) + (record.sealed?.length ?? 0) + record.blocks.length * 34 + (record.linkTarget?.length ?? 0) + Object.keys(record.version).length * 24;
}

/**
 * The record we publish for one of our local records, or undefined when it must not leave this
 * device. A version equal to the global one goes out as the global record (as signed by whoever
 * made it, so RO devices relay it intact); an RW device signs its own changes; an RO device's own
 * edits carry no signature and are never sent. Stored signatures were checked when received.
 *
 * `unsigned`: both ends hold the folder key (see folderKeyLink), so what we would have to sign
 * goes unsigned: either end could sign anything, and the handshake's RW proof already binds this
 * connection to the key. The receiver signs such records itself when it relays them to RO peers.
 */
export function outgoingRecord(keys: FolderKeys, index: FolderIndex, local: FileRecord, unsigned = false, cache?: RecordCache): FileRecord | undefined {
  if (isLocalOnly(local.path)) return undefined; // this device's .ferryignore
  const signed = (record: FileRecord): FileRecord =>
    unsigned ? record : cache ? cache.signed(keys, record) : { ...record, signature: keys.sign(recordSigningBytes(keys.folderId, record)) };
  const global = index.getGlobal(local.path);
  if (global?.signature && compareVersions(local.version, global.version) === 'equal') {
    // An RW device endorses a grantee's record with the folder key, so it outlives the grant.
    if (keys.holdsFolderKey && global.signature.length !== SIGNATURE_BYTES) {
      const { signature: _grantSigned, ...record } = global;
      return signed({ ...record, inode: 0, sequence: local.sequence });
    }
    return { ...global, inode: 0, sequence: local.sequence };
  }
  if (local.signature) return { ...local, inode: 0 };
  if (!keys.canSign) return undefined;
  const { signature: _unsigned, ...record } = local;
  return signed({ ...record, inode: 0 });
}

/**
 * Whether records on a link may travel unsigned: both ends hold the folder key (RW keys, not
 * grants). Signing and checking every record cost each side 60–200 µs of CPU per file, for
 * nothing between devices that could sign anything themselves.
 */
export function folderKeyLink(keys: FolderKeys, peerHoldsFolderKey: boolean): boolean {
  return keys.holdsFolderKey && peerHoldsFolderKey;
}

export interface IndexSenderOptions {
  /** Our last sequence the peer has. */
  sentSequence: number;
  /** The peer must take a full index (it knows another index ID of ours). */
  full: boolean;
  /** Records we would sign go unsigned (folderKeyLink). */
  unsigned: boolean;
  /** @default INDEX_UPDATE_GAP_MS */
  updateGapMs?: number;
  /** For an encrypted (ENC) peer: the ENC-facing form of each record (src/sync/enc-bridge.ts); undefined = not sent. */
  translate?: (record: FileRecord) => Promise<FileRecord | undefined>;
  /** The folder's cache of signed records, shared by all its links. */
  cache?: RecordCache;
}

/** Sends our index to one peer: from where it stands, then whatever changes, in batches; one loop at a time. */
export class IndexSender {
  private running: Promise<void> | null = null;
  private dirty = false;
  private stopped = false;
  /** A send put off until updateGapMs after the last one began, and its promise. */
  private deferred: { timer: NodeJS.Timeout; done: Promise<void>; fire: () => void } | null = null;
  private lastSendAtMs = -Infinity;
  private sentSequence: number;
  private full: boolean;
  private readonly unsigned: boolean;
  private readonly updateGapMs: number;
  private readonly translate?: IndexSenderOptions['translate'];
  private readonly cache?: RecordCache;
  /** Records sent (for tests and status). */
  recordsSent = 0;

  constructor(
    private readonly keys: FolderKeys,
    private readonly index: FolderIndex,
    private readonly connection: PeerConnection,
    private readonly logger: Logger,
    options: IndexSenderOptions,
  ) {
    this.sentSequence = options.sentSequence;
    this.full = options.full;
    this.unsigned = options.unsigned;
    this.updateGapMs = options.updateGapMs ?? INDEX_UPDATE_GAP_MS;
    this.translate = options.translate;
    this.cache = options.cache;
  }

  /** Sends whatever is new: now, or updateGapMs after the last send began (again, if a send is under way). */
  kick(): void {
    this.dirty = true;
    if (this.running || this.deferred || this.stopped) return;
    const waitMs = this.lastSendAtMs + this.updateGapMs - Date.now();
    if (waitMs > 0) {
      let fire!: () => void;
      const done = new Promise<void>((resolve) => (fire = resolve));
      const timer = setTimeout(() => {
        this.deferred = null;
        fire();
        this.kick();
      }, waitMs);
      this.deferred = { timer, done, fire };
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = null;
      if (this.dirty && !this.stopped) this.kick();
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.deferred) {
      clearTimeout(this.deferred.timer);
      this.deferred.fire();
      this.deferred = null;
    }
  }

  /** Resolves when nothing is being sent or waiting to be. */
  async settled(): Promise<void> {
    while (this.running || this.deferred) await (this.running ?? this.deferred!.done);
  }

  private async loop(): Promise<void> {
    this.dirty = false;
    this.lastSendAtMs = Date.now();
    try {
      await this.sendNew();
    } catch (err) {
      if (!this.connection.closed) this.logger.warn('cannot send index', { err: err instanceof Error ? err : String(err) });
      this.stopped = true;
    }
  }

  private async sendNew(): Promise<void> {
    let batch: FileRecord[] = [];
    let bytes = 0;
    let last = this.sentSequence;
    const flush = async (): Promise<void> => {
      // Records left out (local-only, an RO device's own edits, nothing for an ENC peer) still move
      // the peer's sequence on, so it can tell it has our whole index (status: index complete).
      if (batch.length === 0 && !this.full && last === this.sentSequence) return;
      const message: IndexMessage = {
        type: this.full ? 'Index' : 'IndexUpdate',
        folderId: this.keys.folderId,
        indexId: this.index.indexId(),
        firstSequence: Math.min(this.sentSequence + 1, last),
        lastSequence: last,
        records: batch,
      };
      await this.connection.send(message);
      this.recordsSent += batch.length;
      this.full = false;
      this.sentSequence = last;
      batch = [];
      bytes = 0;
    };
    const fullIndex = this.full;
    const counted = this.recordsSent;
    for (const local of this.index.localSince(this.sentSequence)) {
      if (this.stopped) return;
      last = local.sequence;
      const plain = outgoingRecord(this.keys, this.index, local, this.unsigned, this.cache);
      const record = plain && this.translate ? await this.translate(plain) : plain;
      if (!record) continue;
      batch.push(record);
      bytes += wireSize(record);
      if (batch.length >= INDEX_BATCH_RECORDS || bytes >= INDEX_BATCH_BYTES) await flush();
    }
    await flush();
    if (fullIndex && this.cache) {
      const { signed, sealed, hits } = this.cache.counts;
      this.logger.debug('full index sent', { records: this.recordsSent - counted, folderSigned: signed, folderSealed: sealed, folderCacheHits: hits });
    }
  }
}

/**
 * Checks an Index / IndexUpdate from a peer before anything is stored: it names the peer's current
 * index, its sequences move forward on this link, and every record carries the folder's signature (or, with a
 * grant book, a signature under a valid RW grant; or, with `unsignedAccepted` on a folderKeyLink,
 * none). A signature that is there is always checked, so none is stored unchecked. Throws PROTOCOL
 * or SIGNATURE_INVALID (the caller drops the connection). Returns the records to take: those signed
 * under a grant that is unknown, expired or revoked are left out (logged), as a relaying peer may
 * still hold them.
 */
export async function checkIncomingIndex(
  keys: FolderKeys,
  message: IndexMessage,
  expected: {
    indexId: Buffer;
    /** The peer's last sequence stored here: records at or below it are already stored, and left out. */
    afterSequence: number;
    /**
     * The highest lastSequence received on this connection (-1: none yet): a batch must move past it.
     * A reconnect may resume before afterSequence (the peer resumes from what the handshake said we
     * had, and batches of the previous link may have been stored since), so only this link's own
     * stream is held to moving forward. @default afterSequence
     */
    linkSequence?: number;
  },
  options: { grants?: GrantBook; logger?: Logger; unsignedAccepted?: boolean } = {},
): Promise<FileRecord[]> {
  const { grants, logger } = options;
  if (!message.indexId.equals(expected.indexId)) {
    throw new FerryError('PROTOCOL', 'index batch names an index ID other than the one announced in ClusterState');
  }
  const first = message.records[0];
  const had = expected.linkSequence ?? expected.afterSequence;
  if (message.lastSequence < had || (first && first.sequence <= had)) {
    throw new FerryError('PROTOCOL', `index sequences went backwards (had ${had}, got ${first?.sequence ?? message.lastSequence})`);
  }
  // Records of a resumed stream that an earlier link already stored.
  if (first && first.sequence <= expected.afterSequence) {
    message = { ...message, records: message.records.filter((record) => record.sequence > expected.afterSequence) };
  }
  // Folder-key signatures are all checked at once in the thread pool, off the event loop that moves
  // the blocks; a grant signature needs the grant book (and is rare).
  const nowMs = Date.now();
  const checks = await Promise.all(
    message.records.map(async (record): Promise<RecordSignatureCheck> => {
      if (record.signature === undefined && options.unsignedAccepted) return { ok: true };
      const data = recordSigningBytes(keys.folderId, record);
      if (record.signature?.length === SIGNATURE_BYTES) {
        return (await keys.verifyAsync(data, record.signature)) ? { ok: true } : { ok: false, skip: false, reason: 'not signed by the folder key' };
      }
      return grants ? grants.checkRecordSignature(data, record.signature, nowMs) : { ok: false, skip: false, reason: 'not signed by the folder key' };
    }),
  );
  return message.records.filter((record, i) => {
    const check = checks[i]!;
    if (check.ok) return true;
    if (!check.skip) throw new FerryError('SIGNATURE_INVALID', `record ${JSON.stringify(record.path)}: ${check.reason}`);
    logger?.info('record signed under a grant that is not valid here; ignored', { path: record.path, reason: check.reason });
    return false;
  });
}
