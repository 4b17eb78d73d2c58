// What the web layer needs from the daemon: declared here so web/ never imports daemon/.

import type { Access } from '../keys/types.js';
import type { ArchivePolicy } from '../index/types.js';
import type { PrefetchReport } from '../sync/prefetch.js';
import type { AppPasswordRecord } from './app-passwords.js';

/** `idle` only when nothing is needed; `stalled`: files are needed and none can be fetched now (see `stalledReason`). */
export type FolderState = 'idle' | 'scanning' | 'syncing' | 'stalled' | 'error' | 'paused';

export interface PeerReport {
  device: string;
  name?: string;
  address: string;
  source: string;
  /** Connected peers: 'tcp', 'udp', 'udp punched', 'turn HOST' or 'relay via NAME', and the link's round-trip time in ms (UDP, relay). */
  path?: string;
  rttMs?: number;
  connected: boolean;
  bytesIn?: number;
  bytesOut?: number;
  inRateBps?: number;
  outRateBps?: number;
  /** Why the last link to this peer closed (`CODE: reason`). */
  lastClose?: string;
  lastCloseAtMs?: number;
  /** The peer's index: last sequence stored here, and the highest it announced (equal when complete). */
  indexSequence?: number;
  indexAnnounced?: number;
  /**
   * How complete the peer's copy of the folder is, as far as its index tells this device: 0–100 by
   * bytes (below 100 while any file is needed), and the files and bytes of the folder it still needs.
   * Absent only while a large folder's first computation runs in the background.
   */
  completion?: number;
  needFiles?: number;
  needBytes?: number;
}

export interface FolderReport {
  id: string;
  path: string;
  access: Access;
  state: FolderState;
  error?: string;
  /** Why a `stalled` folder cannot make progress. */
  stalledReason?: string;
  localFiles: number;
  localBytes: number;
  globalFiles: number;
  globalBytes: number;
  needFiles: number;
  needBytes: number;
  /** Block bytes being fetched for this folder per second, and files being fetched now. */
  inRateBps?: number;
  filesInProgress?: number;
  /** Bytes of the files being fetched already in their temp files (still counted in needBytes). */
  partialBytes?: number;
  /** Read-only folders: local edits that are never sent (`ferry revert` undoes them). */
  localChanges: number;
  /** Paths skipped rather than synced (a refused record or name), counted; the newest listed in `failed`. */
  failedItems: number;
  failed: FailedItemReport[];
  /** The folder's "portable names" option. */
  portableNames?: boolean;
  /** The archive's versions and bytes, and what a purge under the folder's policy would free now (measured in the background: within seconds for a small archive, at most a minute old). */
  archive?: { files: number; bytes: number; purgeFiles: number; purgeBytes: number };
  /** Selective sync: the subtrees this device does not take (absent: all), and files made here inside them (kept, not sent). */
  excluded?: string[];
  localUnselected?: number;
  /** Needed files left alone because they lie in those subtrees (not counted as a stall). */
  unselectedFiles?: number;
  /** Folders joined with an invite: the grant this device holds them by, and when it expires. */
  grant?: GrantReport;
  lastScanMs: number | null;
  watcher: { watchedDirs: number; unwatchedDirs: number; limitReached: boolean };
  peers: PeerReport[];
  /** A mass delete by peers, held until the owner applies it or restores the files (`ferry deletions`). */
  heldDeletions?: HeldDeletionsReport;
  /** Current conflicts: conflict copies whose original is still there (`ferry conflicts`). */
  conflicts?: number;
  /** Streaming large files (src/sync/prefetch.ts): blocks fetched while peers hashed them, and announcements dropped with why. Absent when none came. */
  prefetch?: PrefetchReport;

}

/** One version of a conflicting file. */
export interface ConflictVersionReport {
  size: number;
  mtimeMs: number;
  /** Short ID of the device that last wrote this version. */
  device: string;
  /** That device's name, when known here. */
  deviceName?: string;
}

