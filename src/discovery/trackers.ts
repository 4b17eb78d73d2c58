// Announces every folder ID as an info-hash to every configured tracker (HTTP and UDP), re-announces
// at the tracker's interval (clamped), retries failures with backoff, and says `stopped` on the way out.

import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { FerryError } from '../errors.js';
import { Backoff } from '../util/backoff.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Resource } from '../util/resource.js';
import { announceHttp } from './tracker-http.js';
import type { AnnounceEvent, AnnounceParams } from './tracker-params.js';
import type { AnnounceResult } from './tracker-response.js';
import { UdpTrackerClient, type TrackerDatagrams, type UdpTrackerOptions } from './tracker-udp.js';

export const NUM_WANT = 50;
/** How long close() waits for the `stopped` announces. */
export const STOP_DEADLINE_MS = 3_000;
export const RETRY_BACKOFF = { initialMs: 30_000, maxMs: 30 * 60_000 };
/** While a folder has no connected peer and the tracker gave no `min interval`, announce this often. */
export const LONELY_ANNOUNCE_MS = 2 * 60_000;
/** Never announce a lonely folder more often than this, whatever `min interval` says. */
export const LONELY_FLOOR_MS = 10_000;

export interface AnnouncedFolder {
  folderId: Buffer;
  folderIdHex: string;
}

export interface TrackerAnnouncerOptions {
  urls: readonly string[];
  folders: () => readonly AnnouncedFolder[];
  /** The port to announce (the mapped external port when there is one). */
  port: () => number;
  /** Peers a tracker gave for a folder. */
  onPeers: (folderIdHex: string, addresses: string[]) => void;
  /**
   * Whether a folder has a connected peer; one without is announced again at the tracker's
   * `min interval` (else LONELY_ANNOUNCE_MS), so a device that joined after us is heard of soon.
   */
  hasPeers?: (folderIdHex: string) => boolean;
  /** The first announce waits for this (the port-mapping attempt, bounded by the caller). */
  startAfter?: Promise<unknown>;
  /** @default LONELY_FLOOR_MS */
  lonelyFloorMs?: number;
  logger?: Logger;
  udp?: UdpTrackerOptions;
  /**
   * This device's global IPv6 address, when it has one: sent as BEP 7 `ipv6=` to HTTP trackers, and
   * a udp:// tracker given by name is then announced to over IPv6 as well as IPv4 (BEP 7: the
   * tracker records one address per family it hears from).
   */
  ipv6Address?: () => string | undefined;
  /** Announce through this datagram socket (a TURN allocation): udp:// trackers only. */
  datagrams?: TrackerDatagrams;
  httpTimeoutMs?: number;
  retryBackoff?: { initialMs: number; maxMs: number };
}

interface Job {
  url: string;
  /** A udp:// tracker given by name, announced to once per address family. */
  family?: 4 | 6;
  folder: AnnouncedFolder;
  timer: NodeJS.Timeout | null;
  started: boolean;
  running: boolean;
  backoff: Backoff;
  lastAnnounceMs?: number;
  nextAnnounceMs?: number;
  lastPeers?: number;
  lastError?: string;
  announcedPort?: number;
  /** The tracker's last `min interval`, in ms. */
  minIntervalMs?: number;
}

export class TrackerAnnouncer extends Resource {
  private readonly log: Logger;
  private readonly peerId = Buffer.concat([Buffer.from('-FY0100-'), randomBytes(12)]);
  private readonly key = randomBytes(4).readUInt32BE(0);
  private readonly urls: string[] = [];
  private readonly udp = new Map<string, UdpTrackerClient>();
  private readonly jobs = new Map<string, Job>();
  private readonly lifetime = new AbortController();

  constructor(private readonly options: TrackerAnnouncerOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    for (const url of options.urls) {
      try {
        const parsed = new URL(url);
        if (!['http:', 'https:', 'udp:'].includes(parsed.protocol) || (parsed.protocol === 'udp:' && !parsed.port)) {
          throw new Error('not an http(s):// or udp://HOST:PORT URL');
        }
        if (options.datagrams && parsed.protocol !== 'udp:') continue; // HTTP cannot go through a UDP relay
        if (!this.urls.includes(url)) this.urls.push(url);
      } catch (err) {
        this.log.warn('ignoring a tracker URL', { url, reason: (err as Error).message });
      }
    }
  }

