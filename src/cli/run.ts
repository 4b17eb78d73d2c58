// `ferry run`: the daemon in the foreground until SIGINT or SIGTERM.

import { resolve } from 'node:path';
import { HeapTuner, MemoryTrace, applyTieringFlags } from '../daemon/runtime.js';
import type { Settings } from '../daemon/settings.js';
import { FerryError } from '../errors.js';
import { createLogger, isLogLevel } from '../util/log.js';
import { parseCommand, type Output } from './args.js';

export const RUN_USAGE =
  'ferry run [--home DIR] [--listen HOST:PORT] [--web HOST:PORT] [--no-lan] [--no-nat] [--no-dht] ' +
  '[--no-trackers] [--no-stun] [--no-tcp] [--no-udp] [--no-relay] [--relay-rate BYTES_PER_S] [--log-level L] [--web-host NAME]... [--admin-password-file FILE] [--tracker URL]... [--dht-bootstrap HOST:PORT]... [--stun HOST:PORT]... [--turn turn://USER:PASSWORD@HOST:PORT]...';

const SHUTDOWN_DEADLINE_MS = 10_000;

/** `--relay-rate`: bytes per second relayed for others (0 = no cap). */
function relayRate(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text)) throw new FerryError('USAGE', `--relay-rate needs a whole number of bytes per second (got '${text.slice(0, 40)}')\nusage: ${RUN_USAGE}`);
  return Number(text);
}

export async function runDaemon(argv: string[], io: Output): Promise<number> {
  const { values, home } = parseCommand(
    argv,
    {
      listen: { type: 'string' },
      web: { type: 'string' },
      'no-lan': { type: 'boolean' },
      'no-nat': { type: 'boolean' },
      'no-dht': { type: 'boolean' },
      'no-trackers': { type: 'boolean' },
      'log-level': { type: 'string' },
      tracker: { type: 'string', multiple: true },
      'dht-bootstrap': { type: 'string', multiple: true },
      stun: { type: 'string', multiple: true },
      'no-stun': { type: 'boolean' },
      turn: { type: 'string', multiple: true },
      'no-tcp': { type: 'boolean' },
      'no-udp': { type: 'boolean' },
      'no-relay': { type: 'boolean' },
      'relay-rate': { type: 'string' },
      'web-host': { type: 'string', multiple: true },
      'admin-password-file': { type: 'string' },
    },
    { min: 0, max: 0 },
    RUN_USAGE,
  );
  const logLevel = values['log-level'] as string | undefined;
  if (logLevel !== undefined && !isLogLevel(logLevel)) {
    throw new FerryError('USAGE', `unknown log level '${logLevel}' (debug, info, warn, error)\nusage: ${RUN_USAGE}`);
  }
  const overrides: Partial<Settings> = {
    listen: values.listen as string | undefined,
    web: values.web as string | undefined,
    lan: values['no-lan'] ? false : undefined,
    nat: values['no-nat'] ? false : undefined,
    dht: values['no-dht'] ? false : undefined,
    trackers: values['no-trackers'] ? false : undefined,
    logLevel: logLevel as Settings['logLevel'] | undefined,
    trackerUrls: values.tracker as string[] | undefined,
    dhtBootstrap: values['dht-bootstrap'] as string[] | undefined,
    stun: values['no-stun'] ? false : undefined,
    stunServers: values.stun as string[] | undefined,
    turnServers: values.turn as string[] | undefined,
    webHosts: values['web-host'] as string[] | undefined,
    tcp: values['no-tcp'] ? false : undefined,
    udp: values['no-udp'] ? false : undefined,
    relay: values['no-relay'] ? false : undefined,
    relayRateBps: relayRate(values['relay-rate'] as string | undefined),
  };
  if (values['no-tcp'] && values['no-udp']) throw new FerryError('USAGE', `--no-tcp and --no-udp leave no way to reach peers\nusage: ${RUN_USAGE}`);
  if (values['no-stun'] && values.stun) throw new FerryError('USAGE', `--stun and --no-stun contradict each other\nusage: ${RUN_USAGE}`);
  // Before the daemon's modules load, so that their functions start with the daemon's tiering budget.
  applyTieringFlags();
  // The daemon's modules (LMDB, TLS, discovery…) load only here: every other command is an HTTP
  // call over the control socket and starts in a fraction of the time without them.
  const [{ Daemon }, { absorbIndexCommitFailure }] = await Promise.all([import('../daemon/daemon.js'), import('../index/store.js')]);
  const heapTuner = new HeapTuner();
  heapTuner.start();
  const memoryTrace = process.env.FERRY_MEMORY_TRACE ? new MemoryTrace(process.env.FERRY_MEMORY_TRACE) : undefined;
  memoryTrace?.start();
  const recentLog: string[] = [];
  const logger = createLogger({ component: 'ferry', level: logLevel && isLogLevel(logLevel) ? logLevel : 'info', keepRecent: recentLog });
  const adminPasswordFile = values['admin-password-file'] as string | undefined;
  // A failed index commit (a full disk under the home) is reported to whoever wrote, and as
  // DISK_FULL in status; lmdb-js's own copy of the rejection must not end the process.
  process.on('unhandledRejection', (reason: unknown) => {
    if (absorbIndexCommitFailure(reason)) {
      logger.debug('index commit failed (reported by the writer)', { reason: reason as Error });
      return;
    }
    throw reason;
  });
  const daemon = new Daemon({ home, overrides, logger, recentLog, ...(adminPasswordFile ? { adminPasswordFile: resolve(adminPasswordFile) } : {}) });

  let stopping: Promise<void> | null = null;
  const stop = (signal: string): Promise<void> => {
    if (!stopping) {
      logger.info('stopping', { signal });
      const deadline = setTimeout(() => {
        logger.error('shutdown deadline passed; exiting');
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS);
      stopping = daemon.close().finally(() => clearTimeout(deadline));
    }
    return stopping;
  };
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', () => void stop('SIGINT').then(resolve));
    process.once('SIGTERM', () => void stop('SIGTERM').then(resolve));
  });

  try {
    await daemon.open();
  } catch (err) {
    await daemon.close().catch(() => undefined);
    heapTuner.close();
    throw err;
  }
  io.out(`ferry: running on home ${home}; web page http://${daemon.webAddress()}/\n`);
  const setupCode = daemon.adminSetupCode();
  if (setupCode) {
    io.out(`ferry: no admin password yet: set it in the web page (from another machine it asks for the setup code ${setupCode}, ` +
      `also in ${home}/admin-setup-code and shown by \`ferry admin setup-code\`) or with \`ferry admin set-password\`\n`);
  }
  await stopped;
  heapTuner.close();
  memoryTrace?.close();
  logger.info('stopped');
  return 0;
}
