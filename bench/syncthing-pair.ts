// Two Syncthing instances on loopback (Debian's build), configured per shared/notes/syncthing.md, driven through their REST API.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { run, samplePair, sleepMs, until, type PairSampler } from './lib.js';
import type { FolderTotals, Pair } from './pair.js';

const FOLDER_ID = 'bench';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A child process of `pid` (any thread's), from /proc. */
async function childOf(pid: number): Promise<number | undefined> {
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) return Number(name);
  }
  return undefined;
}

/** The installed Syncthing's version line, or undefined when there is none. */
export async function syncthingVersion(): Promise<string | undefined> {
  try {
    const { stdout } = await run('syncthing', ['--version']);
    return stdout.trim();
  } catch {
    return undefined;
  }
}

interface Instance {
  home: string;
  id: string;
  syncPort: number;
  guiPort: number;
  apiKey: string;
  monitor?: ChildProcess;
  /** The process that does the work (the monitor's child). */
  workerPid?: number;
  log: string;
}

function configXml(self: Instance, other: Instance, otherAddress: string): string {
  const device = (d: Instance, name: string, address: string): string =>
    `  <device id="${d.id}" name="${name}" compression="metadata" introducer="false"><address>${address}</address></device>`;
  return `<configuration version="36">
${device(self, 'self', 'dynamic')}
${device(other, 'other', otherAddress)}
  <gui enabled="true" tls="false" debugging="false"><address>127.0.0.1:${self.guiPort}</address><apikey>${self.apiKey}</apikey></gui>
  <options>
    <listenAddress>tcp://127.0.0.1:${self.syncPort}</listenAddress>
    <globalAnnounceEnabled>false</globalAnnounceEnabled>
    <localAnnounceEnabled>false</localAnnounceEnabled>
    <relaysEnabled>false</relaysEnabled>
    <natEnabled>false</natEnabled>
    <urAccepted>-1</urAccepted>
    <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
    <crashReportingEnabled>false</crashReportingEnabled>
    <startBrowser>false</startBrowser>
    <setLowPriority>false</setLowPriority>
  </options>
</configuration>
`;
}

export class SyncthingPair implements Pair {
  readonly tool = 'syncthing' as const;
  private a!: Instance;
  private b!: Instance;

  constructor(private readonly base: string) {}

  private async generate(name: string): Promise<Instance> {
    const home = join(this.base, `st-${name}`);
    const { stdout, stderr } = await run('syncthing', ['generate', `--home=${home}`], { env: { ...process.env, STNODEFAULTFOLDER: '1' } });
    const id = /Device ID:\s+([A-Z0-9-]+)/.exec(stdout + stderr)?.[1];
    if (!id) throw new Error(`syncthing generate printed no device ID: ${stdout}${stderr}`);
    return { home, id, syncPort: await freePort(), guiPort: await freePort(), apiKey: randomBytes(16).toString('hex'), log: '' };
  }

