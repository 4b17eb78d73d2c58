// A disappearing volume (the NAS case: a USB disk unplugged, a share unmounted) under real daemons: the
// folder's root goes away, or is suddenly an empty directory of the parent filesystem, while a peer
// changes the folder. The folder stops with a clear status ("folder path missing" / "folder marker
// missing"), announces no deletion, writes and archives nothing; a restart meanwhile starts it stopped;
// when the volume returns it resumes on its own and no data is lost on either side.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { DaemonProcess, removeDir, shareBetween, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { describeTree } from '../helpers/tree.js';

interface FolderStatus {
  path: string;
  state: string;
  error?: string;
  needFiles: number;
  localFiles: number;
}

async function folderOf(daemon: DaemonProcess): Promise<FolderStatus> {
  const status = (await daemon.status()) as unknown as { folders: FolderStatus[] };
  return status.folders[0]!;
}

async function archived(dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, '.ferry', 'archive'), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(join(dir, '.ferry', 'archive').length + 1));
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

interface Volume {
  /** What the folder shows while the volume is gone. */
  expected: RegExp;
  /** Where the folder's files are while it is gone (they must stay untouched there), when they can be looked at. */
  aside?: string;
  unplug(): Promise<void>;
  replug(): Promise<void>;
}

const KEEP = ['keep-1.txt', 'keep-2.txt', 'sub/keep-3.txt'];

/** `restart`: b is restarted while the volume is gone (it then starts stopped, and starts late); else it runs throughout. */
async function unplugCase(restart: boolean, makeVolume: (base: string, dirB: string) => Promise<{ dirB: string; volume: Volume }>): Promise<void> {
  const base = await tempDir('volume');
  cleanups.push(() => removeDir(base));
  const dirA = join(base, 'a');
  await mkdir(join(dirA, 'sub'), { recursive: true });
  for (const rel of KEEP) await writeFile(join(dirA, rel), `${rel}\n`);
  await writeFile(join(dirA, 'doomed.txt'), 'deleted on a while b is away\n');
  await writeFile(join(dirA, 'edit.txt'), 'first version\n');
  const { dirB, volume } = await makeVolume(base, join(base, 'b'));

  const a = new DaemonProcess(join(base, 'home-a'));
  let b = new DaemonProcess(join(base, 'home-b'));
  cleanups.push(() => a.stop(), () => b.stop());
  await Promise.all([a.ready(), b.ready()]);
  await shareBetween(a, dirA, b, dirB);
  await waitFor(async () => existsSync(join(dirB, 'doomed.txt')) && existsSync(join(dirB, 'sub/keep-3.txt')) && (await folderOf(b)).state === 'idle', 'the first sync');

  // The volume goes; a changes the folder meanwhile: a deletion, an edit, a new file.
  await volume.unplug();
  await rm(join(dirA, 'doomed.txt'));
  await writeFile(join(dirA, 'edit.txt'), 'second version, made while b is away\n');
  await writeFile(join(dirA, 'new.txt'), 'new while b is away\n');
  // The puller's volume check can report the error while a scan that began before the unplug still
  // runs (state "scanning" until it fails on the missing volume too): both are waited for.
  const stopped = await waitFor(async () => {
    const folder = await folderOf(b);
    return volume.expected.test(folder.error ?? '') && folder.state === 'error' ? folder : undefined;
  }, `b to report ${volume.expected} and stop`);
  assert.equal(stopped.state, 'error');

  if (restart) {
    // A restart while the volume is gone starts the folder stopped, saying why.
    await b.stop();
    b = new DaemonProcess(join(base, 'home-b'));
    await b.ready();
    await waitFor(async () => volume.expected.test((await folderOf(b)).error ?? ''), `b, restarted, to report ${volume.expected}`);
  }

  // Nothing was written where the volume was, nothing archived or deleted on it, no deletion announced.
  if (existsSync(dirB)) assert.deepEqual(await readdir(dirB), [], 'nothing written into the empty mount point');
  if (volume.aside) {
    assert.equal(await readFile(join(volume.aside, 'doomed.txt'), 'utf8'), 'deleted on a while b is away\n');
    assert.equal(await readFile(join(volume.aside, 'edit.txt'), 'utf8'), 'first version\n');
    assert.deepEqual(await archived(volume.aside), []);
  }
  for (const rel of KEEP) assert.equal(await readFile(join(dirA, rel), 'utf8'), `${rel}\n`, `${rel} is still on a`);
  assert.deepEqual(await archived(dirA), [], 'a archived nothing: b announced no deletion');

  // The volume returns: b resumes on its own (no restart), both sides agree, nothing lost.
  await volume.replug();
  await waitFor(async () => {
    const [treeA, treeB] = await Promise.all([describeTree(dirA), describeTree(dirB)]);
    if (JSON.stringify(treeA) !== JSON.stringify(treeB)) return false;
    const [fa, fb] = await Promise.all([folderOf(a), folderOf(b)]);
    return fa.state === 'idle' && fb.state === 'idle' && fb.needFiles === 0;
  }, 'both sides to agree once the volume is back');
  assert.equal(existsSync(join(dirB, 'doomed.txt')), false);
  assert.equal(await readFile(join(dirB, 'edit.txt'), 'utf8'), 'second version, made while b is away\n');
  assert.equal(await readFile(join(dirB, 'new.txt'), 'utf8'), 'new while b is away\n');
  for (const rel of KEEP) assert.equal(await readFile(join(dirA, rel), 'utf8'), `${rel}\n`);
  const kept = await archived(dirB);
  assert.ok(kept.some((name) => name.startsWith('doomed.txt~')), `the deleted file is in b's archive: ${kept.join(', ')}`);
  assert.ok(kept.some((name) => name.startsWith('edit.txt~')), `the replaced version is in b's archive: ${kept.join(', ')}`);
  assert.equal(existsSync(join(dirA, 'doomed.txt')), false, 'the deletion stands (b did not bring it back)');

  // b watches the volume as it is now: an edit there reaches a (the periodic rescan is an hour away).
  await writeFile(join(dirB, 'after.txt'), 'made on b once the volume is back\n');
  await waitFor(async () => (await readFile(join(dirA, 'after.txt'), 'utf8').catch(() => '')) === 'made on b once the volume is back\n', 'an edit on b after the return to reach a');
}

