// Opens the home's index, and rebuilds it from the portable file when it cannot be used: written by
// another word size, another schema, or damaged. The old index is set aside, never deleted.

import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError, ioError } from '../errors.js';
import { checkIndexFile, type IndexFileProblem } from '../index/lmdb-header.js';
import { settleRepack } from '../index/repack.js';
import { IndexStore, type IndexStoreOptions } from '../index/store.js';
import { CERT_FILE, KEY_FILE } from '../keys/index.js';
import type { Logger } from '../util/log.js';
import type { HomeLayout } from './home.js';
import {
  PortableMirror, VOLATILE_SETTINGS, importPortable, readDeviceFiles, readPortable, setPortableAside, snapshotHome, stamp, type PortableHome,
} from './portable.js';

/** What happened to an index that could not be used (status: homeRecovered). */
export interface HomeRecovery {
  problem: IndexFileProblem | 'schema' | 'unreadable';
  detail: string;
  /** Where the old index now is. */
  setAside: string;
  atMs: number;
  /** Whether folders, keys and settings came back from the portable file (false: there was none). */
  fromPortable: boolean;
}

export interface HomeIndex {
  store: IndexStore;
  mirror: PortableMirror;
  recovered?: HomeRecovery;
}

type StoreOptions = Omit<IndexStoreOptions, 'path' | 'onConfigWrite'>;

/** Moves the index directory aside as `index-broken-<time>` and makes a new empty one. */
async function setIndexAside(layout: HomeLayout, when: Date): Promise<string> {
  let aside = join(layout.root, `index-broken-${stamp(when)}`);
  for (let n = 2; ; n++) {
    try {
      await rename(layout.indexDir, aside);
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'EEXIST' && code !== 'ENOTEMPTY') || n > 20) throw ioError(`cannot set the index aside as ${aside}`, err);
      aside = join(layout.root, `index-broken-${stamp(when)}-${n}`);
    }
  }
  await mkdir(layout.indexDir, { mode: 0o700 });
  return aside;
}

/** Puts the device key and certificate back from the portable file when the home lost them (never replaces one). */
async function restoreDeviceFiles(layout: HomeLayout, home: PortableHome, logger: Logger): Promise<void> {
  if (!home.device || (await readDeviceFiles(layout.deviceDir).catch(() => undefined))) return;
  await mkdir(layout.deviceDir, { recursive: true, mode: 0o700 });
  try {
    await writeFile(join(layout.deviceDir, KEY_FILE), home.device.keyPem, { flag: 'wx', mode: 0o600 });
    await writeFile(join(layout.deviceDir, CERT_FILE), home.device.certPem, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return; // a key is there: it wins, and says so if damaged
    throw ioError('cannot restore the device identity', err);
  }
  logger.warn('device identity restored from the portable home file', { id: home.device.id });
}

/**
 * Opens `<home>/index`. Before LMDB opens it, its meta pages are checked; an index of another word
 * size, format or schema, or a damaged one, is set aside and a new one is filled from
 * `<home>/portable.json` (folders rescan their disks, peers send their indexes again). A home
 * without the portable file gets one written.
 */
export async function openHomeIndex(layout: HomeLayout, logger: Logger, options: StoreOptions = {}): Promise<HomeIndex> {
  let portable: PortableHome | undefined;
  try {
    portable = await readPortable(layout.portableFile);
  } catch (err) {
    if (!(err instanceof FerryError) || err.code !== 'INDEX_CORRUPT') throw err;
    const aside = await setPortableAside(layout.portableFile);
    logger.error('the portable home file is damaged; set it aside and writing a new one from the index', { aside, err });
  }
  if (portable?.skipped) logger.error('portable.json: malformed records left out', { records: portable.skipped.join('; ') });
  if (portable) await restoreDeviceFiles(layout, portable, logger);

  let store: IndexStore | undefined;
  let importing = false;
  const mirror = new PortableMirror(
    layout.portableFile,
    async () => snapshotHome(store!, await readDeviceFiles(layout.deviceDir)),
    logger,
  );
  const makeStore = (): IndexStore =>
    new IndexStore({
      ...options,
      path: layout.indexDir,
      logger: logger.child('index'),
      onConfigWrite: ({ setting }) => (importing || (setting !== undefined && VOLATILE_SETTINGS.has(setting)) ? undefined : mirror.save()),
    });

  let recovered: HomeRecovery | undefined;
  const setAside = async (problem: HomeRecovery['problem'], detail: string): Promise<void> => {
    const when = new Date();
    const aside = await setIndexAside(layout, when);
    recovered = { problem, detail, setAside: aside, atMs: when.getTime(), fromPortable: portable !== undefined };
  };

  // A repack that a stop interrupted is finished first, so the check sees the index the store will open.
  await settleRepack(layout.indexDir, logger);
  const check = await checkIndexFile(join(layout.indexDir, 'data.mdb'));
  const fresh = check === undefined;
  if (check && !check.ok) await setAside(check.problem, check.detail);

  store = makeStore();
  try {
    await store.open();
  } catch (err) {
    // The header was sound, but LMDB or the schema refused it. Without a portable file an index of
    // a newer Ferry stays where it is (upgrading Ferry reads it); with one, the home goes on.
    const schema = err instanceof FerryError && err.code === 'INDEX_SCHEMA';
    if (recovered || !portable || !(schema || (err instanceof FerryError && err.code === 'IO'))) throw err;
    await setAside(schema ? 'schema' : 'unreadable', (err as Error).message);
    store = makeStore();
    await store.open();
  }

  if (recovered || fresh) {
    importing = true;
    try {
      if (portable) await importPortable(store, portable);
    } finally {
      importing = false;
    }
  }
  if (recovered) {
    logger.error(
      recovered.fromPortable
        ? 'home index could not be used: set aside and rebuilt from portable.json (folders rescan, peers resend)'
        : 'home index could not be used: set aside; there was no portable.json, so folders must be joined again (their keys are in the old index)',
      { problem: recovered.problem, detail: recovered.detail, setAside: recovered.setAside },
    );
  } else if (fresh && portable) {
    logger.warn('new index filled from portable.json', { folders: portable.folders.length });
  }
  // Written now in every case: a home from before the portable file (migration), a rebuilt one, a fresh one.
  await mirror.save();
  return { store, mirror, ...(recovered ? { recovered } : {}) };
}