/** A current conflict: the original (it won the name) and its conflict copy (it lost). */
export interface ConflictReport {
  path: string;
  copyPath: string;
  original: ConflictVersionReport;
  copy: ConflictVersionReport;
}

export interface ConflictListing {
  folderId: string;
  /** By path; at most the limit asked for. */
  conflicts: ConflictReport[];
  total: number;
  offset: number;
  truncated: boolean;
}

/** Which version a resolution keeps: the original, the copy (it takes the name), or both (the copy is renamed). */
export type ConflictKeep = 'original' | 'copy' | 'both';

export interface ConflictResolutionReport {
  path: string;
  copyPath: string;
  keep: ConflictKeep;
  /** The loser's name in the archive. */
  archived?: string;
  /** keep both: the copy's new path. */
  renamedTo?: string;
}

/** What joining into a directory would meet there (`POST /api/folders/join/check`). */
export interface JoinCheckReport {
  path: string;
  exists: boolean;
  /** Files and symlinks already there (Ferry's own .ferry/ aside), and their bytes. */
  files: number;
  bytes: number;
  /** The count stopped early: at least this many. */
  truncated: boolean;
}

/** Peers' deletions held back because they would remove most of a folder (or more than massDeleteFiles files). */
export interface HeldDeletionsReport {
  files: number;
  /** Short IDs of the devices that deleted the files. */
  devices: string[];
  /** A few of the paths. */
  examples: string[];
  sinceMs: number;
  reason: string;
}

/** What a bulk restore from the archive did. */
export interface BulkRestoreReport {
  /** Files put back (the newest archived version of each path). */
  restored: number;
  /** Paths left alone because a file is there now. */
  skipped: number;
  /** Paths that could not be restored (the reason is logged). */
  failed: number;
}

/** Options of one folder, settable with `ferry folders options` and POST /api/folders/:folder/options. */
export interface FolderOptions {
  /** Keep out (and report) names Windows and SMB clients cannot hold (`CON`, `a:b.txt`, `x.`): off by default. */
  portableNames?: boolean;
  /** How the archive keeps versions: `{ kind: 'days', days }` or `{ kind: 'staggered', maxAgeDays }`, optionally with maxArchiveBytes (oldest first); null: the archiveDays setting. */
  archive?: ArchivePolicy | null;
}

/** One archived version of a file. */
export interface VersionReport {
  archivePath: string;
  archivedAtMs: number;
  /** The same instant, ISO 8601 (what `ferry restore --at` takes). */
  at: string;
  size: number;
  /** Short ID of the device that made the version, when known, and its name when known here. */
  device?: string;
  deviceName?: string;
}

export interface VersionsReport {
  folderId: string;
  path: string;
  /** Newest first. */
  versions: VersionReport[];
}

/** The archive's size and what a purge under the folder's policy would free now. */
export interface ArchivePlanReport {
  folderId: string;
  policy: ArchivePolicy;
  files: number;
  bytes: number;
  purgeFiles: number;
  purgeBytes: number;
}

/** One entry of a folder's tree as the index knows it (global records: present here or not). */
export interface TreeEntry {
  /** Folder-relative path. */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** A file's size; a directory's: the bytes of every file below it. */
  size: number;
  /** Files (and symlinks) below a directory; 1 for a file. */
  files: number;
  /** Whether this device takes it (false inside an excluded subtree). */
  selected: boolean;
  /** This device holds the global version (false for parts not on disk here). */
  present: boolean;
}

/** A folder's selection (selective sync) and, when asked, one page of one directory of its tree. */
export interface SelectionReport {
  folderId: string;
  access: Access;
  /** Subtrees this device does not take, sorted. */
  excluded: string[];
  /** Files created here inside excluded subtrees (kept, not sent), counted; the first listed. */
  localUnselected: { count: number; paths: string[] };
  /** The directory listed ('' = the root) and its children (directories first, then by name), paged. */
  dir?: string;
  entries?: TreeEntry[];
  total?: number;
  offset?: number;
  /** An ENC device sees encrypted names only: what it can select. */
  note?: string;
}