describe('a disappearing volume', () => {
  test('the folder path renamed away: "folder path missing", nothing deleted or written, resumes when it is back', () =>
    unplugCase(false, async (base, dirB) => {
      const aside = join(base, 'b-unplugged');
      return {
        dirB,
        volume: {
          expected: /folder path missing/,
          aside,
          unplug: () => rename(dirB, aside),
          replug: () => rename(aside, dirB),
        },
      };
    }));

  test('the folder path an empty directory now, the daemon restarted meanwhile: "folder marker missing", nothing written into it, starts when it is back', () =>
    unplugCase(true, async (base, dirB) => {
      const aside = join(base, 'b-unplugged');
      return {
        dirB,
        volume: {
          expected: /folder marker missing/,
          aside,
          unplug: async () => {
            await rename(dirB, aside);
            await mkdir(dirB);
          },
          replug: async () => {
            await rmdir(dirB);
            await rename(aside, dirB);
          },
        },
      };
    }));

  test('a mounted volume unmounted during sync (a bind mount, as root): "folder marker missing", resumes when mounted again', { skip: needs.root() }, () =>
    unplugCase(false, async (base, dirB) => {
      const disk = join(base, 'disk');
      await mkdir(disk);
      await mkdir(dirB);
      execFileSync('mount', ['--bind', disk, dirB]);
      let mounted = true;
      cleanups.push(async () => {
        if (mounted) execFileSync('umount', ['-l', dirB]);
      });
      return {
        dirB,
        volume: {
          expected: /folder marker missing/,
          aside: disk,
          unplug: async () => {
            execFileSync('umount', ['-l', dirB]); // lazy: the daemon's watches and open directories do not hold it
            mounted = false;
          },
          replug: async () => {
            execFileSync('mount', ['--bind', disk, dirB]);
            mounted = true;
          },
        },
      };
    }));

  test('a loop-mounted ext4 disk unmounted and mounted again (as root): "folder marker missing", resumes, watched again', { skip: needs.root() }, () =>
    unplugCase(false, async (base, dirB) => {
      const image = join(base, 'disk.img');
      execFileSync('truncate', ['-s', '32M', image]);
      execFileSync('mkfs.ext4', ['-q', '-F', image]);
      await mkdir(dirB);
      execFileSync('mount', ['-o', 'loop', image, dirB]);
      await rmdir(join(dirB, 'lost+found'));
      let mounted = true;
      cleanups.push(async () => {
        if (mounted) execFileSync('umount', ['-l', dirB]);
      });
      return {
        dirB,
        volume: {
          expected: /folder marker missing/,
          // (the disk's files are not looked at while it is away: a second mount of the image would race the loop device's release)
          unplug: async () => {
            // Unplugged for real: a plain umount, so the next mount is a new file system instance the old
            // watches do not see. The daemon holds a directory of the folder open at most 1 s after its
            // last use (src/scan/disk-path.ts HeldDirs): busy until then, never longer.
            await waitFor(async () => {
              try {
                execFileSync('umount', [dirB], { stdio: 'pipe' });
                return true;
              } catch (err) {
                if (/busy/.test(String((err as { stderr?: Buffer }).stderr ?? ''))) return false;
                throw err;
              }
            }, 'the disk to unmount (nothing of the folder held open)', 15_000);
            mounted = false;
          },
          replug: async () => {
            execFileSync('mount', ['-o', 'loop', image, dirB]);
            mounted = true;
          },
        },
      };
    }));
});