  private async api<T>(instance: Instance, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${instance.guiPort}${path}`, {
      method,
      headers: { 'X-API-Key': instance.apiKey, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`syncthing ${method} ${path}: HTTP ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private async launch(instance: Instance): Promise<void> {
    const child = spawn('syncthing', ['serve', `--home=${instance.home}`, '--no-browser', '--no-restart'], {
      env: { ...process.env, STNODEFAULTFOLDER: '1', STNOUPGRADE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d: Buffer) => (instance.log = (instance.log + d.toString()).slice(-20_000)));
    child.stderr!.on('data', (d: Buffer) => (instance.log = (instance.log + d.toString()).slice(-20_000)));
    instance.monitor = child;
    await until(async () => (await this.api<{ ping: string }>(instance, 'GET', '/rest/system/ping')).ping === 'pong', 'syncthing to answer', 30_000, 100);
    // `serve` runs a monitor process whose child does the work: that child is the one to measure.
    await until(async () => {
      instance.workerPid = await childOf(child.pid!);
      return instance.workerPid !== undefined;
    }, 'syncthing worker process', 10_000, 50);
  }

  async start(): Promise<void> {
    this.a = await this.generate('a');
    this.b = await this.generate('b');
    // Only B dials A: both dialling at once sometimes ends in a ~20 s redial.
    await writeFile(join(this.a.home, 'config.xml'), configXml(this.a, this.b, 'dynamic'));
    await writeFile(join(this.b.home, 'config.xml'), configXml(this.b, this.a, `tcp://127.0.0.1:${this.a.syncPort}`));
    await this.launch(this.a);
    await this.launch(this.b);
    await until(async () => {
      const c = await this.api<{ connections: Record<string, { connected: boolean }> }>(this.b, 'GET', '/rest/system/connections');
      return c.connections[this.a.id]?.connected === true;
    }, 'the two Syncthing instances to connect', 60_000, 100);
  }

  private folder(path: string): unknown {
    return {
      id: FOLDER_ID,
      label: FOLDER_ID,
      path,
      type: 'sendreceive',
      devices: [{ deviceID: this.a.id }, { deviceID: this.b.id }],
      rescanIntervalS: 3600,
      fsWatcherEnabled: true,
      // Its quickest reaction to a change (the default is 10 s).
      fsWatcherDelayS: 1,
    };
  }

  async beginSync(source: string, target: string): Promise<void> {
    await this.api(this.a, 'POST', '/rest/config/folders', this.folder(source));
    await this.api(this.b, 'POST', '/rest/config/folders', this.folder(target));
  }

  private async folderStatus(instance: Instance): Promise<{ state: string; localFiles: number }> {
    return this.api(instance, 'GET', `/rest/db/status?folder=${FOLDER_ID}`);
  }

  async readyEmpty(): Promise<boolean> {
    const c = await this.api<{ connections: Record<string, { connected: boolean }> }>(this.b, 'GET', '/rest/system/connections');
    if (c.connections[this.a.id]?.connected !== true) return false;
    return (await this.folderStatus(this.a)).state === 'idle' && (await this.folderStatus(this.b)).state === 'idle';
  }

  processes(): { a: number[]; b: number[] } {
    const of = (i: Instance): number[] => [i.monitor?.pid, i.workerPid].filter((p): p is number => p !== undefined);
    return { a: of(this.a), b: of(this.b) };
  }

  async shareOnA(path: string): Promise<void> {
    await this.api(this.a, 'POST', '/rest/config/folders', this.folder(path));
  }

  async scannedOnA(files: number): Promise<boolean> {
    const s = await this.folderStatus(this.a);
    return s.state === 'idle' && s.localFiles === files;
  }

  async complete(totals: FolderTotals): Promise<boolean> {
    const s = await this.api<{ state: string; needTotalItems: number; localFiles: number; localBytes: number; localDirectories: number }>(
      this.b,
      'GET',
      `/rest/db/status?folder=${FOLDER_ID}`,
    );
    // Syncthing counts each directory as 128 bytes.
    const fileBytes = s.localBytes - 128 * s.localDirectories;
    return s.state === 'idle' && s.needTotalItems === 0 && s.localFiles === totals.files && fileBytes === totals.bytes;
  }

  async rescan(): Promise<void> {
    await this.api(this.a, 'POST', `/rest/db/scan?folder=${FOLDER_ID}`);
  }

  async bytesSent(): Promise<number> {
    const c = await this.api<{ connections: Record<string, { outBytesTotal: number }> }>(this.a, 'GET', '/rest/system/connections');
    return c.connections[this.b.id]?.outBytesTotal ?? 0;
  }

  sample(): PairSampler {
    return samplePair(this.a.workerPid!, this.b.workerPid!);
  }

  logs(): string {
    return `--- A ---\n${this.a?.log.slice(-4000) ?? ''}\n--- B ---\n${this.b?.log.slice(-4000) ?? ''}`;
  }

  async stop(): Promise<void> {
    await Promise.all(
      [this.a, this.b].map(async (instance) => {
        const monitor = instance?.monitor;
        if (!monitor || monitor.exitCode !== null || monitor.signalCode !== null) return;
        const exited = new Promise((r) => monitor.once('exit', r));
        await this.api(instance, 'POST', '/rest/system/shutdown').catch(() => undefined);
        const timer = sleepMs(10_000).then(() => {
          if (instance.workerPid) {
            try {
              process.kill(instance.workerPid, 'SIGKILL');
            } catch {
              // gone
            }
          }
          monitor.kill('SIGKILL');
        });
        await Promise.race([exited, timer]);
      }),
    );
  }
}
