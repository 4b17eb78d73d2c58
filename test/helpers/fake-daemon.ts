// A typed test double of the daemon's API: every method throws `NAME: not in this fake` unless the test gives its own.

import type { DaemonApi } from '../../src/web/daemon-api.js';

/** A method a test did not give: calling it is a test bug, said plainly. */
function notInFake(name: keyof DaemonApi): () => never {
  return () => {
    throw new Error(`${name}: not in this fake`);
  };
}

/**
 * A DaemonApi whose methods are `overrides` and, for every other method, one that throws. The list
 * below names each method of DaemonApi: tsc fails here when the interface gains one.
 */
export function fakeDaemon(overrides: Partial<DaemonApi> = {}): DaemonApi {
  const unimplemented: DaemonApi = {
    status: notInFake('status'),
    share: notInFake('share'),
    join: notInFake('join'),
    joinCheck: notInFake('joinCheck'),
    conflicts: notInFake('conflicts'),
    resolveConflict: notInFake('resolveConflict'),
    keys: notInFake('keys'),
    removeFolder: notInFake('removeFolder'),
    rescan: notInFake('rescan'),
    addPeer: notInFake('addPeer'),
    addedPeers: notInFake('addedPeers'),
    removePeer: notInFake('removePeer'),
    revert: notInFake('revert'),
    grant: notInFake('grant'),
    revokeGrant: notInFake('revokeGrant'),
    grants: notInFake('grants'),
    setFolderOptions: notInFake('setFolderOptions'),
    selection: notInFake('selection'),
    setSelection: notInFake('setSelection'),
    versions: notInFake('versions'),
    restoreVersion: notInFake('restoreVersion'),
    archivePlan: notInFake('archivePlan'),
    pauseFolder: notInFake('pauseFolder'),
    resumeFolder: notInFake('resumeFolder'),
    archive: notInFake('archive'),
    restoreArchived: notInFake('restoreArchived'),
    purgeArchive: notInFake('purgeArchive'),
    restoreArchivedAll: notInFake('restoreArchivedAll'),
    applyDeletions: notInFake('applyDeletions'),
    restoreDeletions: notInFake('restoreDeletions'),
    peers: notInFake('peers'),
    getSettings: notInFake('getSettings'),
    updateSettings: notInFake('updateSettings'),
    logTail: notInFake('logTail'),
    adminPasswordHash: notInFake('adminPasswordHash'),
    setAdminPasswordHash: notInFake('setAdminPasswordHash'),
    adminSetupCode: notInFake('adminSetupCode'),
    webSessionKey: notInFake('webSessionKey'),
    revokedWebSessions: notInFake('revokedWebSessions'),
    setRevokedWebSessions: notInFake('setRevokedWebSessions'),
    localFolders: notInFake('localFolders'),
    appPasswords: notInFake('appPasswords'),
    setAppPasswords: notInFake('setAppPasswords'),
  };
  return { ...unimplemented, ...overrides };
}
