// Helpers of the dist checks (make dist-check): dist/ paths, running a target's executable (under qemu-user on ARM), daemons on temp homes.

import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_V8_FLAGS } from '../../src/daemon/runtime.js';
import { needs, type Skip } from '../helpers/needs.js';

export const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');
export const DIST = join(ROOT, 'dist');
export const CACHE = process.env.FERRY_DIST_CACHE || join(ROOT, 'build', 'dist-cache');

interface Target {
  /** `package` from the npm registry (a single executable), or `debian`: Debian's nodejs run from a tree (runtime.mjs). */
  node: { package?: string; debian?: string; version: string };
  nodeArch: string;
  debianArch: string;
  loader: string;
  qemu: string | null;
  uname: string[];
  synologyArch: string;
  qnapArch: string;
}
export const VERSIONS = JSON.parse(readFileSync(join(ROOT, 'packaging', 'versions.json'), 'utf8')) as {
  targets: Record<string, Target>;
};
export const TARGETS = Object.keys(VERSIONS.targets);
export const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** True when the target runs Debian's nodejs from a tree (dist/ferry-linux-<target>.tar.gz), not a single executable. */
export function isDebianRuntime(target: string): boolean {
  return Boolean(VERSIONS.targets[target]!.node.debian);
}

/** What make dist publishes as the target's program: the single executable, or the Debian runtime's tarball. */
export function executable(target: string): string {
  const path = join(DIST, `ferry-linux-${target}${isDebianRuntime(target) ? '.tar.gz' : ''}`);
  if (!existsSync(path)) throw new Error(`${path} is missing: run make dist first`);
  return path;
}

/** A Debian-runtime target's tarball, unpacked once per tarball into the cache; returns its folder (bin/, lib/). */
export function runtimeTree(target: string): string {
  const tarball = executable(target);
  const dir = join(CACHE, 'unpacked', target);
  const st = statSync(tarball);
  const stampFile = join(dir, '.tarball');
  const stamp = `${st.size} ${st.mtimeMs}`;
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    ok(runSync('tar', ['xzf', tarball, '-C', dir]), 'tar xzf');
    writeFileSync(stampFile, stamp);
  }
  return join(dir, `ferry-linux-${target}`);
}

/**
 * How the launcher (packaging/nas/ferry-launch) starts a Debian runtime in `tree` (a path as the process sees it),
 * as one argv: fd BUILTINS_FD must be open on `<tree>/lib/nodejs` (see runtimeCommand).
 */
export function runtimeArgv(target: string, tree: string): string[] {
  const t = VERSIONS.targets[target]!;
  return [`${tree}/lib/${t.loader}`, '--library-path', `${tree}/lib`, `${tree}/lib/node`, ...DAEMON_V8_FLAGS, `${tree}/lib/ferry.cjs`];
}

/** The launcher's fd for Debian's builtins (packaging/build/nas.mjs BUILTINS_FD). */
export const BUILTINS_FD = 9;

/** `sh -c` that opens fd BUILTINS_FD on `dir` (a host path), then runs `argv`, as the launcher does before its exec. */
export function withBuiltinsFd(dir: string, argv: string[]): [string, string[]] {
  return ['/bin/sh', ['-c', `exec ${BUILTINS_FD}<"$0" && exec "$@"`, dir, ...argv]];
}

export function sysroot(target: string): string {
  return join(CACHE, 'sysroot', VERSIONS.targets[target]!.debianArch);
}

/** A target's tests where its emulator (qemu-user, for ARM) is missing: the skip reason (under CI, a failure). */
export function needsEmulator(target: string): Skip {
  const qemu = VERSIONS.targets[target]!.qemu;
  return qemu ? needs.command(qemu, 'qemu-user-static') : false;
}

/** argv that runs a target's executable here: directly on x64, under qemu-user with Debian's libraries on ARM. */
export function command(target: string, args: string[]): [string, string[]] {
  const t = VERSIONS.targets[target]!;
  if (isDebianRuntime(target)) {
    // The launcher itself refuses this machine's CPU by name: its exec line, under qemu-user.
    const tree = runtimeTree(target);
    return withBuiltinsFd(join(tree, 'lib', 'nodejs'), [...(t.qemu ? [t.qemu] : []), ...runtimeArgv(target, tree), ...args]);
  }
  return t.qemu ? [t.qemu, ['-L', sysroot(target), executable(target), ...args]] : [executable(target), args];
}

/** Each test gets its own native cache so checks do not depend on one another. */
export function tempDir(t: { after(fn: () => void): void }, prefix = 'ferry-dist-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  /** Only `env`, nothing inherited (a chroot has none of this machine's files, e.g. NODE_EXTRA_CA_CERTS). */
  cleanEnv?: boolean;
  input?: string;
  cwd?: string;
  timeoutMs?: number;
}

export function runSync(cmd: string, args: string[], options: RunOptions = {}): SpawnSyncReturns<string> {
  const result = spawnSync(cmd, args, {
    encoding: 'utf8',
    env: options.cleanEnv ? { ...options.env } : { ...process.env, ...options.env },
    input: options.input,
    cwd: options.cwd,
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 1 << 26,
  });
  if (result.error) throw result.error;
  return result;
}

export function ok(result: SpawnSyncReturns<string>, what: string): string {
  if (result.status !== 0) throw new Error(`${what} exited ${result.status} (${result.signal ?? ''}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Interval between two looks of a polling wait here (each look runs the CLI, under qemu on ARM). */
const POLL_MS = 500;

/** A `ferry run` of one target's executable on a temp home, stopped by the test. */
export class DistDaemon {
  readonly child: ChildProcess;
  log = '';

  constructor(readonly target: string, readonly home: string, readonly env: NodeJS.ProcessEnv = {}, extra: string[] = []) {
    const [cmd, args] = command(target, [
      'run', '--home', home, '--listen', '127.0.0.1:0', '--web', '127.0.0.1:0', '--no-lan', '--no-nat', '--no-dht', '--no-trackers', ...extra,
    ]);
    this.child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
  }

  cli(args: string[], input?: string): SpawnSyncReturns<string> {
    const [cmd, argv] = command(this.target, [...args, '--home', this.home]);
    return runSync(cmd, argv, { env: this.env, input });
  }

  /** Waits until the control socket answers `status --json` (qemu makes start-up slow). */
  async ready(timeoutMs = 90_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`daemon exited ${this.child.exitCode}:\n${this.log}`);
      const r = this.cli(['status', '--json']);
      if (r.status === 0) return JSON.parse(r.stdout) as Record<string, unknown>;
      if (Date.now() > deadline) throw new Error(`daemon not ready:\n${this.log}\n${r.stderr}`);
      await sleep(POLL_MS);
    }
  }

  webAddress(): string {
    const status = JSON.parse(ok(this.cli(['status', '--json']), 'status')) as { web?: string };
    if (!status.web) throw new Error(`no web address in status:\n${this.log}`);
    return status.web;
  }

  /** The process's resident set (KiB); under qemu this includes the emulator's own. */
  rssKiB(): number {
    const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    return Number(status.match(/VmRSS:\s+(\d+)/)![1]);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}

export async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(POLL_MS);
  }
}
