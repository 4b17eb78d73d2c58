// Writes one file's temp file: created (or reopened after an earlier attempt) through its O_NOFOLLOW parent, written past the page cache when it can, flushed in the background, fsynced at the end.

import { constants, fstatSync } from 'node:fs';
import { dirname, isAbsolute, relative } from 'node:path';
import { FerryError, isFerryError } from '../errors.js';
import { openFolderDirSync, type HeldDirs, type VerifiedDir } from '../scan/disk-path.js';
import type { BufferPool } from '../util/buffer-pool.js';
import { closeQuietly, readExactly } from '../util/fd.js';
import type { FileIo } from '../util/file-io.js';
import type { Logger } from '../util/log.js';
import { DIRECT_IO_ALIGN, type AlignedBuffers } from './aligned-buffers.js';

/**
 * Largest single write. Measured on this VM's ext4 (kernel 6.18), 1 GiB after the page cache was
 * dropped, the two sizes alternating: 1 MiB-aligned writes of 1 MiB cost 1.0–2.9 s of system time,
 * 512 KiB writes 0.2–0.6 s (the kernel then builds smaller page-cache folios).
 */
const MAX_WRITE_BYTES = 512 * 1024;

/**
 * Bytes written to a temp file between two background flushes. The page cache otherwise holds a
 * large file's data until the final fsync, which then wrote 1 GiB at the end of the transfer
 * (~0.5 s with both cores idle); flushed as it comes, the disk writes while the network moves.
 */
const FLUSH_EVERY_BYTES = 64 * 1024 * 1024;

/**
 * Files of at least this size are written past the page cache (O_DIRECT, see
 * aligned-buffers.ts). On this VM that took the receiver's system time for 1 GiB from 2.0–2.3 s
 * to 0.6–0.7 s, and the bench's `large` from 4.46–4.83 s to 3.22–3.53 s (alternating runs). Small
 * files are written through the cache.
 */
const DIRECT_WRITE_MIN_FILE_BYTES = 1024 * 1024;

/**
 * A new temp file of one block up to this size is created and written on the calling thread: into the
 * page cache that takes microseconds, where each thread-pool call (open, write) cost a round trip of two
 * thread wake-ups in every small file's chain. Its durability is left to the installer (finish()).
 */
const SYNC_IO_MAX_BYTES = 64 * 1024;

/** Writes `length` bytes of `data` from `offset` at `position`, or fails: a short write (a full disk) is an error. */
async function writeFully(io: FileIo, fd: number, data: Buffer, offset: number, length: number, position: number): Promise<void> {
  const { bytesWritten } = await io.write(fd, data, offset, length, position);
  if (bytesWritten !== length) throw new FerryError('IO', `short write: ${bytesWritten} of ${length} bytes (disk full?)`);
}

/** Writes `data` at `position` in pieces of at most MAX_WRITE_BYTES, all at once. */
async function writeInPieces(io: FileIo, fd: number, data: Buffer, position: number): Promise<void> {
  const pieces: Array<Promise<unknown>> = [];
  for (let at = 0; at < data.length; at += MAX_WRITE_BYTES) {
    pieces.push(writeFully(io, fd, data, at, Math.min(MAX_WRITE_BYTES, data.length - at), position + at));
  }
  await Promise.all(pieces);
}

export interface TempFileOptions {
  /** The folder's root; the temp file must lie inside it. */
  root: string;
  tempAbs: string;
  /** The path of the file being built (for messages). */
  path: string;
  /** Its final size in bytes, and whether it is one block (written in one durable piece). */
  size: number;
  singleBlock: boolean;
  /** The writing file operations (the folder's DiskPaths.io). */
  io: FileIo;
  /** The folder's held directories (DiskPaths.dirs); without them the temp file's directory chain is opened anew. */
  dirs?: HeldDirs;
  /** Staging buffers for direct writes; without them every write goes through the page cache. */
  direct?: AlignedBuffers;
  /** Told the bytes of each write (for status). */
  progress?: (bytes: number) => void;
  /** Counts the bytes written with O_DIRECT. */
  stats: { bytesWrittenDirect: number };
  signal: AbortSignal;
  logger: Logger;
}

/**
 * One temp file open for writing. open() creates it or reopens the one an earlier attempt left
 * (`fresh` tells which); write() any number of times; finish() makes it durable; close() always.
 */
