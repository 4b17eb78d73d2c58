// Two real Ferry daemons as child processes on loopback, driven through their control sockets.

import { join } from 'node:path';
import { ControlClient } from '../src/cli/client.js';
import type { KeysReport, StatusReport } from '../src/web/daemon-api.js';
import { DaemonProcess } from '../test/helpers/daemon.js';
import { samplePair, type PairSampler } from './lib.js';
import type { FolderTotals, Pair } from './pair.js';

/** How long a daemon may take to answer after its start: minutes on a busy machine, and a repack of a large index. */
const READY_MS = 10 * 60_000;

export class FerryPair implements Pair {
  readonly tool = 'ferry' as const;
  private a!: DaemonProcess;
  private b!: DaemonProcess;
  private clientA!: ControlClient;
  private clientB!: ControlClient;
  private folderId = '';

  constructor(
    private readonly base: string,
    private readonly extraArgs: string[] = [],
  ) {}

  /**
   * `around`: wraps each daemon's spawn (bench/edit-latency.ts starts each inside its own memory cgroup, so that what it
   * allocates from its first instruction is charged there).
   */
  async start(around?: (side: 'a' | 'b', spawn: () => void) => Promise<void>): Promise<void> {
    // Info logging: debug lines per file would cost the daemons time that users never pay.
    const args = ['--log-level', process.env.BENCH_FERRY_LOG ?? 'warn', ...this.extraArgs];
    // BENCH_FERRY_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") go to both daemons' node.
    const nodeFlags = process.env.BENCH_FERRY_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [];
    const spawn = around ?? (async (_side: 'a' | 'b', go: () => void) => go());
    await spawn('a', () => (this.a = new DaemonProcess(join(this.base, 'home-a'), args, {}, nodeFlags)));
    await spawn('b', () => (this.b = new DaemonProcess(join(this.base, 'home-b'), args, {}, nodeFlags)));
    await Promise.all([this.a.ready(READY_MS), this.b.ready(READY_MS)]);
    this.clientA = new ControlClient(this.a.home);
    this.clientB = new ControlClient(this.b.home);
  }

  /** Stops B and starts it again on the same home (`around` as in start()); it dials A again by itself. */
  async restartB(around?: (side: 'a' | 'b', spawn: () => void) => Promise<void>): Promise<void> {
    await this.b.stop();
    const args = ['--log-level', process.env.BENCH_FERRY_LOG ?? 'warn', ...this.extraArgs];
    const nodeFlags = process.env.BENCH_FERRY_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [];
    const spawn = around ?? (async (_side: 'a' | 'b', go: () => void) => go());
    await spawn('b', () => (this.b = new DaemonProcess(this.b.home, args, {}, nodeFlags)));
    await this.b.ready(READY_MS);
    this.clientB = new ControlClient(this.b.home);
  }

  async beginSync(source: string, target: string): Promise<void> {
    const keys = await this.clientA.call<KeysReport>('POST', '/folders', { path: source });
    this.folderId = keys.folderId;
    await this.clientB.call('POST', '/folders/join', { key: keys.rw, path: target });
    const { listen } = await this.clientA.call<StatusReport>('GET', '/status');
    await this.clientB.call('POST', '/peers', { address: listen });
  }

  async complete(totals: FolderTotals): Promise<boolean> {
    const folder = (await this.clientB.call<StatusReport>('GET', '/status')).folders[0];
    return (
      folder !== undefined &&
      folder.state === 'idle' &&
      folder.needFiles === 0 &&
      folder.localFiles === totals.files &&
      folder.localBytes === totals.bytes
    );
  }

  async readyEmpty(): Promise<boolean> {
    const ready = async (client: ControlClient): Promise<boolean> => {
      const folder = (await client.call<StatusReport>('GET', '/status')).folders[0];
      return folder !== undefined && folder.state === 'idle' && folder.peers.some((p) => p.connected);
    };
    return (await ready(this.clientA)) && (await ready(this.clientB));
  }

  processes(): { a: number[]; b: number[] } {
    return { a: [this.a.child.pid!], b: [this.b.child.pid!] };
  }

  async shareOnA(path: string): Promise<void> {
    const keys = await this.clientA.call<KeysReport>('POST', '/folders', { path });
    this.folderId = keys.folderId;
  }

  async scannedOnA(files: number): Promise<boolean> {
    const folder = (await this.clientA.call<StatusReport>('GET', '/status')).folders[0];
    return folder !== undefined && folder.state === 'idle' && folder.localFiles === files;
  }

  async rescan(): Promise<void> {
    await this.clientA.call('POST', `/folders/${this.folderId}/rescan`);
  }

  async bytesSent(): Promise<number> {
    const status = await this.clientA.call<StatusReport>('GET', '/status');
    return status.folders[0]?.peers.reduce((n, p) => n + (p.bytesOut ?? 0), 0) ?? 0;
  }

  /** Home directories of both daemons. */
  homes(): { a: string; b: string } {
    return { a: this.a.home, b: this.b.home };
  }

  /** Process IDs of both daemons. */
  pids(): { a: number; b: number } {
    return { a: this.a.child.pid!, b: this.b.child.pid! };
  }

  sample(): PairSampler {
    return samplePair(this.a.child.pid!, this.b.child.pid!);
  }

  /** Daemon logs (for a failed run's report). */
  fullLogs(): { a: string; b: string } {
    return { a: this.a?.log ?? '', b: this.b?.log ?? '' };
  }

  logs(): string {
    return `--- A ---\n${this.a?.log.slice(-4000) ?? ''}\n--- B ---\n${this.b?.log.slice(-4000) ?? ''}`;
  }

  async stop(): Promise<void> {
    await Promise.all([this.a?.stop(), this.b?.stop()]);
  }
}
