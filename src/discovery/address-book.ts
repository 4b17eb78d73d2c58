// One address book per folder (plus one for LAN devices, which announce no folder), fed by every
// discovery source with source and last seen; bounded in size and age, and it tells the dialler.

import { normalizePeerAddress } from './peer-address.js';

/** The book of addresses heard with no folder attached (LAN announcements). */
export const ANY_FOLDER = '*';

export const DISCOVERY_SOURCES = ['lan', 'tracker', 'dht', 'pex'] as const;
export type DiscoverySource = (typeof DISCOVERY_SOURCES)[number];

export interface BookEntry {
  address: string;
  source: DiscoverySource;
  deviceId?: string;
  firstSeenMs: number;
  lastSeenMs: number;
}

export interface AddressBookOptions {
  /** Entries per folder; the least recently seen goes first. @default MAX_ENTRIES_PER_FOLDER */
  maxPerFolder?: number;
  /** An entry not heard of again for this long is dropped (unless `keep` says otherwise). @default ENTRY_TTL_MS */
  ttlMs?: number;
  /** An address entered the book (in no folder before): dial it. */
  onAdded: (address: string, source: DiscoverySource, deviceId?: string) => void;
  /** An address left every folder's book: stop dialling it. */
  onDropped: (address: string) => void;
}

export const MAX_ENTRIES_PER_FOLDER = 200;
export const ENTRY_TTL_MS = 60 * 60_000;

export class AddressBook {
  private readonly books = new Map<string, Map<string, BookEntry>>();
  /** How many folders' books hold each address. */
  private readonly references = new Map<string, number>();
  private readonly maxPerFolder: number;
  private readonly ttlMs: number;

  constructor(private readonly options: AddressBookOptions) {
    this.maxPerFolder = options.maxPerFolder ?? MAX_ENTRIES_PER_FOLDER;
    this.ttlMs = options.ttlMs ?? ENTRY_TTL_MS;
  }

  /**
   * Records that `address` is where `folder` (a folder ID in hex, or ANY_FOLDER) may be found.
   * Returns false for a malformed address. A known address keeps its first source, gets a fresh lastSeen.
   */
  add(folder: string, address: string, source: DiscoverySource, deviceId?: string, nowMs = Date.now()): boolean {
    const key = normalizePeerAddress(address);
    if (key === null) return false;
    let book = this.books.get(folder);
    if (!book) this.books.set(folder, (book = new Map()));
    const existing = book.get(key);
    if (existing) {
      existing.lastSeenMs = nowMs;
      if (deviceId) existing.deviceId = deviceId;
      return true;
    }
    if (book.size >= this.maxPerFolder) this.evictOldest(book);
    book.set(key, { address: key, source, ...(deviceId ? { deviceId } : {}), firstSeenMs: nowMs, lastSeenMs: nowMs });
    const count = this.references.get(key) ?? 0;
    this.references.set(key, count + 1);
    if (count === 0) this.options.onAdded(key, source, deviceId);
    return true;
  }

  /** Marks every entry of `deviceId` seen now (it is connected). */
  touchDevice(deviceId: string, nowMs = Date.now()): void {
    for (const book of this.books.values()) {
      for (const entry of book.values()) if (entry.deviceId === deviceId) entry.lastSeenMs = nowMs;
    }
  }

  /** Notes which device answered at `address` (from the dialler's status). */
  learnDevice(address: string, deviceId: string): void {
    for (const book of this.books.values()) {
      const entry = book.get(address);
      if (entry) entry.deviceId = deviceId;
    }
  }

  entries(folder: string): BookEntry[] {
    return [...(this.books.get(folder)?.values() ?? [])];
  }

  folders(): string[] {
    return [...this.books.keys()];
  }

  /** Drops a folder's whole book (the folder was removed). */
  removeFolder(folder: string): void {
    const book = this.books.get(folder);
    if (!book) return;
    this.books.delete(folder);
    for (const key of book.keys()) this.release(key);
  }

  /** Drops an address from every folder's book (it turned out to be this device's own). */
  removeAddress(address: string): boolean {
    const key = normalizePeerAddress(address);
    if (key === null) return false;
    let removed = false;
    for (const [folder, book] of this.books) {
      if (!book.delete(key)) continue;
      removed = true;
      this.release(key);
      if (book.size === 0) this.books.delete(folder);
    }
    return removed;
  }

  /** Drops entries older than the TTL, except those `keep` vouches for (e.g. connected devices). */
  prune(nowMs = Date.now(), keep: (entry: BookEntry) => boolean = () => false): void {
    for (const [folder, book] of this.books) {
      for (const [key, entry] of book) {
        if (nowMs - entry.lastSeenMs <= this.ttlMs || keep(entry)) continue;
        book.delete(key);
        this.release(key);
      }
      if (book.size === 0) this.books.delete(folder);
    }
  }

  get size(): number {
    let total = 0;
    for (const book of this.books.values()) total += book.size;
    return total;
  }

  report(): Record<string, Array<Omit<BookEntry, 'firstSeenMs'>>> {
    const out: Record<string, Array<Omit<BookEntry, 'firstSeenMs'>>> = {};
    for (const [folder, book] of this.books) {
      out[folder] = [...book.values()].map(({ address, source, deviceId, lastSeenMs }) => ({
        address,
        source,
        ...(deviceId ? { deviceId } : {}),
        lastSeenMs,
      }));
    }
    return out;
  }

  private evictOldest(book: Map<string, BookEntry>): void {
    let oldest: BookEntry | undefined;
    for (const entry of book.values()) if (!oldest || entry.lastSeenMs < oldest.lastSeenMs) oldest = entry;
    if (!oldest) return;
    book.delete(oldest.address);
    this.release(oldest.address);
  }

  private release(key: string): void {
    const count = (this.references.get(key) ?? 1) - 1;
    if (count > 0) {
      this.references.set(key, count);
      return;
    }
    this.references.delete(key);
    this.options.onDropped(key);
  }
}