export class TempFile {
  /** The temp file opened a second time with O_DIRECT, for large files on file systems that allow it. */
  private directFd: number | undefined;
  /** The file system refused a direct write: the rest go through the cache (the descriptor stays open until the end, as other writes may use it). */
  private directRefused = false;
  private unflushedBytes = 0;
  /** A background flush of what was written so far (see FLUSH_EVERY_BYTES), and how one failed. */
  private flushing: Promise<void> | null = null;
  private flushError: unknown;

  private constructor(
    private readonly options: TempFileOptions,
    private readonly fd: number,
    /** Created now (nothing to check or trim), rather than left by an earlier attempt. */
    readonly fresh: boolean,
    /** Written on the calling thread (a new small file: SYNC_IO_MAX_BYTES). */
    private readonly syncIo = false,
  ) {}

  /** Creates the temp file, or opens the one an earlier attempt left; PATH_UNSAFE or IO when it cannot. */
  static async open(options: TempFileOptions): Promise<TempFile> {
    const { io, path } = options;
    let fresh = true;
    // A new file of one block is not made durable here: the installer fdatasyncs a batch of them together
    // before their renames (finish() says so), rather than each write waiting for the disk on the pool.
    const create = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    // Through its parent opened again with every component O_NOFOLLOW (the disk-path module): a
    // directory swapped for a symlink since the target was resolved is refused, never written through.
    const temp = openTempParent(options);
    const tempEntry = temp.parent.entry(temp.name);
    let fd = -1;
    try {
      if (options.singleBlock && options.size <= SYNC_IO_MAX_BYTES) {
        fd = openSmall(io, tempEntry, create, path);
        if (fd >= 0) return new TempFile(options, fd, true, true);
      }
      fd = await io.open(tempEntry, create, 0o600)
        .catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          fresh = false; // left by an earlier attempt: its verified blocks are kept
          return io.open(tempEntry, constants.O_RDWR | constants.O_NOFOLLOW, 0o600);
        })
        .catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
            throw new FerryError('PATH_UNSAFE', `refusing ${JSON.stringify(path)}: its temp file was replaced by a symlink`);
          }
          throw new FerryError('IO', `cannot open temp file for ${path}: ${String(err)}`, { cause: err });
        });
      const file = new TempFile(options, fd, fresh);
      await file.openDirect(tempEntry);
      return file;
    } catch (err) {
      if (fd >= 0) closeQuietly(fd);
      throw err;
    } finally {
      temp.parent.close();
    }
  }

  /** Its size on disk now. */
  currentSize(): number {
    return fstatSync(this.fd).size;
  }

  /** `length` bytes at `position` in a buffer of `buffers`; undefined when the file ends before. */
  read(length: number, position: number, buffers: BufferPool): Promise<Buffer | undefined> {
    return readExactly(this.fd, length, position, buffers);
  }

  truncate(size: number): Promise<void> {
    return this.options.io.truncate(this.fd, size);
  }

  /** Writes into the temp file: its aligned part directly when it can, the rest through the cache. */
  async write(data: Buffer, position: number): Promise<void> {
    if (this.syncIo) {
      const bytesWritten = this.options.io.writeSync(this.fd, data, 0, data.length, position);
      if (bytesWritten !== data.length) throw new FerryError('IO', `short write: ${bytesWritten} of ${data.length} bytes (disk full?)`);
      this.options.progress?.(data.length);
      return;
    }
    const directBytes = position % DIRECT_IO_ALIGN === 0 ? data.length - (data.length % DIRECT_IO_ALIGN) : 0;
    const written = directBytes > 0 && (await this.writeDirect(data.subarray(0, directBytes), position)) ? directBytes : 0;
    if (written < data.length) await this.writeCached(data.subarray(written), position + written);
    this.options.progress?.(data.length);
  }

  /**
   * Waits for the background flush and makes the file durable; throws a write-back error it reported.
   * False: a new file of one block, not durable yet; whoever renames it into place must fdatasync it
   * first (the installer does, for a batch of them at once).
   */
  async finish(): Promise<boolean> {
    await this.flushing;
    // The kernel reports a write-back error to one flush of a descriptor only: this file is not installed.
    if (this.flushError !== undefined) throw this.flushError;
    if (this.fresh && this.options.singleBlock) return false;
    await this.options.io.fsync(this.fd);
    return true;
  }

  /** Closes its descriptors, once no background flush may still be given one. */
  async close(): Promise<void> {
    await this.flushing; // never close a descriptor a flush may still be given
    closeQuietly(this.fd);
    if (this.directFd !== undefined) closeQuietly(this.directFd);
  }

  /**
   * Opens the temp file for direct writes when the file is large enough and its file system allows
   * it (ramfs, FUSE and some network file systems refuse O_DIRECT: their writes go through the cache).
   */
  private async openDirect(tempEntry: string): Promise<void> {
    if (!this.options.direct || this.options.size < DIRECT_WRITE_MIN_FILE_BYTES || constants.O_DIRECT === undefined) return;
    const fd = await this.options.io.open(tempEntry, constants.O_WRONLY | constants.O_DIRECT | constants.O_NOFOLLOW).catch((err: unknown) => {
      this.options.logger.debug('no direct writes for this file', { path: this.options.path, err: String(err) });
      return undefined;
    });
    if (fd === undefined) return;
    // Opened by name a second time: it must still be the temp file this fetch created.
    const [mine, opened] = [fstatSync(this.fd), fstatSync(fd)];
    if (mine.ino !== opened.ino || mine.dev !== opened.dev) closeQuietly(fd);
    else this.directFd = fd;
  }

  /**
   * Writes aligned `data` with O_DIRECT, through the staging buffers; false when this file has no
   * direct descriptor, or when its file system refused a direct write (EINVAL: it wants a larger
   * alignment), after which this file's writes all go through the cache.
   */
  private async writeDirect(data: Buffer, position: number): Promise<boolean> {
    const staging = this.options.direct;
    if (this.directFd === undefined || this.directRefused || !staging) return false;
    for (let done = 0; done < data.length; ) {
      const slot = await staging.take(this.options.signal);
      try {
        const length = Math.min(slot.length, data.length - done);
        data.copy(slot, 0, done, done + length);
        await writeFully(this.options.io, this.directFd, slot, 0, length, position + done);
        done += length;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        this.options.logger.debug('direct write refused; writing through the cache', { path: this.options.path, err: String(err) });
        this.directRefused = true;
        return false;
      } finally {
        staging.give(slot);
      }
    }
    this.options.stats.bytesWrittenDirect += data.length;
    return true;
  }

  /** Writes through the page cache, starting a background flush every FLUSH_EVERY_BYTES. */
  private async writeCached(data: Buffer, position: number): Promise<void> {
    await writeInPieces(this.options.io, this.fd, data, position);
    this.unflushedBytes += data.length;
    if (this.unflushedBytes < FLUSH_EVERY_BYTES || this.flushing) return;
    this.unflushedBytes = 0;
    this.flushing = this.options.io.fdatasync(this.fd)
      .catch((err: unknown) => void (this.flushError ??= err))
      .finally(() => (this.flushing = null));
  }
}

