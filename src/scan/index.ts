// Public API of scan/: ignore rules, walker, block sizes, hashing (direct and pooled), scanner, watcher.

export { IgnoreRules, isLocalOnly, IGNORE_FILE, FERRY_DIR, TEMP_FILE_PREFIX, NAS_LITTER_NAMES } from './ignore.js';
export { walk, normaliseUnder, type WalkEntry, type WalkOptions } from './walker.js';
export { toIndexPath, resolveDiskPath } from './disk-path.js';
export { DiskPresence } from './presence.js';
export { OwnWrites, OWN_WRITES, OWN_WRITE_WINDOW_MS } from './own-writes.js';
export { WarmFiles, WARM_FILE_MAX_BYTES, WARM_FILES_MAX, WARM_WINDOW_MS } from './warm-files.js';
export { blockSizeFor, MIN_BLOCK_SIZE, MAX_BLOCK_SIZE, MAX_BLOCKS_PER_FILE } from './blocksize.js';
export { hashFile, hashFileOnPool, hashSmallFileSync, HASH_READ_BYTES, SYNC_HASH_MAX_BYTES, type HashResult } from './hasher.js';
export { HashPool, type HashPoolOptions } from './hash-pool.js';
export {
  Scanner,
  STREAM_MIN_BYTES,
  type HashingEvent,
  type ScannerOptions,
  type ScanOptions,
  type ScanResult,
  type ScanProgress,
} from './scanner.js';
export {
  FolderWatcher,
  type FolderWatcherOptions,
  type WatcherStatus,
  type WatchFunction,
  type WatchHandle,
} from './watcher.js';
export { SubtreeSet, coalescePaths } from './subtrees.js';
export { FOLDER_MARKER, volumeProblem, requireVolume } from './volume.js';