/** A path that is skipped rather than synced, and why. */
export interface FailedItemReport {
  path: string;
  reason: string;
  /** The peer's device ID whose record was refused, or 'local' (scanner, puller). */
  source: string;
  atMs: number;
}

/** A grant as listed (`ferry grants`) or as held by this device (`status`). */
export interface GrantReport {
  /** 32 hex digits: what `ferry revoke` takes. */
  id: string;
  level: 'ro' | 'rw';
  expiresAtMs: number;
  expiresAt: string;
  /** Bound to this device ID; absent for a bearer grant (whoever holds the invite). */
  device?: string;
  status: 'active' | 'expired' | 'revoked';
  revokedAtMs?: number;
}

/** A grant just issued, with the invite to hand to the grantee (`ferry join INVITE DIR`). */
export interface IssuedGrantReport {
  id: string;
  folderId: string;
  level: 'ro' | 'rw';
  expiresAtMs: number;
  expiresAt: string;
  device?: string;
  invite: string;
}

export interface StatusReport {
  device: { id: string; name: string };
  version: string;
  /** The sync listener's bound address. */
  listen: string | null;
  /** Every address peers can connect to, per transport: with the default 0.0.0.0, `[::]:PORT` too where IPv6 is accepted. */
  listening?: { tcp: string[]; udp: string[] };
  /** The web admin's bound address. */
  web?: string | null;
  /** Set while the disk holding the home is full (error code DISK_FULL): why; index writes are retried when space is freed. */
  homeDiskFull?: string;
  /**
   * Set when this start found the index unusable (another word size or schema, damage): it was set
   * aside (never deleted) and rebuilt from the home's portable.json, the folders on disk and the peers.
   */
  homeRecovered?: { problem: string; detail: string; setAside: string; at: string; atMs: number; fromPortable: boolean };
  folders: FolderReport[];
  /** Optional services (port mapping, discovery) by name, each with its own report. */
  services: Record<string, unknown>;
  /** Addresses being dialled (named with `ferry peers add`, or discovered), with their source and dial state. */
  knownPeers: Array<{
    address: string;
    source: string;
    deviceId?: string;
    connected: boolean;
    lastError?: string;
    unreachable?: string;
    /** Why the last link to this address's device closed (`CODE: reason`). */
    lastClose?: string;
    /** Not connected: when the next dial is due (the backoff grows while links keep closing soon after they open). */
    nextDialInMs?: number;
  }>;
  /** This device's external addresses and how each was learned (upnp, natpmp, stun, observed). */
  external?: Array<{ address: string; source: string; via?: string; lastSeenMs: number }>;
}

/** The keys this device can print for a folder: weaker ones are always there, stronger only if held. */
export interface KeysReport {
  folderId: string;
  path: string;
  rw?: string;
  ro?: string;
  enc: string;
}

/** One file in a folder's archive (.ferry/archive/). */
export interface ArchiveEntry {
  /** Where it lived in the folder. */
  path: string;
  /** Its name inside the archive: what restore takes. */
  archivePath: string;
  archivedAtMs: number;
  size: number;
}

export interface ArchiveListing {
  folderId: string;
  /** Newest first; at most the limit asked for. */
  files: ArchiveEntry[];
  /** More files are archived than were listed. */
  truncated: boolean;
  /** Files skipped before this page. */
  offset?: number;
  /** Archived files in all (up to the listing's walk limit). */
  total?: number;
}

/** A connected device, with how it was found and its transfer rates. */
export interface PeerInfo {
  device: string;
  name: string;
  address: string;
  /** 'known', 'incoming', 'lan', 'tracker', 'dht', 'pex', … */
  source: string;
  direction: 'in' | 'out';
  connectedAtMs: number;
  /** 'tcp', 'udp', 'udp punched', 'turn HOST' (relayed by that TURN server) or 'relay via NAME' (relayed by that Ferry device). */
  path: string;
  /** The IP version of the link to the peer (of the local end; a relayed link's is the relay's). */
  ip: 4 | 6;
  /** Round-trip time of the transport, ms (UDP links). */
  rttMs?: number;
  bytesIn: number;
  bytesOut: number;
  inRateBps: number;
  outRateBps: number;
  /** IDs of the folders shared with it. */
  folders: string[];
}

