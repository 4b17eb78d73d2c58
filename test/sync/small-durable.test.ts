// Small files on the receiver (issue 29): a new file of one block is created and written without O_DSYNC,
// and its install batch fdatasyncs it before its rename, once, so a crash leaves the old file or the new one.

import assert from 'node:assert/strict';
import { constants, readlinkSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, afterEach, test } from 'node:test';
import { NODE_FILE_IO, type FileIo } from '../../src/util/file-io.js';
import { connect, converged, makeDevice, newFolder, randomContent, runCleanups, until, type Cleanups } from './helpers.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

const TEMP = /^\.ferry-tmp-/;

interface IoEvent {
  op: 'open' | 'fdatasync' | 'fsync' | 'rename';
  /** The entry's name (the temp file's for open, fdatasync, fsync and the rename's source). */
  name: string;
  flags?: number;
  to?: string;
}

/** node:fs, recording the calls on temp files in the order they completed. */
function recordingIo(events: IoEvent[]): FileIo {
  const nameOf = (fd: number): string => {
    try {
      return basename(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      return '?';
    }
  };
  return {
    ...NODE_FILE_IO,
    async open(path, flags, mode) {
      const fd = await NODE_FILE_IO.open(path, flags, mode);
      events.push({ op: 'open', name: basename(path), flags });
      return fd;
    },
    openSync(path, flags, mode) {
      const fd = NODE_FILE_IO.openSync(path, flags, mode);
      events.push({ op: 'open', name: basename(path), flags });
      return fd;
    },
    async fdatasync(fd) {
      const name = nameOf(fd);
      await NODE_FILE_IO.fdatasync(fd);
      events.push({ op: 'fdatasync', name });
    },
    async fsync(fd) {
      const name = nameOf(fd);
      await NODE_FILE_IO.fsync(fd);
      events.push({ op: 'fsync', name });
    },
    renameSync(from, to) {
      NODE_FILE_IO.renameSync(from, to);
      events.push({ op: 'rename', name: basename(from), to: basename(to) });
    },
  };
}

test('new small files: written without O_DSYNC, each fdatasynced once and before its rename into place', async () => {
  const FILES = 60;
  const keys = newFolder();
  const events: IoEvent[] = [];
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys, io: recordingIo(events) });
  await connect(cleanups, alice, bob);
  await mkdir(join(alice.root, 'd'));
  const contents = Array.from({ length: FILES }, (_, i) => randomContent(4096, 100 + i));
  await Promise.all(contents.map((content, i) => writeFile(join(alice.root, 'd', `f${i}.bin`), content)));
  await alice.scan();
  await converged([alice, bob], () => bob.sync.report().state === 'idle' && bob.sync.report().needFiles === 0);
  for (let i = 0; i < FILES; i++) assert.deepEqual(await readFile(join(bob.root, 'd', `f${i}.bin`)), contents[i]);

  const renames = events.filter((event) => event.op === 'rename' && TEMP.test(event.name));
  // The temp files renamed into place (the folder's own probes use the prefix too).
  const names = new Set(renames.map((event) => event.name));
  const temps = events.filter((event) => names.has(event.name));
  const opens = temps.filter((event) => event.op === 'open');
  assert.equal(opens.length, FILES, 'each temp file created once');
  for (const open of opens) assert.equal((open.flags ?? 0) & constants.O_DSYNC, 0, 'no O_DSYNC write per small file');
  assert.equal(temps.filter((event) => event.op === 'fsync').length, 0, 'no fsync per small file');
  assert.equal(renames.length, FILES);
  assert.equal(temps.filter((event) => event.op === 'fdatasync').length, FILES, 'one fdatasync per file');
  for (const rename of renames) {
    const synced = events.findIndex((event) => event.op === 'fdatasync' && event.name === rename.name);
    assert.ok(synced >= 0 && synced < events.indexOf(rename), `${rename.to}: its data was durable before the rename`);
  }
});

test('files fetched while a batch is made durable: a fetch slot is free once the content is in its temp file', async () => {
  const FILES = 40;
  const SLOTS = 4;
  const keys = newFolder();
  const events: IoEvent[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const base = recordingIo(events);
  // Every fdatasync waits for the gate: the first install batch cannot finish before it opens.
  const io: FileIo = { ...base, fdatasync: async (fd) => gate.then(() => base.fdatasync(fd)) };
  const alice = await makeDevice(cleanups, { name: 'alice', keys });
  const bob = await makeDevice(cleanups, { name: 'bob', keys, io, limits: { maxFilesInFlight: SLOTS } });
  await connect(cleanups, alice, bob);
  const contents = Array.from({ length: FILES }, (_, i) => randomContent(4096, 300 + i));
  await Promise.all(contents.map((content, i) => writeFile(join(alice.root, `g${i}.bin`), content)));
  await alice.scan();
  const created = (): number => events.filter((event) => event.op === 'open' && TEMP.test(event.name) && (event.flags ?? 0) & constants.O_CREAT).length;
  // Far more temp files are written than there are fetch slots while no install can finish.
  await until(() => created() >= 4 * SLOTS);
  assert.equal(events.filter((event) => event.op === 'rename' && TEMP.test(event.name)).length, 0, 'nothing renamed before its fdatasync');
  release();
  await converged([alice, bob], () => bob.sync.report().state === 'idle' && bob.sync.report().needFiles === 0);
  for (let i = 0; i < FILES; i++) assert.deepEqual(await readFile(join(bob.root, `g${i}.bin`)), contents[i]);
});
