// Test helpers for the discovery netlab tests: lab scripts up/down under a prefix, and `ferry run`
// daemons on the host or inside a lab namespace, reached through the control socket in their home.

import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join as joinPath, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { controlStatus, daemonLaunch, ferry, noStun, removeDir, tempDir, trackDaemonLog, waitFor, type CliResult } from '../helpers/daemon.js';
import { DAEMON_START_LIMIT_MS } from '../helpers/wait.js';

import { NETLAB } from '../helpers/needs.js';

export { NETLAB };

export type LabEnv = Record<string, string>;

/** `SCRIPT up ARGS…` under its own prefix; a failing `up` throws, and so fails the test. */
export function labUp(script: string, prefix: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): LabEnv {
  const out = execFileSync(`${NETLAB}/${script}`, ['up', ...args], {
    encoding: 'utf8',
    env: { ...process.env, NETLAB_PREFIX: prefix, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => {
        const i = line.indexOf('=');
        return [line.slice(0, i), line.slice(i + 1).replace(/^"|"$/g, '')];
      }),
  );
}

/** The project's own emulated internet (routers, NATs, a public host: test/netlab/inet.sh). */
const INET = resolve(fileURLToPath(import.meta.url), '../../../../test/netlab/inet.sh');

/** inet.sh `up` or `down` under a prefix with its NETLAB_INET_* settings; `up` returns the lab's addresses. */
export function inet(command: 'up' | 'down', prefix: string, settings: Record<string, string>): LabEnv {
  const out = execFileSync(INET, [command], { encoding: 'utf8', env: { ...process.env, NETLAB_PREFIX: prefix, ...settings }, stdio: ['ignore', 'pipe', 'pipe'] });
  return Object.fromEntries(out.trim().split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** One inet.sh lab for the tests of a describe block, and the daemons they start in it. */
export interface InetSuite {
  /** The lab's addresses and namespaces (set before the first test). */
  readonly lab: LabEnv;
  /** A temporary directory for homes and folders, removed afterwards. */
  readonly base: string;
  /** A daemon in namespace `ns` on the sync port, LAN, DHT and trackers off, STUN against the lab's server. */
  node(name: string, ns: string, args?: string[]): FerryNode;
}

/**
 * Registers the block's hooks: the lab up before its tests (after a `down`, in case a killed run left one; then
 * `afterUp`), and after them every daemon stopped, the lab down, the directory removed. Call inside `describe`.
 */
export function inetSuite(prefix: string, settings: Record<string, string>, afterUp?: (lab: LabEnv) => void): InetSuite {
  let lab: LabEnv | undefined;
  let base: string | undefined;
  const nodes: FerryNode[] = [];
  before(async () => {
    inet('down', prefix, settings);
    lab = inet('up', prefix, settings);
    afterUp?.(lab);
    base = await tempDir(prefix);
  });
  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    inet('down', prefix, settings);
    if (base) await removeDir(base);
  });
  const suite: InetSuite = {
    get lab(): LabEnv {
      if (!lab) throw new Error('the lab is not up yet');
      return lab;
    },
    get base(): string {
      if (!base) throw new Error('the lab is not up yet');
      return base;
    },
    node(name, ns, args = []) {
      const created = new FerryNode(joinPath(suite.base, `home-${name}`), {
        ns,
        listen: `0.0.0.0:${INET_SYNC_PORT}`,
        args: ['--no-lan', '--no-dht', '--no-trackers', '--stun', suite.lab.NETLAB_INET_STUN_ADDR!, ...args],
      });
      nodes.push(created);
      return created;
    },
  };
  return suite;
}

/** Folders of a relay trio: F1 (A's, C holds it with the ENC key so that it relays for A and B) and F2 (A and B only). */
export interface RelayTrio {
  a: FerryNode;
  b: FerryNode;
  c: FerryNode;
  dirs: Record<'a1' | 'a2' | 'b1' | 'b2' | 'c1', string>;
  f1: SharedKeys;
  f2: SharedKeys;
  idA: string;
  idB: string;
  /** C's sync address, as A and B were given it. */
  cAddress: string;
}
type SharedKeys = { rw: string; ro: string; enc: string; folderId: string };

/**
 * A behind NAT 1, B behind NAT 2, C public: A shares F1 (C joins with the ENC key, B with RW) and
 * F2 (B only, with `keyB`); A and B are given C's address. `name` prefixes homes and folders.
 */
export async function relayTrio(suite: InetSuite, name: string, options: { argsC?: string[]; keyB?: 'rw' | 'enc' } = {}): Promise<RelayTrio> {
  const dirs = Object.fromEntries(['a1', 'a2', 'b1', 'b2', 'c1'].map((d) => [d, joinPath(suite.base, `${name}-${d}`)])) as RelayTrio['dirs'];
  for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
  const a = suite.node(`${name}-a`, suite.lab.NETLAB_INET_H1a_NS!);
  const b = suite.node(`${name}-b`, suite.lab.NETLAB_INET_H2a_NS!);
  const c = suite.node(`${name}-c`, suite.lab.NETLAB_INET_PUBLIC_NS!, options.argsC ?? []);
  await Promise.all([a.ready(), b.ready(), c.ready()]);
  const shareOn = async (dir: string): Promise<SharedKeys> => {
    const shared = await a.cli(['share', dir, '--json']);
    if (shared.code !== 0) throw new Error(`share ${dir}: ${shared.stderr}`);
    return JSON.parse(shared.stdout) as SharedKeys;
  };
  const f1 = await shareOn(dirs.a1);
  const f2 = await shareOn(dirs.a2);
  await join(c, f1.enc, dirs.c1);
  await join(b, f1.rw, dirs.b1);
  await join(b, f2[options.keyB ?? 'rw'], dirs.b2);
  const [idA, idB] = await Promise.all([a, b].map(async (n) => ((await n.status()) as unknown as { device: { id: string } }).device.id));
  const cAddress = `${suite.lab.NETLAB_INET_PUBLIC_ADDR}:${INET_SYNC_PORT}`;
  for (const n of [a, b]) {
    const added = await n.cli(['peers', 'add', cAddress]);
    if (added.code !== 0) throw new Error(`peers add ${cAddress}: ${added.stderr}`);
  }
  return { a, b, c, dirs, f1, f2, idA: idA!, idB: idB!, cAddress };
}

/** The sync port of the daemons an InetSuite starts. */
export const INET_SYNC_PORT = 22100;

export function labRun(script: string, prefix: string, args: string[], env: NodeJS.ProcessEnv = {}): void {
  execFileSync(`${NETLAB}/${script}`, args, { env: { ...process.env, NETLAB_PREFIX: prefix, ...env }, stdio: 'ignore' });
}

export function labDown(script: string, prefix: string, env: NodeJS.ProcessEnv = {}): void {
  labRun(script, prefix, ['down'], env);
}

export interface PeerJson {
  device: string;
  address: string;
  source: string;
  connected: boolean;
}

export interface StatusJson {
  device: { id: string };
  listen: string;
  folders: Array<{ id: string; localFiles: number; needFiles: number; peers: PeerJson[] }>;
  services: { discovery: Record<string, unknown> & { addressBook: Record<string, Array<{ address: string; source: string }>> } };
}

/** `ferry run` with discovery as `args` say (LAN, DHT and trackers are off unless asked for), optionally in a namespace. */
export class FerryNode {
  readonly child: ChildProcess;
  log = '';
  private readonly exitPromise: Promise<number | null>;

  /** `nat`: map the port on the router (off unless asked for). */
  constructor(readonly home: string, options: { ns?: string; listen: string; args?: string[]; nat?: boolean }) {
    const { argv, env } = daemonLaunch([
      '--home', home, '--listen', options.listen, '--web', '127.0.0.1:0', ...(options.nat ? [] : ['--no-nat']), ...noStun(options.args ?? []),
      '--log-level', 'debug', ...(options.args ?? []),
    ]);
    const spawnOptions: SpawnOptions = { env, stdio: ['ignore', 'pipe', 'pipe'] };
    this.child = options.ns ? spawn('ip', ['netns', 'exec', options.ns, ...argv], spawnOptions) : spawn(argv[0]!, argv.slice(1), spawnOptions);
    this.child.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.exitPromise = new Promise((r) => this.child.on('close', (code) => r(code))); // 'close': after the last output, which 'exit' can precede
    trackDaemonLog(this, this.exitPromise);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async ready(): Promise<void> {
    await waitFor(async () => {
      if (!this.running) throw new Error(`daemon exited early (code ${this.child.exitCode}, signal ${this.child.signalCode}):\n${this.log}`);
      return controlStatus(this.home).then(() => true);
    }, 'daemon to start', DAEMON_START_LIMIT_MS);
  }

  cli(args: string[]): Promise<CliResult> {
    return ferry([...args, '--home', this.home]);
  }

  status(): Promise<StatusJson> {
    return controlStatus(this.home);
  }

  /** The connected peers of the first folder. */
  async connectedPeers(): Promise<PeerJson[]> {
    return ((await this.status()).folders[0]?.peers ?? []).filter((p) => p.connected);
  }

  async stop(): Promise<number | null> {
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const code = await this.exitPromise;
    clearTimeout(timer);
    return code;
  }
}

/** Shares `dir` on `node` and returns its read-write key and folder ID. */
export async function share(node: FerryNode, dir: string): Promise<{ rw: string; folderId: string }> {
  const result = await node.cli(['share', dir, '--json']);
  if (result.code !== 0) throw new Error(`share failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as { rw: string; folderId: string };
}

export async function join(node: FerryNode, key: string, dir: string): Promise<void> {
  const result = await node.cli(['join', key, dir]);
  if (result.code !== 0) throw new Error(`join failed: ${result.stderr}`);
}
