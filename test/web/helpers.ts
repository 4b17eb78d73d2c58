// Web test helpers: a fake daemon behind the real WebAdmin, and a small HTTP client that keeps the session cookie.

import { request } from 'node:http';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../src/util/log.js';
import { WebAdmin } from '../../src/web/admin.js';
import type { DaemonApi, EditableSettings, StatusReport } from '../../src/web/daemon-api.js';
import { fakeDaemon } from '../helpers/fake-daemon.js';

export const FOLDER_ID = 'ab'.repeat(20);

const SETTINGS: EditableSettings = {
  deviceName: 'test', listen: '0.0.0.0:22100', web: '0.0.0.0:8888', lan: true, nat: true, dht: true, trackers: true,
  trackerUrls: [], webHosts: [], archiveDays: 14, massDeleteFiles: 1000, uploadKBps: 0, downloadKBps: 0, stun: false, stunServers: [], turnServers: [],
  relay: true, relayRateBps: 1048576,
};

/** A DaemonApi that records every call; nothing in it touches disk. */
export interface FakeDaemon extends DaemonApi {
  readonly calls: string[];
  passwordHash: string | undefined;
}

/** The fake the web tests run the real WebAdmin on: the folder calls recorded, and what the admin reads at start (no stored session key, nothing revoked, no app passwords, no setup code). */
export function webFakeDaemon(): FakeDaemon {
  const calls: string[] = [];
  const folder = () => ({
    id: FOLDER_ID, path: '/x', access: 'rw' as const, state: 'idle' as const, localFiles: 0, localBytes: 0, globalFiles: 0,
    globalBytes: 0, needFiles: 0, needBytes: 0, localChanges: 0, failedItems: 0, failed: [], lastScanMs: null,
    watcher: { watchedDirs: 0, unwatchedDirs: 0, limitReached: false }, peers: [],
  });
  const getSettings = () => ({ settings: SETTINGS, running: SETTINGS, overridden: [], restartRequired: false });
  const daemon: FakeDaemon = {
    ...fakeDaemon({
      status: (): StatusReport => ({ device: { id: 'DEVICE', name: 'test' }, version: '0', listen: null, folders: [], services: {}, knownPeers: [] }),
      share: async (path) => { calls.push(`share ${path}`); return { folderId: FOLDER_ID, path, enc: 'E' }; },
      join: async (key, path) => { calls.push(`join ${key} ${path}`); return folder(); },
      keys: (f) => { calls.push(`keys ${f}`); return { folderId: FOLDER_ID, path: '/x', enc: 'E' }; },
      removeFolder: async (f) => { calls.push(`remove ${f}`); },
      rescan: async (f) => { calls.push(`rescan ${f}`); },
      addPeer: async (address) => { calls.push(`addPeer ${address}`); },
      revert: async (f) => { calls.push(`revert ${f}`); return 0; },
      pauseFolder: async (f) => { calls.push(`pause ${f}`); },
      resumeFolder: async (f) => { calls.push(`resume ${f}`); },
      archive: async (f) => { calls.push(`archive ${f}`); return { folderId: f, files: [], truncated: false }; },
      restoreArchived: async (f, archivePath) => { calls.push(`restore ${f} ${archivePath}`); return 'x'; },
      purgeArchive: async (f) => { calls.push(`purge ${f}`); return 0; },
      peers: () => [],
      getSettings,
      updateSettings: async (patch) => { calls.push(`settings ${JSON.stringify(patch)}`); return getSettings(); },
      logTail: () => ['line'],
      adminPasswordHash: () => daemon.passwordHash,
      setAdminPasswordHash: async (hash) => { daemon.passwordHash = hash; },
      adminSetupCode: () => undefined,
      webSessionKey: () => undefined,
      revokedWebSessions: () => ({}),
      setRevokedWebSessions: async () => undefined,
      appPasswords: () => [],
    }),
    calls,
    passwordHash: undefined,
  };
  return daemon;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error?: { code: string; message: string }; [key: string]: unknown };
}

export class Client {
  cookie = '';
  csrf = '';

  /** `localAddress`: the source address to connect from (tests of what a browser elsewhere on the LAN may do). */
  constructor(readonly base: { host: string; port: number; localAddress?: string } | { socketPath: string }) {}

  send(method: string, path: string, options: { body?: unknown; csrf?: string | null; headers?: Record<string, string>; raw?: string } = {}): Promise<Answer> {
    const payload = options.raw ?? (options.body === undefined ? (method === 'GET' ? undefined : '{}') : JSON.stringify(options.body));
    const headers: Record<string, string> = payload
      ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }
      : {};
    if (this.cookie) headers.cookie = this.cookie;
    const csrf = options.csrf === undefined ? this.csrf : options.csrf;
    if (csrf) headers['x-csrf-token'] = csrf;
    Object.assign(headers, options.headers);
    return new Promise((resolve, reject) => {
      const req = request({ ...this.base, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const setCookie = res.headers['set-cookie']?.find((c) => c.startsWith('ferry_session='));
          if (setCookie) this.cookie = setCookie.split(';')[0]!;
          let body: Answer['body'] = {};
          try {
            body = JSON.parse(text) as Answer['body'];
          } catch {
            body = { text };
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  async login(password: string, path = '/api/auth/login'): Promise<Answer> {
    const answer = await this.send('POST', path, { body: { password }, csrf: null });
    if (answer.status === 200) this.csrf = answer.body.csrf as string;
    return answer;
  }
}

export interface Running {
  daemon: FakeDaemon;
  admin: WebAdmin;
  web: Server;
  address: { host: string; port: number };
  close(): Promise<void>;
}

export async function startWebAdmin(): Promise<Running> {
  const daemon = webFakeDaemon();
  const admin = new WebAdmin({ daemon, logger: silentLogger });
  await admin.open();
  const web = createServer(admin.web.callback());
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  const address = { host: '127.0.0.1', port: (web.address() as AddressInfo).port };
  return {
    daemon,
    admin,
    web,
    address,
    async close() {
      await admin.close();
      web.closeAllConnections();
      await new Promise((resolve) => web.close(resolve));
    },
  };
}
