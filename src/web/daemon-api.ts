// What the web layer needs from the daemon: declared here so web/ never imports daemon/.

import type { Access } from '../keys/types.js';

export type FolderState = 'idle' | 'scanning' | 'syncing' | 'error' | 'paused';

export interface PeerReport {
  device: string;
  name?: string;
  address: string;
  source: string;
  connected: boolean;
  bytesIn?: number;
  bytesOut?: number;
  inRateBps?: number;
  outRateBps?: number;
}

export interface FolderReport {
  id: string;
  path: string;
  access: Access;
  state: FolderState;
  error?: string;
  localFiles: number;
  localBytes: number;
  globalFiles: number;
  globalBytes: number;
  needFiles: number;
  needBytes: number;
  /** Read-only folders: local edits that are never sent (`ferry revert` undoes them). */
  localChanges: number;
  lastScanMs: number | null;
  watcher: { watchedDirs: number; unwatchedDirs: number; limitReached: boolean };
  peers: PeerReport[];
}

export interface StatusReport {
  device: { id: string; name: string };
  version: string;
  /** The sync listener's bound address. */
  listen: string | null;
  folders: FolderReport[];
  /** Optional services (port mapping, discovery) by name, each with its own report. */
  services: Record<string, unknown>;
  /** Addresses the user named (`ferry peers add`), with their dial state. */
  knownPeers: Array<{ address: string; deviceId?: string; connected: boolean; lastError?: string }>;
}

/** The keys this device can print for a folder: weaker ones are always there, stronger only if held. */
export interface KeysReport {
  folderId: string;
  path: string;
  rw?: string;
  ro?: string;
  enc: string;
}

export interface DaemonApi {
  status(): StatusReport;
  share(path: string): Promise<KeysReport>;
  join(key: string, path: string): Promise<FolderReport>;
  /** `folder` is a folder ID or the folder's path. */
  keys(folder: string): KeysReport;
  removeFolder(folder: string): Promise<void>;
  rescan(folder: string): Promise<void>;
  /** Remembers an address to keep connected; `folder` only labels it. */
  addPeer(address: string, folder?: string): Promise<void>;
  /** Read-only folders: archives local edits and takes the global versions back. */
  revert(folder: string): Promise<number>;
}
