// Public API of sync/: FolderSync per folder, PeerSession per connection, the archive, and helpers the daemon wires in.

import type { FolderIndex } from '../index/types.js';
import type { FolderSyncState } from '../protocol/handshake.js';
import { LIMITS } from '../protocol/limits.js';

export { Archive, ARCHIVE_DIR, type ArchivedFile } from './archive.js';
export { checkArchivePolicy, purgePlan, staggeredKeep, STAGGER_INTERVALS, type ArchivePolicy, type PurgePlan } from './archive-policy.js';
export {
  changeSelection, findLocalUnselected, normaliseSubtree, stillExcludedBy, LOCAL_UNSELECTED_REASON, LOCAL_UNSELECTED_SOURCE, type LocalUnselected,
} from './selection.js';
export { FolderSync, SYNC_DEFAULTS, type FolderSyncLimits, type FolderSyncOptions } from './folder-sync.js';
export { type PeerFolderLink } from './folder-links.js';
export { type FolderSyncReport, type PeerReport } from './folder-status.js';
export { PeerSession, SERVE_BYTES_IN_FLIGHT, type PeerSessionOptions } from './peer-session.js';
export { ByteBudget } from './budget.js';
export { RateLimiter, systemClock, type RateClock, type TransferRates } from './rate-limit.js';
export { type TransferStats } from './fetcher.js';
export { conflictPath, foldName } from './paths.js';
export { isLocalChange } from './revert.js';
export {
  ConflictList, parseConflictPath, resolveConflict, type Conflict, type ConflictKeep, type ConflictResolution, type ConflictVersion,
} from './conflicts.js';

/** For the handshake's `folderState`: where our index of the folder stands and what we have of the peer's. */
export function folderSyncState(index: FolderIndex, peerDeviceId: string): FolderSyncState {
  return {
    indexId: index.indexId(),
    maxSequence: index.localSequence(),
    receivedIndexId: index.peerIndexId(peerDeviceId) ?? Buffer.alloc(LIMITS.indexIdBytes),
    receivedSequence: index.peerSequence(peerDeviceId),
  };
}

/**
 * The index a read-only folder's scanner writes through: its records never become global, so the
 * device's own edits stay local changes (reported, never sent, revertable).
 */
export function readOnlyScanIndex(index: FolderIndex): FolderIndex {
  return new Proxy(index, {
    get(target, property) {
      if (property === 'putLocal') {
        return (records: Parameters<FolderIndex['putLocal']>[0]) => target.putLocal(records, { updateGlobal: false });
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