/** An address named with `ferry peers add` (or the page), with its dial state. */
export interface AddedPeerReport {
  address: string;
  /** The folder it was added for (a label only). */
  folder?: string;
  /** The device behind it, once one answered there. */
  deviceId?: string;
  connected: boolean;
  lastError?: string;
}

/** The settings the page and the API may change (they apply at once; listen and web at the next start). */
export interface EditableSettings {
  deviceName: string;
  listen: string;
  web: string;
  /** Names the web admin answers to besides loopback and this machine's names and addresses. */
  webHosts: string[];
  lan: boolean;
  nat: boolean;
  dht: boolean;
  trackers: boolean;
  trackerUrls: string[];
  /** Ask STUN servers for the external address; which ones (HOST:PORT, in order). */
  stun: boolean;
  stunServers: string[];
  /**
   * TURN servers, turn://USER:PASSWORD@HOST:PORT. Reports show each password as `********`; an
   * entry sent back with that mask keeps the stored password of the same USER@HOST:PORT.
   */
  turnServers: string[];
  /** Relay streams between two peers that share a folder with this device; at most relayRateBps bytes per second in all (0 = no cap). */
  relay: boolean;
  relayRateBps: number;
  archiveDays: number;
  /** Peers' deletions of more than this many files wait for the owner (0: only the "more than half" rule). */
  massDeleteFiles: number;
  /** 0 = unlimited. */
  uploadKBps: number;
  downloadKBps: number;
}

export interface SettingsReport {
  /** As stored in the home. */
  settings: EditableSettings;
  /** What this run uses (stored settings, then `ferry run` flags). */
  running: EditableSettings;
  /** Names of the settings a `ferry run` flag overrides for this run. */
  overridden: string[];
  /** Each overridden setting's flag, e.g. `{ lan: '--no-lan' }`. */
  overriddenBy?: Record<string, string>;
  /** A stored address (listen, web) differs from the bound one: a restart applies it. Every other setting applies at once. */
  restartRequired: boolean;
  /** The settings that wait for a restart. */
  restartFor?: string[];
}

/** A folder as the WebDAV share sees it. */
export interface LocalFolderHandle {
  id: string;
  /** Absolute path of the folder on this device. */
  path: string;
  access: Access;
  paused: boolean;
  /** A rescan of `under` ('' = all) after a local edit made through the web. */
  requestScan(under: string): Promise<void>;
}

