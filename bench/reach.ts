// Reachability benchmark (`make bench BENCH=reach`, root; issue 19, Measure): for each topology of
// the netlab matrix (test/netlab/inet.sh), the time from handing over the addresses to the two
// devices being connected, and the time to sync a 10 MiB file over that link, median of
// BENCH_REACH_ROUNDS (5) rounds with fresh daemons; and for the relayed row the relay's CPU time
// (user + system of C's process, read from /proc) per GiB it relayed. Writes bench/results/reach.json.
// Topologies (BENCH_REACH_ROWS, comma-separated, default all): lan (same LAN), cone (cone NAT ↔
// cone NAT, STUN-learned addresses, punched), v6 (IPv6 behind two stateful firewalls, punched),
// relay (symmetric ↔ symmetric, a public ENC folder peer C relays at its default 1 MiB/s cap, and
// at BENCH_REACH_RELAY_RATE bytes/s too when set), turn (symmetric ↔ symmetric, coturn on the
// public host, addresses by tracker).
// 2026-12-07, 2 busy cores (8 agents), median of 5 (bench/results/reach.json), connect / 10 MiB sync:
// same LAN 2.5 s / 0.9 s (tcp); cone ↔ cone 2.8 s / 2.1 s (udp punched); IPv6 firewalls 2.5 s /
// 2.0 s (udp punched); relay via C 9.9 s / 9.7 s at the default 1 MiB/s cap, C spending 31 CPU s
// per GiB relayed (its whole daemon: both TLS links, the relay, its own timers; bench/relay.ts, the
// relay alone on loopback: 8.5–9.1); TURN 1.9 s / 2.4 s. The relayed row's connect time was 26.3 s
// before the relay got a 5 s head start instead of a 30 s wait (src/daemon/relay-service.ts); what
// is left is A and B reaching C, C's peer exchange, the head start and the relayed handshake.
// Rounds after the first reuse the lab, whose routers still hold the UDP mappings of the round
// before: those links need no punch and say `udp`.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join as joinPath, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Coturn } from '../test/helpers/coturn.js';
import { removeDir, tempDir, waitFor } from '../test/helpers/daemon.js';
import { inet, FerryNode, join, labDown, labRun, labUp, share, type LabEnv, type StatusJson } from '../test/netlab/discovery-lab.js';

const PREFIX = process.env.BENCH_REACH_PREFIX ?? 'breach';
const RESULTS = resolve(fileURLToPath(import.meta.url), '../../../bench/results/reach.json');
const SYNC_PORT = 22100;
const TURN_PORT = 3478;
const PASSWORD = 'reach-bench';
const FILE_BYTES = 10 * 1024 * 1024;
const ROUNDS = Math.max(1, Number(process.env.BENCH_REACH_ROUNDS ?? 5));

type Status = StatusJson & {
  device: { id: string; name: string };
  external?: Array<{ address: string; source: string }>;
  services: StatusJson['services'] & { relay?: { relayedBytes: number } };
};

interface Round {
  connectMs: number;
  syncMs: number;
  path: string;
  relayCpuSPerGiB?: number;
}

interface Row {
  topology: string;
  rounds: Round[];
  connectMsMedian?: number;
  syncMsMedian?: number;
  path?: string;
  relayCpuSPerGiBMedian?: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
};

/** CPU seconds (user + system) of a process so far: a daemon in a namespace runs as `ip netns exec`, which execs it (same PID). */
function cpuSeconds(pid: number): number {
  const fields = execFileSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).split(') ')[1]!.split(' ');
  const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

class Bench {
  private readonly nodes: FerryNode[] = [];
  private serial = 0;

  constructor(private readonly base: string) {}

  node(ns: string, args: string[], options: { nat?: boolean } = {}): FerryNode {
    const created = new FerryNode(joinPath(this.base, `home-${this.serial++}`), { ns, listen: `0.0.0.0:${SYNC_PORT}`, args: ['--no-lan', '--no-dht', ...args], ...options });
    this.nodes.push(created);
    return created;
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled(this.nodes.splice(0).map((n) => n.stop()));
  }

