// Size and count limits on everything a peer sends; validators enforce them.

/** Limits the validators enforce. */
export const LIMITS = {
  folderIdBytes: 20,
  hashBytes: 32,
  tagBytes: 32,
  macBytes: 32,
  signatureBytes: 64,
  /** A record signature made under an RW grant: grant ID (16) ‖ signature (64). */
  grantSignatureBytes: 80,
  /** A signed grant and a signed revocation (src/keys/grants.ts). */
  grantBytes: 175,
  revocationBytes: 109,
  /** Grants and revocations in one Grants message. */
  maxGrantsPerMessage: 1024,
  indexIdBytes: 8,
  /** Folders one device may claim in a handshake. */
  maxFolderClaims: 1024,
  maxPathBytes: 4096,
  maxNameBytes: 255,
  maxLinkTargetBytes: 4096,
  /** An ENC-facing record's sealed plaintext record (src/sync/enc-records.ts). */
  maxSealedBytes: 4 * 1024 * 1024,
  maxDeviceIdChars: 100,
  maxDeviceNameBytes: 256,
  maxSoftwareVersionBytes: 64,
  maxReasonBytes: 1024,
  /** Devices in one version vector. */
  maxVersionEntries: 1024,
  /** Largest version counter accepted (2^48, far below 2^53): MAX_VERSION_COUNTER in src/index/records.ts. */
  maxVersionCounter: 2 ** 48,
  /** mtimes a record may carry: years 0001 to 9999 (ms since the epoch): MIN/MAX_RECORD_MTIME_MS in src/index/records.ts. */
  minMtimeMs: -62_135_596_800_000,
  maxMtimeMs: 253_402_300_799_999,
  /** Blocks in one record: 64 Ki blocks of up to 16 MiB. */
  maxBlocksPerRecord: 65536,
  maxBlockSize: 16 * 1024 * 1024,
  /** Adjacent blocks one Request may name (their sizes add up to 16 MiB at most). */
  maxBlocksPerRequest: 128,
  /** Records in one Index / IndexUpdate (the frame limit bounds it further). */
  maxRecordsPerBatch: 10000,
  /** Devices in one PeerExchange, and addresses per device. */
  maxExchangedPeers: 64,
  maxExchangedAddresses: 8,
  /** Addresses in one IntroduceRequest / Introduce, and the longest start delay an introducer may ask for. */
  maxIntroduceAddresses: 8,
  maxIntroduceDelayMs: 5000,
  /** Hashing: its tag, and block hashes in one message. */
  hashingTagBytes: 16,
  maxHashingHashes: 1024,
  /** ClusterState.features: words, and bytes per word. */
  maxFeatures: 16,
  maxFeatureBytes: 32,
} as const;