export interface DaemonApi {
  status(): StatusReport;
  share(path: string): Promise<KeysReport>;
  /** Refuses (FOLDER_NOT_EMPTY) a directory that has files unless `merge`. */
  join(key: string, path: string, options?: { merge?: boolean }): Promise<FolderReport>;
  /** What a join into `path` would meet: how many files and bytes are there. */
  joinCheck(path: string): Promise<JoinCheckReport>;
  /** Current conflicts of a folder, by path (paging). */
  conflicts(folder: string, limit: number, offset: number): Promise<ConflictListing>;
  /** Resolves one conflict; the change syncs like any local edit, the loser goes to the archive. */
  resolveConflict(folder: string, path: string, keep: ConflictKeep, name?: string): Promise<ConflictResolutionReport>;
  /** `folder` is a folder ID or the folder's path. */
  keys(folder: string): KeysReport;
  removeFolder(folder: string): Promise<void>;
  rescan(folder: string): Promise<void>;
  /** Remembers an address to keep connected; `folder` only labels it. */
  addPeer(address: string, folder?: string): Promise<void>;
  /** The addresses added with addPeer. */
  addedPeers(): AddedPeerReport[];
  /** Forgets added addresses: `target` is one (HOST:PORT) or a device ID (or its first 7+ characters); returns those removed. PEER_UNKNOWN if none. */
  removePeer(target: string): Promise<{ removed: string[] }>;
  /** Read-only folders: archives local edits and takes the global versions back. */
  revert(folder: string): Promise<number>;
  // Grants
  /** Issues a grant of the folder (needs its RW key) expiring after `expiresInMs`, optionally bound to one device. */
  grant(folder: string, options: { level: 'ro' | 'rw'; expiresInMs: number; device?: string }): Promise<IssuedGrantReport>;
  /** Revokes a grant by ID (needs the RW key of its folder); every peer learns it. */
  revokeGrant(grantId: string): Promise<{ id: string; folderId: string; revokedAtMs: number }>;
  /** The grants known for a folder (issued here or learned from peers), soonest expiry first. */
  grants(folder: string): { folderId: string; grants: GrantReport[] };
  /** Per-folder options; returns the options now in force. */
  setFolderOptions(folder: string, options: FolderOptions): Promise<Required<FolderOptions>>;
  /** The folder's selection, and one page of directory `dir` of its tree when given. */
  selection(folder: string, options?: { dir?: string; limit?: number; offset?: number }): Promise<SelectionReport>;
  /** Excludes or includes one subtree (this device only); the folder restarts with it. */
  setSelection(folder: string, change: { exclude?: string; include?: string }): Promise<SelectionReport>;
  /** A file's archived versions, newest first. */
  versions(folder: string, path: string): Promise<VersionsReport>;
  /** Restores the version of `path` archived at `atMs` (else the newest before it): an edit that syncs; the current version is archived first. */
  restoreVersion(folder: string, path: string, atMs: number): Promise<{ path: string; restored: VersionReport }>;
  /** The archive's size and what purging under the folder's policy would free now. */
  archivePlan(folder: string): Promise<ArchivePlanReport>;
  /** A paused folder is neither scanned nor synced, and not offered to peers. */
  pauseFolder(folder: string): Promise<void>;
  resumeFolder(folder: string): Promise<void>;
  /** Archived files newest first, `offset` of them skipped (paging). */
  archive(folder: string, limit: number, offset?: number): Promise<ArchiveListing>;
  /** Puts an archived file back; returns the path it was restored to. */
  restoreArchived(folder: string, archivePath: string): Promise<string>;
  /** Deletes archived files older than `olderThanDays` (default: the archive days setting); returns how many. */
  purgeArchive(folder: string, olderThanDays?: number): Promise<number>;
  /** Puts back the newest archived version of every file under `prefix` ('' = all) that is not in the folder now. */
  restoreArchivedAll(folder: string, prefix: string): Promise<BulkRestoreReport>;
  /** A held mass delete goes ahead: the files go to the archive here. Returns how many. */
  applyDeletions(folder: string): Promise<number>;
  /** A held mass delete is undone: the files become new versions and return on every peer. Returns how many. */
  restoreDeletions(folder: string): Promise<number>;
  peers(): PeerInfo[];
  getSettings(): SettingsReport;
  /** Validates and stores the given settings (FerryError USAGE names the bad one). */
  updateSettings(patch: Record<string, unknown>): Promise<SettingsReport>;
  /** The most recent log lines, oldest first. */
  logTail(lines: number): string[];
  /** The admin password's argon2id hash (PHC string), or undefined before one is set. */
  adminPasswordHash(): string | undefined;
  setAdminPasswordHash(hash: string): Promise<void>;
  /** The one-time first-start code a browser not on this machine needs to set the first password; undefined once one is set. */
  adminSetupCode(): string | undefined;
  /** The key web session tokens are signed with, kept in the home (sessions outlive a restart). */
  webSessionKey(): Buffer | undefined;
  /** Web sessions ended early (logout), with when each would expire anyway. */
  revokedWebSessions(): Record<string, number>;
  setRevokedWebSessions(revoked: Record<string, number>): Promise<void>;
  /** The folders served over WebDAV. */
  localFolders(): LocalFolderHandle[];
  /** App passwords (WebDAV's HTTP Basic credentials) as stored with the settings. */
  appPasswords(): AppPasswordRecord[];
  setAppPasswords(records: AppPasswordRecord[]): Promise<void>;
}