/**
 * Creates a small temp file on the calling thread; -1 when one is there already (left by an earlier
 * attempt: reopened as usual, its verified blocks kept).
 */
function openSmall(io: FileIo, tempEntry: string, flags: number, path: string): number {
  try {
    return io.openSync(tempEntry, flags, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return -1;
    if (code === 'ELOOP') throw new FerryError('PATH_UNSAFE', `refusing ${JSON.stringify(path)}: its temp file was replaced by a symlink`);
    throw new FerryError('IO', `cannot open temp file for ${path}: ${String(err)}`, { cause: err });
  }
}

/**
 * The temp file's directory inside the folder, opened with O_NOFOLLOW component by component
 * (PATH_UNSAFE when one is a symlink), and the temp file's name in it.
 */
function openTempParent(options: TempFileOptions): { parent: VerifiedDir; name: string } {
  const rel = relative(options.root, dirname(options.tempAbs));
  if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) {
    throw new FerryError('PATH_UNSAFE', `temp file for ${JSON.stringify(options.path)} is outside the folder`);
  }
  const name = options.tempAbs.slice(options.tempAbs.lastIndexOf('/') + 1);
  try {
    return { parent: options.dirs ? options.dirs.open(rel) : openFolderDirSync(options.root, rel), name };
  } catch (err) {
    if (isFerryError(err)) throw err;
    throw new FerryError('IO', `cannot open the directory of ${options.path}: ${String(err)}`, { cause: err });
  }
}
