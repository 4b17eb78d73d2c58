// Checks an LMDB data file's meta pages before it is opened: written by this word size, in this
// file format, whole (not truncated), not garbage. LMDB files are not portable between 32-bit and
// 64-bit builds, and opening one of the other word size (or a damaged one) can crash the process
// instead of failing, so the check reads the bytes itself.
//
// lmdb-js carries LMDB 1.0 (data format 2). Page 0 and page 1 are meta pages; each starts with the
// page header { pgno_t pgno; txnid_t txnid; uint16 pad; uint16 flags; uint16 lower, upper } and then
// MDB_meta { uint32 magic; uint32 version; void *address; size_t mapsize; MDB_db dbs[2];
// pgno_t last_pg; txnid_t txnid; ... }, where pgno_t, txnid_t, size_t and pointers have the word
// size, and MDB_db is { uint32 pad (page size, in dbs[0]); uint16 flags, depth; pgno_t branch,
// leaf, overflow; size_t entries; pgno_t root }. All our targets are little-endian.

import { open } from 'node:fs/promises';

export const LMDB_MAGIC = 0xbeefc0de;
/** LMDB 1.0's data format (lmdb-js 3); 0.9 wrote 1. */
export const LMDB_DATA_VERSION = 2;
const P_META = 0x08;

export type WordBits = 32 | 64;

/** Offsets of the meta page fields for one word size (data format 2). */
export interface MetaLayout {
  flags: number;
  magic: number;
  version: number;
  pageSize: number;
  lastPage: number;
  txnid: number;
  word: 4 | 8;
}

export function metaLayout(bits: WordBits): MetaLayout {
  const word = bits === 64 ? 8 : 4;
  const header = 2 * word + 8; // pgno, txnid, pad, flags, lower/upper
  const dbs = header + 8 + 2 * word; // magic, version, address, mapsize
  const dbSize = 8 + 5 * word;
  return {
    flags: 2 * word + 2,
    magic: header,
    version: header + 4,
    pageSize: dbs,
    lastPage: dbs + 2 * dbSize,
    txnid: dbs + 2 * dbSize + word,
    word,
  };
}

export type IndexFileProblem = 'word-size' | 'format' | 'truncated' | 'garbage';

export type IndexFileCheck =
  | { ok: true; pageSize: number; txnid: number }
  | { ok: false; problem: IndexFileProblem; detail: string };

function readWord(buf: Buffer, offset: number, word: 4 | 8): bigint {
  return word === 8 ? buf.readBigUInt64LE(offset) : BigInt(buf.readUInt32LE(offset));
}

interface Meta {
  version: number;
  pageSize: number;
  lastPage: bigint;
  txnid: bigint;
}

/** The meta at `base` when it carries the magic and the meta flag for this layout. */
function readMeta(buf: Buffer, base: number, layout: MetaLayout): Meta | undefined {
  if (buf.length < base + layout.txnid + layout.word) return undefined;
  if (buf.readUInt32LE(base + layout.magic) !== LMDB_MAGIC) return undefined;
  if ((buf.readUInt16LE(base + layout.flags) & P_META) === 0) return undefined;
  return {
    version: buf.readUInt32LE(base + layout.version),
    pageSize: buf.readUInt32LE(base + layout.pageSize),
    lastPage: readWord(buf, base + layout.lastPage, layout.word),
    txnid: readWord(buf, base + layout.txnid, layout.word),
  };
}

function validPageSize(size: number): boolean {
  return size >= 512 && size <= 65536 && (size & (size - 1)) === 0;
}

/**
 * Judges the start of a data file (`head`: at least its first two pages when the file has them) of
 * `fileSize` bytes, for a build of `bits` word size.
 */
export function checkIndexHead(head: Buffer, fileSize: number, bits: WordBits): IndexFileCheck {
  const layout = metaLayout(bits);
  const first = readMeta(head, 0, layout);
  if (!first) {
    const otherBits: WordBits = bits === 64 ? 32 : 64;
    const other = readMeta(head, 0, metaLayout(otherBits));
    if (other && other.version === LMDB_DATA_VERSION) {
      return { ok: false, problem: 'word-size', detail: `the index was written by a ${otherBits}-bit build; this one is ${bits}-bit` };
    }
    if (fileSize < 512) return { ok: false, problem: 'truncated', detail: `data.mdb has ${fileSize} bytes, less than one page` };
    if ([0, 4, 8, 12, 16, 20, 24, 28].some((o) => head.readUInt32LE(o) === LMDB_MAGIC)) {
      return { ok: false, problem: 'format', detail: 'the index is an LMDB file of another format (an older LMDB?)' };
    }
    return { ok: false, problem: 'garbage', detail: `data.mdb (${fileSize} bytes) does not start with an LMDB meta page` };
  }
  if (first.version !== LMDB_DATA_VERSION) {
    return { ok: false, problem: 'format', detail: `the index has LMDB data format ${first.version}; this build reads ${LMDB_DATA_VERSION}` };
  }
  if (!validPageSize(first.pageSize)) return { ok: false, problem: 'garbage', detail: `implausible page size ${first.pageSize}` };
  const second = head.length >= 2 * first.pageSize ? readMeta(head, first.pageSize, layout) : undefined;
  if (fileSize < 2 * first.pageSize || !second) {
    return { ok: false, problem: fileSize < 2 * first.pageSize ? 'truncated' : 'garbage', detail: 'the second meta page is missing or damaged' };
  }
  if (second.version !== first.version || second.pageSize !== first.pageSize) {
    return { ok: false, problem: 'garbage', detail: 'the two meta pages disagree' };
  }
  // LMDB uses the meta with the newer transaction; its last page must lie inside the file.
  const current = second.txnid > first.txnid ? second : first;
  const needed = (current.lastPage + 1n) * BigInt(first.pageSize);
  if (needed > BigInt(fileSize)) {
    return { ok: false, problem: 'truncated', detail: `data.mdb has ${fileSize} bytes; its last page ends at ${needed}` };
  }
  return { ok: true, pageSize: first.pageSize, txnid: Number(current.txnid) };
}

/** This process's word size. */
export function processWordBits(arch: string = process.arch): WordBits {
  return ['arm', 'ia32', 'mips', 'mipsel', 'ppc'].includes(arch) ? 32 : 64;
}

/** Checks `path` (a data.mdb); undefined when there is no such file (a new index). */
export async function checkIndexFile(path: string, bits: WordBits = processWordBits()): Promise<IndexFileCheck | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(size, 2 * 65536));
    await handle.read(head, 0, head.length, 0);
    return checkIndexHead(head, size, bits);
  } finally {
    await handle.close();
  }
}
