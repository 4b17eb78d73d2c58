// Test helpers: run the real ferry CLI and daemon as child processes on temporary homes.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../src/cli/client.js';
import { DAEMON_ENV, DAEMON_V8_FLAGS } from '../../src/daemon/runtime.js';
import { DAEMON_START_LIMIT_MS, POLL_MS, WAIT_LIMIT_MS } from './wait.js';

export const MAIN = resolve(fileURLToPath(import.meta.url), '../../../src/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * What `ferry status --json` prints, asked over the home's control socket from this process. Tests poll status
 * every POLL_MS; a CLI process per poll cost ~0.2 CPU-s (1,698 of them: 331 of the 1,151 CPU-s of a `make test` on
 * 2 cores). The CLI's own status is tested in test/integration/cli.test.ts.
 */
export function controlStatus<T = StatusJson>(home: string): Promise<T> {
  return new ControlClient(home).call<T>('GET', '/status');
}

export function ferry(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `ferry-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A daemon child process whose log a timed-out wait should show. */
export interface LoggedDaemon {
  readonly home: string;
  readonly log: string;
}

/** Daemons of this test file still running: a wait that times out shows the end of their logs. */
const runningDaemons = new Set<LoggedDaemon>();

/** Lists `daemon` among the running ones until `exited` settles. */
export function trackDaemonLog(daemon: LoggedDaemon, exited: Promise<unknown>): void {
  runningDaemons.add(daemon);
  void exited.finally(() => runningDaemons.delete(daemon));
}
const LOG_LINES_ON_TIMEOUT = 40;

function runningDaemonLogs(): string {
  return [...runningDaemons]
    .map((daemon) => `\n--- daemon ${daemon.home}, last ${LOG_LINES_ON_TIMEOUT} log lines ---\n${daemon.log.split('\n').slice(-LOG_LINES_ON_TIMEOUT).join('\n')}`)
    .join('');
}

export async function waitFor<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = WAIT_LIMIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}${runningDaemonLogs()}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * `ferry run ARGS` as the launchers start it: node with the daemon's V8 flags (and `nodeFlags`,
 * e.g. --cpu-prof, which NODE_OPTIONS refuses), and the daemon's environment, where a variable
 * already set wins.
 */
export function daemonLaunch(args: string[], nodeFlags: string[] = []): { argv: string[]; env: NodeJS.ProcessEnv } {
  return { argv: [process.execPath, ...DAEMON_V8_FLAGS, ...nodeFlags, MAIN, 'run', ...args], env: { ...DAEMON_ENV, ...process.env } };
}

/** `--no-stun` unless the test names its own STUN server: tests never ask public ones. */
export function noStun(args: readonly string[]): string[] {
  return args.includes('--stun') ? [] : ['--no-stun'];
}

export class DaemonProcess {
  readonly child: ChildProcess;
  log = '';
  private readonly exitPromise: Promise<number | null>;

  /** `nodeFlags`: see daemonLaunch. */
  constructor(readonly home: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}, nodeFlags: string[] = []) {
    const launch = daemonLaunch(
      ['--home', home, '--web', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--no-lan', '--no-nat', '--no-dht', '--no-trackers', ...noStun(extraArgs), '--log-level', 'debug', ...extraArgs],
      nodeFlags,
    );
    this.child = spawn(launch.argv[0]!, launch.argv.slice(1), { env: { ...launch.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.exitPromise = new Promise((r) => this.child.on('close', (code) => r(code))); // 'close': after the last output, which 'exit' can precede
    trackDaemonLog(this, this.exitPromise);
  }

  /** Resolves when the control socket answers (`timeoutMs`: benchmarks on a loaded machine wait longer). */
  async ready(timeoutMs?: number): Promise<void> {
    await waitFor(
      async () => {
        if (this.child.exitCode !== null) throw new Error(`daemon exited early:\n${this.log}`);
        return controlStatus(this.home).then(() => true);
      },
      'daemon to start',
      timeoutMs ?? DAEMON_START_LIMIT_MS,
    );
  }

  status(): Promise<StatusJson> {
    return controlStatus(this.home);
  }

  exited(): Promise<number | null> {
    return this.exitPromise;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exitPromise;
  }
}

export interface StatusJson {
  device: { id: string; name: string };
  folders: Array<{
    id: string;
    path: string;
    access: string;
    state: string;
    localFiles: number;
    globalFiles: number;
    needFiles: number;
    needBytes: number;
    localBytes: number;
    peers: unknown[];
    watcher: { watchedDirs: number; unwatchedDirs: number; limitReached: boolean };
  }>;
}

/** The usual two-daemon start: `ferry share dirA` on `a`, its RW key joined into `dirB` on `b`, and `b` dialling `a`. */
export async function shareBetween(a: DaemonProcess, dirA: string, b: DaemonProcess, dirB: string): Promise<{ rw: string; folderId: string }> {
  const shared = await ferry(['share', dirA, '--json', '--home', a.home]);
  assert.equal(shared.code, 0, shared.stderr);
  const keys = JSON.parse(shared.stdout) as { rw: string; folderId: string };
  const joined = await ferry(['join', keys.rw, dirB, '--home', b.home]);
  assert.equal(joined.code, 0, joined.stderr);
  const { listen } = (await a.status()) as StatusJson & { listen: string };
  const added = await ferry(['peers', 'add', listen, '--home', b.home]);
  assert.equal(added.code, 0, added.stderr);
  return keys;
}
