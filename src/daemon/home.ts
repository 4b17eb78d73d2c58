// The daemon's home: where it is, what lives in it, and the single-daemon lock.

import { mkdir, readFile, writeFile, rm, chmod } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { FerryError, ioError } from '../errors.js';

export interface HomeLayout {
  root: string;
  deviceDir: string;
  indexDir: string;
  /** Identity, folder keys and settings beside the index (portable.ts). */
  portableFile: string;
  controlSocket: string;
  pidFile: string;
}

/** `--home`, else FERRY_HOME, else ~/.local/share/ferry. */
export function resolveHome(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? env.FERRY_HOME ?? join(homedir(), '.local', 'share', 'ferry');
  return resolve(chosen);
}

export function homeLayout(root: string): HomeLayout {
  return {
    root,
    deviceDir: join(root, 'device'),
    indexDir: join(root, 'index'),
    portableFile: join(root, 'portable.json'),
    controlSocket: join(root, 'control.sock'),
    pidFile: join(root, 'daemon.pid'),
  };
}

/** Creates the home with owner-only permissions (it holds keys). */
export async function prepareHome(layout: HomeLayout): Promise<void> {
  try {
    await mkdir(layout.root, { recursive: true, mode: 0o700 });
    await chmod(layout.root, 0o700);
    await mkdir(layout.indexDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw ioError(`cannot prepare home ${layout.root}`, err);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the home for this process. A pid file left by a killed daemon is taken over; one whose
 * process is alive means another daemon runs on this home.
 */
export async function lockHome(layout: HomeLayout): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(layout.pidFile, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('cannot write pid file', err);
    }
    const pid = Number.parseInt(await readFile(layout.pidFile, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      throw new FerryError('DAEMON_RUNNING', `a Ferry daemon (pid ${pid}) already runs on home ${layout.root}`);
    }
    await rm(layout.pidFile, { force: true });
  }
  throw new FerryError('DAEMON_RUNNING', `cannot take the lock on home ${layout.root}`);
}

export async function unlockHome(layout: HomeLayout): Promise<void> {
  const pid = Number.parseInt(await readFile(layout.pidFile, 'utf8').catch(() => ''), 10);
  if (pid === process.pid) await rm(layout.pidFile, { force: true });
}