  /** Set in _open(): `opened` is still false while _open() runs. */
  private running = false;

  protected async _open(): Promise<void> {
    const start = (): void => {
      if (this.closed) return;
      this.running = true;
      this.sync();
    };
    if (this.options.startAfter) void this.options.startAfter.then(start, start);
    else start();
  }

  protected async _close(): Promise<void> {
    const stops: Promise<unknown>[] = [];
    for (const job of this.jobs.values()) {
      if (job.timer) clearTimeout(job.timer);
      job.timer = null;
      if (job.started) stops.push(this.send(job, 'stopped', AbortSignal.timeout(STOP_DEADLINE_MS)).catch(() => undefined));
    }
    await Promise.race([Promise.allSettled(stops), new Promise((r) => setTimeout(r, STOP_DEADLINE_MS).unref())]);
    this.lifetime.abort();
    await Promise.allSettled([...this.udp.values()].map((client) => client.close()));
  }

  /** Folders came or went: start announcing new ones, say `stopped` for removed ones. */
  sync(): void {
    if (!this.running || this.closed) return;
    const wanted = new Map(this.options.folders().map((folder) => [folder.folderIdHex, folder]));
    for (const [id, job] of this.jobs) {
      if (wanted.has(job.folder.folderIdHex)) continue;
      this.jobs.delete(id);
      if (job.timer) clearTimeout(job.timer);
      if (job.started) void this.send(job, 'stopped', AbortSignal.timeout(STOP_DEADLINE_MS)).catch(() => undefined);
    }
    for (const folder of wanted.values()) {
      for (const url of this.urls) {
        for (const family of this.families(url)) {
          const id = jobId(url, folder.folderIdHex, family);
          if (this.jobs.has(id)) continue;
          const job: Job = { url, ...(family ? { family } : {}), folder, timer: null, started: false, running: false, backoff: new Backoff(this.options.retryBackoff ?? RETRY_BACKOFF) };
          this.jobs.set(id, job);
          this.schedule(job, 0);
        }
      }
    }
  }

  /**
   * A udp:// tracker given by name is announced to over IPv4 and, when this device has a global IPv6
   * address, over IPv6 too (one job each); any other tracker once (HTTP picks a family itself and
   * carries the other address as `ipv6=`).
   */
  private families(url: string): Array<4 | 6 | undefined> {
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    if (parsed.protocol !== 'udp:' || isIP(host) || this.options.datagrams) return [undefined];
    return this.options.ipv6Address?.() ? [4, 6] : [4];
  }

  /**
   * Brings forward the next announce of every folder that has no connected peer (a peer left, or
   * the folder never had one) to its lonely cadence; called periodically by discovery.
   */
  lonely(nowMs = Date.now()): void {
    if (!this.running || this.closed || !this.options.hasPeers) return;
    for (const job of this.jobs.values()) {
      if (job.running || job.lastError !== undefined || job.lastAnnounceMs === undefined || this.options.hasPeers(job.folder.folderIdHex)) continue;
      const due = job.lastAnnounceMs + this.lonelyDelayMs(job);
      if ((job.nextAnnounceMs ?? Infinity) > due) this.schedule(job, Math.max(0, due - nowMs));
    }
  }

  private lonelyDelayMs(job: Job): number {
    return Math.max(this.options.lonelyFloorMs ?? LONELY_FLOOR_MS, job.minIntervalMs ?? LONELY_ANNOUNCE_MS);
  }

  /** The announced port changed (port mapping found one): tell every tracker now. */
  portChanged(): void {
    for (const job of this.jobs.values()) if (job.announcedPort !== this.options.port()) this.schedule(job, 0);
  }

