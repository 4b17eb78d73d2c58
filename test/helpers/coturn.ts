// Debian's coturn (turnserver) for tests: one server with long-term credentials, no TLS, no CLI,
// its user database in a temporary directory; in a network namespace when `ns` is given. start()
// resolves once its UDP port is bound (`ss` sees it), stop() kills the process this helper started.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POLL_MS, WAIT_LIMIT_MS } from './wait.js';

export interface CoturnOptions {
  /** Listening and relay address (an IP). */
  ip: string;
  port: number;
  users: Record<string, string>;
  /** A network namespace to run in. */
  ns?: string;
  /** Relayed ports (a small range of its own per test). */
  minPort: number;
  maxPort: number;
  /** Loopback peers (the relay on 127.0.0.1). */
  allowLoopback?: boolean;
}

export class Coturn {
  private child: ChildProcess | null = null;
  private dir = '';
  log = '';

  constructor(private readonly options: CoturnOptions) {}

  async start(): Promise<void> {
    const o = this.options;
    this.dir = await mkdtemp(join(tmpdir(), 'ferry-coturn-'));
    const args = [
      '-n', '--listening-ip', o.ip, '--listening-port', String(o.port), '--relay-ip', o.ip,
      '--min-port', String(o.minPort), '--max-port', String(o.maxPort), '--realm', 'ferry.test', '--lt-cred-mech',
      '--no-tls', '--no-dtls', '--no-tcp', '--no-cli', '--no-software-attribute', '--log-file', 'stdout',
      '--userdb', join(this.dir, 'turndb'), '--pidfile', join(this.dir, 'turnserver.pid'),
      ...(o.allowLoopback ? ['--allow-loopback-peers'] : []),
      ...Object.entries(o.users).flatMap(([user, password]) => ['--user', `${user}:${password}`]),
    ];
    const [command, argv] = o.ns ? ['ip', ['netns', 'exec', o.ns, 'turnserver', ...args]] : ['turnserver', args];
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const keep = (chunk: Buffer): void => {
      this.log = (this.log + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while (!this.bound()) {
      if (child.exitCode !== null) throw new Error(`turnserver exited (${child.exitCode}): ${this.log.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`turnserver did not bind ${o.ip}:${o.port}: ${this.log.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  private bound(): boolean {
    const ss = ['ss', '-Hlun', `sport = :${this.options.port}`];
    const out = this.options.ns ? spawnSync('ip', ['netns', 'exec', this.options.ns, ...ss], { encoding: 'utf8' }) : spawnSync(ss[0]!, ss.slice(1), { encoding: 'utf8' });
    return out.stdout.includes(`${this.options.ip}:${this.options.port}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
