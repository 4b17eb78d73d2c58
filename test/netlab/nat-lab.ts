// Test helpers for the NAT lab (../shared/netlab/nat.sh): lab up/down, processes inside its namespaces, router rules.

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { controlStatus, daemonLaunch, noStun, waitFor } from '../helpers/daemon.js';
import { DAEMON_START_LIMIT_MS } from '../helpers/wait.js';

const execFileAsync = promisify(execFile);
import { NETLAB } from '../helpers/needs.js';

export { NETLAB };
export const BUILD_TEST = resolve(fileURLToPath(import.meta.url), '../..');

export type LabEnv = Record<string, string>;

function labEnv(prefix: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, NETLAB_PREFIX: prefix, ...extra };
}

/** `nat.sh up HOMES` with its own prefix; a failing `up` throws (and so fails the test). */
export function natUp(prefix: string, homes = 1, extra: NodeJS.ProcessEnv = {}): LabEnv {
  const out = execFileSync(`${NETLAB}/nat.sh`, ['up', String(homes)], { encoding: 'utf8', env: labEnv(prefix, extra), stdio: ['ignore', 'pipe', 'pipe'] });
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

export function natDown(prefix: string): void {
  execFileSync(`${NETLAB}/nat.sh`, ['down'], { env: labEnv(prefix), stdio: 'ignore' });
}

/** The DNAT rules miniupnpd keeps in the router (one line per mapping). */
export async function routerRules(lab: LabEnv): Promise<string[]> {
  const { stdout } = await execFileAsync('ip', ['netns', 'exec', lab.NETLAB_NAT_ROUTER_NS!, 'nft', 'list', 'chain', 'inet', 'filter', 'prerouting_miniupnpd']);
  return stdout.split('\n').map((l) => l.trim()).filter((l) => l.includes('dnat'));
}

/** The rule that forwards EXTERNAL_PORT/tcp to INTERNAL (`host:port`), if the router has it. */
export async function hasForward(lab: LabEnv, externalPort: number, internal: string): Promise<boolean> {
  return (await routerRules(lab)).some((rule) => rule.includes(`dport ${externalPort} `) && rule.endsWith(`dnat ip to ${internal}`));
}

/** A process run inside a lab namespace, its output collected. */
export class NsProcess {
  readonly child: ChildProcess;
  out = '';
  private readonly exitPromise: Promise<number | null>;

  constructor(ns: string, argv: string[], env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn('ip', ['netns', 'exec', ns, ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exitPromise = new Promise((r) => this.child.on('close', (code) => r(code))); // 'close': after the last output, which 'exit' can precede
  }

  /** JSON lines printed so far (the map-port fixture's events). */
  events(): Array<Record<string, unknown>> {
    return this.out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  exited(): Promise<number | null> {
    return this.exitPromise;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    return this.exitPromise;
  }
}

/** The map-port fixture (test/nat/fixtures) in a namespace: METHODS (e.g. 'upnp'), internal port, lease. */
export function mapPort(ns: string, methods: string, internalPort: number, leaseS: number): NsProcess {
  return new NsProcess(ns, [process.execPath, `${BUILD_TEST}/nat/fixtures/map-port.js`, methods, String(internalPort), String(leaseS)]);
}

/** A `ferry run` daemon inside a namespace; the CLI reaches it through the control socket in its home. */
export class NsDaemon extends NsProcess {
  constructor(ns: string, readonly home: string, listen: string, extraArgs: string[] = []) {
    const { argv, env } = daemonLaunch([
      '--home', home, '--listen', listen, '--web', '127.0.0.1:0', '--no-lan', '--no-dht', '--no-trackers', ...noStun(extraArgs), '--log-level', 'debug', ...extraArgs,
    ]);
    super(ns, argv, env);
  }

  async ready(): Promise<void> {
    await waitFor(async () => {
      if (!this.running) throw new Error(`daemon exited early:\n${this.out}`);
      return controlStatus(this.home).then(() => true);
    }, 'daemon to start', DAEMON_START_LIMIT_MS);
  }

  status(): Promise<{ listen: string; services: Record<string, Record<string, unknown>>; folders: Array<{ needFiles: number }> }> {
    return controlStatus(this.home);
  }
}