  report(): unknown {
    return [...this.jobs.values()].map((job) => ({
      url: job.url,
      ...(job.family ? { family: `ipv${job.family}` } : {}),
      folder: job.folder.folderIdHex,
      lastAnnounceMs: job.lastAnnounceMs ?? null,
      nextAnnounceMs: job.nextAnnounceMs ?? null,
      peers: job.lastPeers ?? null,
      ...(job.lastError ? { error: job.lastError } : {}),
    }));
  }

  private schedule(job: Job, delayMs: number): void {
    if (job.timer) clearTimeout(job.timer);
    job.nextAnnounceMs = Date.now() + delayMs;
    job.timer = setTimeout(() => {
      job.timer = null;
      void this.run(job);
    }, delayMs);
    job.timer.unref();
  }

  private async run(job: Job): Promise<void> {
    if (this.closed || job.running) return;
    job.running = true;
    try {
      const result = await this.send(job, job.started ? 'none' : 'started', this.lifetime.signal);
      job.started = true;
      job.backoff.reset();
      job.lastError = undefined;
      job.lastPeers = result.peers.length;
      if (result.truncatedBytes) this.log.debug('tracker sent a truncated peer list', { url: job.url, bytes: result.truncatedBytes });
      if (result.warning) this.log.info('tracker warning', { url: job.url, warning: result.warning });
      this.log.debug('announced', { url: job.url, folder: job.folder.folderIdHex.slice(0, 8), peers: result.peers.length, intervalS: result.intervalS });
      if (result.peers.length) this.options.onPeers(job.folder.folderIdHex, result.peers);
      job.minIntervalMs = result.minIntervalS === undefined ? undefined : result.minIntervalS * 1000;
      const lonely = this.options.hasPeers !== undefined && !this.options.hasPeers(job.folder.folderIdHex);
      const delayMs = lonely ? Math.min(result.intervalS * 1000, this.lonelyDelayMs(job)) : result.intervalS * 1000;
      if (!this.closed && this.jobs.get(jobId(job.url, job.folder.folderIdHex, job.family)) === job) this.schedule(job, delayMs);
    } catch (err) {
      if (this.closed) return;
      const reason = err instanceof Error ? err.message : String(err);
      const retryMs = job.backoff.next();
      if (job.lastError !== reason) this.log.warn('tracker announce failed', { url: job.url, reason, retryInMs: retryMs });
      job.lastError = reason;
      if (this.jobs.get(jobId(job.url, job.folder.folderIdHex, job.family)) === job) this.schedule(job, retryMs);
    } finally {
      job.running = false;
    }
  }

  private async send(job: Job, event: AnnounceEvent, signal: AbortSignal): Promise<AnnounceResult> {
    const params: AnnounceParams = {
      infoHash: job.folder.folderId,
      peerId: this.peerId,
      port: this.options.port(),
      event,
      numWant: event === 'stopped' ? 0 : NUM_WANT,
      key: this.key,
    };
    job.announcedPort = params.port;
    job.lastAnnounceMs = Date.now();
    const url = new URL(job.url);
    if (url.protocol !== 'udp:') {
      const ipv6 = this.options.ipv6Address?.();
      return announceHttp(job.url, { ...params, ...(ipv6 ? { ipv6 } : {}) }, { signal, timeoutMs: this.options.httpTimeoutMs });
    }
    const clientKey = `${url.host}|${job.family ?? ''}`;
    let client = this.udp.get(clientKey);
    if (!client) {
      if (this.closed && event !== 'stopped') throw new FerryError('CLOSED', 'closing');
      client = new UdpTrackerClient(url.hostname.replace(/^\[|\]$/g, ''), Number(url.port), {
        ...this.options.udp,
        logger: this.log,
        ...(job.family ? { family: job.family } : {}),
        ...(this.options.datagrams ? { datagrams: this.options.datagrams } : {}),
      });
      this.udp.set(clientKey, client);
    }
    return client.announce(params, signal);
  }
}

const jobId = (url: string, folderIdHex: string, family: 4 | 6 | undefined): string => `${url} ${folderIdHex}${family ? ` ipv${family}` : ''}`;
