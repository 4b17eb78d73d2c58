// The daemon's grants: per-folder grant books kept in the home, issue and revoke, Grants messages to peers, expiry and revocation of live connections.

import type { EstablishedPeer } from '../connections/index.js';
import { FerryError } from '../errors.js';
import type { IndexStore } from '../index/store.js';
import {
  GrantBook,
  decodeGrant,
  issueGrant,
  revokeGrant,
  verifyGrant,
  verifyRevocation,
  type FolderKeys,
  type Grant,
  type GrantLevel,
  type GrantListing,
  type Revocation,
} from '../keys/index.js';
import type { GrantsMessage } from '../protocol/messages.js';
import type { Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';

/** Settings key prefix of a folder's stored grant book. */
const BOOK_KEY_PREFIX = 'grants:';
/** setTimeout's ceiling; longer expiries re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface IssuedGrant {
  id: string;
  folderId: string;
  level: GrantLevel;
  expiresAtMs: number;
  device?: string;
  invite: string;
}

interface PeerEntry {
  timer: NodeJS.Timeout | null;
}

export class GrantRegistry extends Resource {
  private readonly books = new Map<string, GrantBook>();
  private readonly peers = new Map<EstablishedPeer, PeerEntry>();
  private writes: Promise<unknown> = Promise.resolve();

  constructor(private readonly store: IndexStore, private readonly logger: Logger) {
    super();
  }

  protected async _open(): Promise<void> {}

  protected async _close(): Promise<void> {
    for (const entry of this.peers.values()) if (entry.timer) clearTimeout(entry.timer);
    this.peers.clear();
    await this.writes.catch(() => undefined);
  }

  /** The folder's grant book (loaded from the home the first time; a grantee's own grant is in it). */
  book(keys: FolderKeys): GrantBook {
    let book = this.books.get(keys.folderIdHex);
    if (!book) {
      book = GrantBook.load(keys, this.store.getSetting(BOOK_KEY_PREFIX + keys.folderIdHex));
      if (keys.grant) book.addGrant(decodeGrant(keys.grant.bytes));
      this.books.set(keys.folderIdHex, book);
    }
    return book;
  }

  isRevoked(keys: FolderKeys, grantIdHex: string): boolean {
    return this.book(keys).isRevoked(grantIdHex);
  }

  list(keys: FolderKeys): GrantListing[] {
    return this.book(keys).list();
  }

  /** Issues a grant with the folder key, remembers it and tells connected peers of the folder. */
  async issue(keys: FolderKeys, options: { level: GrantLevel; expiresAtMs: number; device?: string }): Promise<IssuedGrant> {
    if (options.expiresAtMs <= Date.now()) throw new FerryError('USAGE', 'a grant must expire in the future');
    const { grant, invite } = issueGrant(keys, options);
    const book = this.book(keys);
    book.addGrant(grant);
    await this.persist(keys);
    this.announce(keys, [grant], [], undefined);
    this.logger.info('grant issued', { folder: keys.folderIdHex, grant: grant.idHex, level: grant.level, expiresAtMs: grant.expiresAtMs });
    return {
      id: grant.idHex,
      folderId: keys.folderIdHex,
      level: grant.level,
      expiresAtMs: grant.expiresAtMs,
      ...(grant.device ? { device: grant.device } : {}),
      invite,
    };
  }

  /** Revokes a grant of one of `folders` (found by ID), signed with that folder's key; peers learn it at once. */
  async revoke(folders: readonly FolderKeys[], grantIdHex: string): Promise<{ id: string; folderId: string; revokedAtMs: number }> {
    const id = grantIdHex.trim().toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(id)) throw new FerryError('USAGE', 'a grant ID is 32 hex digits (see `ferry grants FOLDER`)');
    const keys = folders.find((k) => this.book(k).grant(id));
    if (!keys) throw new FerryError('GRANT_UNKNOWN', `no grant ${id} is known on this device`);
    const book = this.book(keys);
    const existing = book.revocation(id);
    if (existing) return { id, folderId: keys.folderIdHex, revokedAtMs: existing.revokedAtMs };
    const revocation = revokeGrant(keys, Buffer.from(id, 'hex'));
    book.addRevocation(revocation);
    await this.persist(keys);
    this.logger.info('grant revoked', { folder: keys.folderIdHex, grant: id });
    this.announce(keys, [], [revocation], undefined);
    this.enforce(keys, [revocation]);
    return { id, folderId: keys.folderIdHex, revokedAtMs: revocation.revokedAtMs };
  }

  /**
   * A connection was established: learn the grants its peer proved with (and pass them on), send
   * it what we know of each shared folder, and arm the expiry of the peer's grants. Synchronous, so
   * the Grants go out before the session's first index message.
   */
  peerStarted(peer: EstablishedPeer): void {
    for (const shared of peer.handshake.folders) {
      const book = this.book(shared.keys);
      if (shared.peerGrant && book.addGrant(shared.peerGrant)) {
        void this.persist(shared.keys);
        this.announce(shared.keys, [shared.peerGrant], [], peer);
      }
      const grants = book.grants().filter((g) => book.status(g) === 'active');
      const revocations = book.revocations();
      if (grants.length + revocations.length === 0) continue;
      this.send(peer, shared.keys, grants, revocations);
    }
    const entry: PeerEntry = { timer: null };
    this.peers.set(peer, entry);
    this.armExpiry(peer, entry);
  }

  peerEnded(peer: EstablishedPeer): void {
    const entry = this.peers.get(peer);
    if (entry?.timer) clearTimeout(entry.timer);
    this.peers.delete(peer);
  }

  /** A Grants message from a peer (for a folder shared with it). SIGNATURE_INVALID for a forged entry. */
  async receive(peer: EstablishedPeer, message: GrantsMessage): Promise<void> {
    const shared = peer.handshake.folders.find((f) => f.keys.folderId.equals(message.folderId));
    if (!shared) throw new FerryError('PROTOCOL', 'Grants for a folder not shared on this connection');
    const { keys } = shared;
    const book = this.book(keys);
    const grants: Grant[] = [];
    const revocations: Revocation[] = [];
    for (const bytes of message.grants) {
      const grant = verifyGrant(keys, bytes);
      if (book.addGrant(grant)) grants.push(grant);
    }
    for (const bytes of message.revocations) {
      const revocation = verifyRevocation(keys, bytes);
      if (book.addRevocation(revocation)) revocations.push(revocation);
    }
    if (grants.length + revocations.length === 0) return;
    this.logger.info('learned grants from a peer', { folder: keys.folderIdHex, device: peer.deviceId, grants: grants.length, revocations: revocations.length });
    await this.persist(keys);
    this.announce(keys, grants, revocations, peer);
    this.enforce(keys, revocations);
  }

  /** Sends new grants and revocations to every connected peer of the folder but `except`. */
  private announce(keys: FolderKeys, grants: Grant[], revocations: Revocation[], except: EstablishedPeer | undefined): void {
    for (const peer of this.peers.keys()) {
      if (peer === except || !peer.handshake.folders.some((f) => f.keys.folderIdHex === keys.folderIdHex)) continue;
      this.send(peer, keys, grants, revocations);
    }
  }

  private send(peer: EstablishedPeer, keys: FolderKeys, grants: Grant[], revocations: Revocation[]): void {
    const message: GrantsMessage = {
      type: 'Grants',
      folderId: keys.folderId,
      grants: grants.map((g) => g.bytes),
      revocations: revocations.map((r) => r.bytes),
    };
    peer.connection.send(message).catch(() => undefined);
  }

  /** Closes connections that depend on a grant now revoked: the peer's, or our own. */
  private enforce(keys: FolderKeys, revocations: Revocation[]): void {
    if (revocations.length === 0) return;
    const revoked = new Set(revocations.map((r) => r.grantIdHex));
    if (keys.grant && revoked.has(keys.grant.idHex)) {
      this.logger.error('the grant this device holds the folder by was revoked', { folder: keys.folderIdHex, grant: keys.grant.idHex });
    }
    for (const peer of [...this.peers.keys()]) {
      const shared = peer.handshake.folders.find((f) => f.keys.folderIdHex === keys.folderIdHex);
      if (!shared) continue;
      const peerRevoked = shared.peerGrant && revoked.has(shared.peerGrant.idHex);
      const ownRevoked = keys.grant && revoked.has(keys.grant.idHex);
      if (!peerRevoked && !ownRevoked) continue;
      const id = peerRevoked ? shared.peerGrant!.idHex : keys.grant!.idHex;
      this.logger.info('closing a connection: its grant was revoked', { device: peer.deviceId, grant: id });
      void peer.connection.close('GRANT_REVOKED', `grant ${id} was revoked`);
    }
  }

  /**
   * Closes the connection when the first grant the peer proved with expires. (The grantee's side
   * needs no timer: every peer enforces the grants it accepted, and a grantee may not be honest.)
   */
  private armExpiry(peer: EstablishedPeer, entry: PeerEntry): void {
    let first: { atMs: number; id: string } | undefined;
    for (const { peerGrant: grant } of peer.handshake.folders) {
      if (grant && (!first || grant.expiresAtMs < first.atMs)) first = { atMs: grant.expiresAtMs, id: grant.idHex };
    }
    if (!first) return;
    const { atMs, id } = first;
    const delayMs = Math.max(0, atMs - Date.now());
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (!this.peers.has(peer)) return;
      if (Date.now() < atMs) return this.armExpiry(peer, entry);
      this.logger.info('closing a connection: its grant expired', { device: peer.deviceId, grant: id });
      void peer.connection.close('GRANT_EXPIRED', `grant ${id} expired at ${new Date(atMs).toISOString()}`);
    }, Math.min(delayMs, MAX_TIMER_MS));
    entry.timer.unref();
  }

  private persist(keys: FolderKeys): Promise<void> {
    const book = this.book(keys);
    const write = this.writes.then(() => this.store.putSetting(BOOK_KEY_PREFIX + keys.folderIdHex, book.toJSON()));
    this.writes = write.catch((err: unknown) => this.logger.warn('cannot store grants', { err: String(err) }));
    return write;
  }
}