  /** A shares an empty folder, B joins it: neither knows the other's address yet. */
  async pair(nsA: string, nsB: string, args: string[]): Promise<{ a: FerryNode; b: FerryNode; dirA: string; dirB: string; rw: string; enc: string; folderId: string }> {
    const dirA = joinPath(this.base, `dir-${this.serial++}`);
    const dirB = joinPath(this.base, `dir-${this.serial++}`);
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    const a = this.node(nsA, args);
    const b = this.node(nsB, args);
    await Promise.all([a.ready(), b.ready()]);
    const shared = (await share(a, dirA)) as unknown as { rw: string; enc: string; folderId: string };
    await join(b, shared.rw, dirB);
    return { a, b, dirA, dirB, ...shared };
  }

  /** Waits for B to list A connected (from `startedMs`), then writes 10 MiB at A and waits for it at B. */
  async measure(a: FerryNode, b: FerryNode, dirA: string, dirB: string, startedMs: number, relay?: FerryNode): Promise<Round> {
    const idA = ((await a.status()) as Status).device.id;
    const path = await waitFor(async () => {
      const peers = ((await b.status()).folders[0]?.peers ?? []) as unknown as Array<{ device: string; connected: boolean; path?: string }>;
      const peer = peers.find((p) => p.device === idA && p.connected);
      return peer ? (peer.path ?? '?') : false;
    }, 'the two devices to connect', 180_000);
    const connectMs = Date.now() - startedMs;
    const payload = randomBytes(FILE_BYTES);
    const relayStart = relay ? { cpu: cpuSeconds(relay.child.pid!), bytes: ((await relay.status()) as Status).services.relay?.relayedBytes ?? 0 } : undefined;
    const syncStart = Date.now();
    await writeFile(joinPath(dirA, 'payload.bin'), payload);
    await waitFor(async () => (await readFile(joinPath(dirB, 'payload.bin')).catch(() => Buffer.alloc(0))).equals(payload), 'the file to sync', 300_000);
    const syncMs = Date.now() - syncStart;
    const round: Round = { connectMs, syncMs, path };
    if (relay && relayStart) {
      const cpu = cpuSeconds(relay.child.pid!) - relayStart.cpu;
      const bytes = (((await relay.status()) as Status).services.relay?.relayedBytes ?? 0) - relayStart.bytes;
      if (bytes > 0) round.relayCpuSPerGiB = Math.round((cpu / (bytes / 2 ** 30)) * 100) / 100;
    }
    return round;
  }
}

async function rows(bench: Bench, only: Set<string>): Promise<Row[]> {
  const out: Row[] = [];
  const run = async (topology: string, settings: Record<string, string>, round: (lab: LabEnv) => Promise<Round>, setup?: (lab: LabEnv) => Promise<() => Promise<void>>): Promise<void> => {
    inet('down', PREFIX, settings);
    const lab = inet('up', PREFIX, settings);
    const teardown = setup ? await setup(lab) : async () => undefined;
    const row: Row = { topology, rounds: [] };
    out.push(row);
    try {
      for (let i = 0; i < ROUNDS; i++) {
        try {
          row.rounds.push(await round(lab));
        } finally {
          await bench.stopAll();
        }
        console.error(`reach: ${topology} round ${i + 1}: ${JSON.stringify(row.rounds.at(-1))}`);
      }
    } finally {
      await teardown();
      inet('down', PREFIX, settings);
    }
    row.connectMsMedian = median(row.rounds.map((r) => r.connectMs));
    row.syncMsMedian = median(row.rounds.map((r) => r.syncMs));
    row.path = [...new Set(row.rounds.map((r) => r.path))].join(' / ');
    const cpu = row.rounds.flatMap((r) => (r.relayCpuSPerGiB === undefined ? [] : [r.relayCpuSPerGiB]));
    if (cpu.length) row.relayCpuSPerGiBMedian = cpu.sort((x, y) => x - y)[Math.floor(cpu.length / 2)];
  };
  const noMap = { NETLAB_INET_R1_UPNP: '0', NETLAB_INET_R2_UPNP: '0' };
  const symmetric = { ...noMap, NETLAB_INET_HOSTS: '1', NETLAB_INET_R1_NAT: 'symmetric', NETLAB_INET_R2_NAT: 'symmetric' };

  if (only.has('lan')) {
    await run('same LAN (behind one router)', { ...noMap, NETLAB_INET_HOSTS: '2' }, async (lab) => {
      const { a, b, dirA, dirB } = await bench.pair(lab.NETLAB_INET_H1a_NS!, lab.NETLAB_INET_H1b_NS!, ['--no-trackers', '--no-stun']);
      const started = Date.now();
      await b.cli(['peers', 'add', `${lab.NETLAB_INET_H1a_ADDR}:${SYNC_PORT}`]);
      return bench.measure(a, b, dirA, dirB, started);
    });
  }
  if (only.has('cone')) {
    await run('cone NAT ↔ cone NAT, no UPnP (STUN, both probe)', { ...noMap, NETLAB_INET_HOSTS: '1' }, async (lab) => {
      const { a, b, dirA, dirB } = await bench.pair(lab.NETLAB_INET_H1a_NS!, lab.NETLAB_INET_H2a_NS!, ['--no-trackers', '--stun', lab.NETLAB_INET_STUN_ADDR!]);
      const stunned = (of: FerryNode): Promise<string> => waitFor(async () => ((await of.status()) as Status).external?.find((e) => e.source === 'stun')?.address ?? false, 'a STUN answer');
      const [toA, toB] = await Promise.all([stunned(a), stunned(b)]);
      const started = Date.now();
      await Promise.all([a.cli(['peers', 'add', toB]), b.cli(['peers', 'add', toA])]);
      return bench.measure(a, b, dirA, dirB, started);
    });
  }
  if (only.has('v6')) {
    await run('IPv6, stateful firewall ↔ stateful firewall (both probe)', { ...noMap, NETLAB_INET_HOSTS: '1', NETLAB_INET_V6: '1' }, async (lab) => {
      const { a, b, dirA, dirB } = await bench.pair(lab.NETLAB_INET_H1a_NS!, lab.NETLAB_INET_H2a_NS!, ['--no-trackers', '--no-stun']);
      const started = Date.now();
      await Promise.all([
        a.cli(['peers', 'add', `[${lab.NETLAB_INET_H2a_ADDR6}]:${SYNC_PORT}`]),
        b.cli(['peers', 'add', `[${lab.NETLAB_INET_H1a_ADDR6}]:${SYNC_PORT}`]),
      ]);
      return bench.measure(a, b, dirA, dirB, started);
    });
  }
  const rates = ['default', ...(process.env.BENCH_REACH_RELAY_RATE ? [process.env.BENCH_REACH_RELAY_RATE] : [])];
  for (const rate of only.has('relay') ? rates : []) {
    await run(`symmetric NAT ↔ symmetric NAT, public ENC peer C relays${rate === 'default' ? ' (default cap 1 MiB/s)' : ` (${rate === '0' ? 'no cap' : `cap ${rate} B/s`})`}`, symmetric, async (lab) => {
      const args = ['--no-trackers', '--stun', lab.NETLAB_INET_STUN_ADDR!];
      const { a, b, dirA, dirB, enc } = await bench.pair(lab.NETLAB_INET_H1a_NS!, lab.NETLAB_INET_H2a_NS!, args);
      const c = bench.node(lab.NETLAB_INET_PUBLIC_NS!, [...args, ...(rate === 'default' ? [] : ['--relay-rate', rate])]);
      const dirC = joinPath(dirA, '..', `c-${Date.now()}`);
      await mkdir(dirC, { recursive: true });
      await c.ready();
      await join(c, enc, dirC);
      const toC = `${lab.NETLAB_INET_PUBLIC_ADDR}:${SYNC_PORT}`;
      const started = Date.now();
      await Promise.all([a.cli(['peers', 'add', toC]), b.cli(['peers', 'add', toC])]);
      return bench.measure(a, b, dirA, dirB, started, c);
    });
  }
  if (only.has('turn')) {
    let tracker: LabEnv = {};
    let coturn: Coturn | undefined;
    await run(
      'symmetric NAT ↔ symmetric NAT, TURN server (addresses by tracker)',
      symmetric,
      async (lab) => {
        const turnUrl = (user: string): string => `turn://${user}:${PASSWORD}@${lab.NETLAB_INET_PUBLIC_ADDR}:${TURN_PORT}`;
        const trackerArgs = ['--no-stun', '--tracker', tracker.NETLAB_TRACKER_UDP!];
        // A shares with trackers off until opentracker's whitelist has the folder (as the matrix does).
        const dirA = joinPath(lab.NETLAB_STATE_DIR ?? '/tmp', `reach-turn-a-${Date.now()}`);
        const first = bench.node(lab.NETLAB_INET_H1a_NS!, ['--no-trackers', '--no-stun']);
        await mkdir(dirA, { recursive: true });
        await first.ready();
        const { rw, folderId } = await share(first, dirA);
        await first.stop();
        labRun('tracker.sh', PREFIX, ['allow', folderId]);
        const a = new FerryNode(first.home, { ns: lab.NETLAB_INET_H1a_NS!, listen: `0.0.0.0:${SYNC_PORT}`, args: ['--no-lan', '--no-dht', ...trackerArgs, '--turn', turnUrl('alice')] });
        const b = bench.node(lab.NETLAB_INET_H2a_NS!, [...trackerArgs, '--turn', turnUrl('bob')]);
        try {
          await Promise.all([a.ready(), b.ready()]);
          const dirB = joinPath(lab.NETLAB_STATE_DIR ?? '/tmp', `reach-turn-b-${Date.now()}`);
          await mkdir(dirB, { recursive: true });
          const started = Date.now();
          await join(b, rw, dirB);
          return await bench.measure(a, b, dirA, dirB, started);
        } finally {
          await a.stop();
        }
      },
      async (lab) => {
        labDown('tracker.sh', PREFIX);
        tracker = labUp('tracker.sh', PREFIX, ['--impl', 'opentracker', '--port', '16979', '--netns', lab.NETLAB_INET_PUBLIC_NS!, '--addr', lab.NETLAB_INET_PUBLIC_ADDR!]);
        coturn = new Coturn({ ns: lab.NETLAB_INET_PUBLIC_NS!, ip: lab.NETLAB_INET_PUBLIC_ADDR!, port: TURN_PORT, minPort: 49500, maxPort: 49600, users: { alice: PASSWORD, bob: PASSWORD } });
        await coturn.start();
        return async () => {
          await coturn?.stop();
          labDown('tracker.sh', PREFIX);
        };
      },
    );
  }
  return out;
}

export async function benchReach(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('BENCH=reach needs root (network namespaces)');
  const only = new Set((process.env.BENCH_REACH_ROWS ?? 'lan,cone,v6,relay,turn').split(','));
  const base = await tempDir('reach');
  const bench = new Bench(base);
  let table: Row[] = [];
  try {
    table = await rows(bench, only);
  } finally {
    await bench.stopAll();
    await removeDir(base);
  }
  const lines = [
    '| topology | path | connect (median) | 10 MiB sync (median) | relay CPU s/GiB |',
    '|---|---|---|---|---|',
    ...table.map((r) => `| ${r.topology} | ${r.path} | ${((r.connectMsMedian ?? 0) / 1000).toFixed(1)} s | ${((r.syncMsMedian ?? 0) / 1000).toFixed(1)} s | ${r.relayCpuSPerGiBMedian ?? '-'} |`),
  ];
  console.log(`\nreachability (median of ${ROUNDS}, ${new Date().toISOString().slice(0, 10)})\n${lines.join('\n')}\n`);
  await writeFile(RESULTS, `${JSON.stringify({ date: new Date().toISOString(), rounds: ROUNDS, fileBytes: FILE_BYTES, rows: table }, null, 2)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  benchReach().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
