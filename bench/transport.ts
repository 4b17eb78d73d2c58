// Transport throughput on loopback: the same TLS 1.3 link (Ferry's cipher suite) over TCP and over
// µTP on a UDP socket, one way, BENCH_TRANSPORT_MIB (default 128) MiB in 64 KiB writes with
// backpressure, after a warm-up of BENCH_TRANSPORT_WARMUP_MIB (16) on the same connection.
// Each run is a fresh process (or two) started as the daemon is (DAEMON_V8_FLAGS, DAEMON_ENV, HeapTuner), in
// two layouts:
//   pair  the sender and the receiver in two processes, as two devices are: each side's CPU per MiB
//   one   both ends in one process (the older figure): their CPU together
// BENCH_TRANSPORT_ROUNDS (default 5) rounds, each running TCP and µTP in turn (which goes first
// alternates) in both layouts; medians. BENCH_TRANSPORT_LAYOUTS=pair|one picks one layout;
// BENCH_TRANSPORT_KINDS=udp|tcp one transport; BENCH_TRANSPORT_NODE_ARGS go to each child's node
// (e.g. "--cpu-prof --cpu-prof-dir=DIR").
// Run: make bench BENCH=transport (or node build/bench/transport.js after the build). Prints MiB/s,
// the µTP/TCP ratio and CPU ms per MiB; writes bench/results/transport.json.
// Figures and history: docs/benchmarks.md ("The UDP transport").

import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { DAEMON_ENV, DAEMON_V8_FLAGS, HeapTuner } from '../src/daemon/runtime.js';
import { loadOrCreateDeviceIdentity } from '../src/keys/index.js';
import { clientTlsOptions, serverTlsOptions } from '../src/protocol/index.js';
import { UdpSocket, UtpEndpoint, type UtpConnection } from '../src/transport/index.js';

const MIB = 1024 * 1024;
const total = Number(process.env.BENCH_TRANSPORT_MIB ?? 128) * MIB;
const warmup = Number(process.env.BENCH_TRANSPORT_WARMUP_MIB ?? 16) * MIB;
const rounds = Number(process.env.BENCH_TRANSPORT_ROUNDS ?? 5);
const layouts = (process.env.BENCH_TRANSPORT_LAYOUTS ?? 'pair,one').split(',') as Layout[];
const kinds = (process.env.BENCH_TRANSPORT_KINDS ?? 'tcp,udp').split(',') as Kind[];
const chunk = Buffer.alloc(64 * 1024, 7);
const SELF = fileURLToPath(import.meta.url);

type Kind = 'tcp' | 'udp';
type Layout = 'pair' | 'one';
type Role = 'sender' | 'receiver' | 'both';

/** What a side measured over the timed transfer (after the warm-up). */
interface SideReport {
  role: 'sender' | 'receiver';
  seconds: number;
  cpuSeconds: number;
  fullGcs: number;
  /** µTP only: payload bytes per packet and congestion window at the end. */
  packetPayload?: number;
  windowBytes?: number;
}

/** Messages between the parent and a child (over fork's IPC channel). */
type ToChild = { port: number };
type FromChild = { listening: number } | { report: SideReport } | { done: true };

// ---------------------------------------------------------------- one side (a child process)

/** Full collections counted by a PerformanceObserver (the daemon's HeapTuner watches the same). */
function gcCounter(): { read(): number } {
  let full = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if ((entry as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) full++;
  });
  observer.observe({ entryTypes: ['gc'] });
  return { read: () => full };
}

function measure(): () => { seconds: number; cpuSeconds: number } {
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuSeconds: (used.user + used.system) / 1e6 };
  };
}

interface Listener {
  port: number;
  accepted: Promise<tls.TLSSocket>;
  close(): Promise<void>;
}

async function listen(kind: Kind, dir: string): Promise<Listener> {
  const identity = await loadOrCreateDeviceIdentity(path.join(dir, 'receiver'), { name: 'receiver' });
  if (kind === 'tcp') {
    const server = tls.createServer({ ...serverTlsOptions(identity), noDelay: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = (once(server, 'secureConnection') as Promise<[tls.TLSSocket]>).then(([socket]) => socket);
    return { port: (server.address() as net.AddressInfo).port, accepted, close: async () => void server.close() };
  }
  const socket = new UdpSocket({ host: '127.0.0.1', port: 0 });
  await socket.open();
  const endpoint = new UtpEndpoint(socket);
  const accepted = (once(endpoint, 'connection') as Promise<[UtpConnection]>).then(async ([utp]) => {
    const secure = new tls.TLSSocket(utp, { isServer: true, ...serverTlsOptions(identity) });
    await once(secure, 'secure');
    (secure as tls.TLSSocket & { utp?: UtpConnection }).utp = utp;
    return secure;
  });
  return {
    port: socket.address().port,
    accepted,
    close: async () => {
      endpoint.close();
      await socket.close();
    },
  };
}

async function dial(kind: Kind, port: number, dir: string): Promise<{ socket: tls.TLSSocket; utp?: UtpConnection; close(): Promise<void> }> {
  const identity = await loadOrCreateDeviceIdentity(path.join(dir, 'sender'), { name: 'sender' });
  if (kind === 'tcp') {
    const socket = tls.connect({ ...clientTlsOptions(identity), host: '127.0.0.1', port });
    socket.setNoDelay(true);
    await once(socket, 'secureConnect');
    return { socket, close: async () => undefined };
  }
  const udp = new UdpSocket({ host: '127.0.0.1', port: 0 });
  await udp.open();
  const endpoint = new UtpEndpoint(udp);
  const utp = await endpoint.connect({ address: '127.0.0.1', port }, { timeoutMs: 10_000 });
  const socket = tls.connect({ ...clientTlsOptions(identity), socket: utp });
  await once(socket, 'secureConnect');
  return {
    socket,
    utp,
    close: async () => {
      endpoint.close();
      await udp.close();
    },
  };
}

function utpFigures(utp: UtpConnection | undefined): Pick<SideReport, 'packetPayload' | 'windowBytes'> {
  return utp ? { packetPayload: utp.packetPayload, windowBytes: utp.congestionWindow } : {};
}

/**
 * The receiving side: counts the warm-up, answers it with one byte (the sender's start signal),
 * times the rest, answers its end with one byte.
 */
function receive(socket: tls.TLSSocket, utp: UtpConnection | undefined, gcs: { read(): number }): Promise<SideReport> {
  return new Promise((resolve) => {
    let got = 0;
    let stop: (() => { seconds: number; cpuSeconds: number }) | null = null;
    let gcBefore = 0;
    socket.on('data', (data: Buffer) => {
      got += data.length;
      if (!stop && got >= warmup) {
        stop = measure();
        gcBefore = gcs.read();
        socket.write(Buffer.of(1));
      }
      if (stop && got >= warmup + total) {
        socket.removeAllListeners('data');
        const figures = stop();
        socket.write(Buffer.of(2));
        resolve({ role: 'receiver', ...figures, fullGcs: gcs.read() - gcBefore, ...utpFigures(utp) });
      }
    });
  });
}

async function writeBytes(socket: tls.TLSSocket, bytes: number): Promise<void> {
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!socket.write(chunk.length <= bytes - sent ? chunk : chunk.subarray(0, bytes - sent))) await once(socket, 'drain');
  }
}

async function send(socket: tls.TLSSocket, utp: UtpConnection | undefined, gcs: { read(): number }): Promise<SideReport> {
  const signals: number[] = [];
  let wake: (() => void) | null = null;
  socket.on('data', (data: Buffer) => {
    signals.push(...data);
    wake?.();
  });
  const signal = async (): Promise<void> => {
    while (signals.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    signals.shift();
  };
  await writeBytes(socket, warmup);
  await signal();
  const stop = measure();
  const gcBefore = gcs.read();
  await writeBytes(socket, total);
  await signal();
  return { role: 'sender', ...stop(), fullGcs: gcs.read() - gcBefore, ...utpFigures(utp) };
}

/** A child's work: BENCH_TRANSPORT_ROLE, BENCH_TRANSPORT_KIND from the parent. */
async function child(role: Role, kind: Kind): Promise<void> {
  const tuner = new HeapTuner();
  tuner.start();
  const gcs = gcCounter();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-transport-'));
  const report = (message: FromChild): void => void process.send!(message);
  try {
    if (role === 'both') {
      const listener = await listen(kind, dir);
      const dialled = await dial(kind, listener.port, dir);
      const socket = await listener.accepted;
      const [r, s] = await Promise.all([receive(socket, (socket as tls.TLSSocket & { utp?: UtpConnection }).utp, gcs), send(dialled.socket, dialled.utp, gcs)]);
      report({ report: r });
      report({ report: s });
      dialled.socket.destroy();
      socket.destroy();
      await Promise.all([dialled.close(), listener.close()]);
    } else if (role === 'receiver') {
      const listener = await listen(kind, dir);
      report({ listening: listener.port });
      const socket = await listener.accepted;
      report({ report: await receive(socket, (socket as tls.TLSSocket & { utp?: UtpConnection }).utp, gcs) });
      // The sender closes first (it waits for our last byte).
      await once(socket, 'close');
      await listener.close();
    } else {
      const [{ port }] = (await once(process, 'message')) as [ToChild];
      const dialled = await dial(kind, port, dir);
      report({ report: await send(dialled.socket, dialled.utp, gcs) });
      dialled.socket.end();
      dialled.socket.destroy();
      await dialled.close();
    }
  } finally {
    tuner.close();
    await rm(dir, { recursive: true, force: true });
  }
  report({ done: true });
  process.disconnect();
}

// ---------------------------------------------------------------- the parent

function start(role: Role, kind: Kind): { proc: ChildProcess; messages: FromChild[]; next(): Promise<FromChild>; exited: Promise<void> } {
  const proc = fork(SELF, [], {
    execArgv: [...DAEMON_V8_FLAGS, ...(process.env.BENCH_TRANSPORT_NODE_ARGS ?? '').split(' ').filter(Boolean)],
    env: { ...DAEMON_ENV, ...process.env, BENCH_TRANSPORT_ROLE: role, BENCH_TRANSPORT_KIND: kind },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages: FromChild[] = [];
  let wake: (() => void) | null = null;
  proc.on('message', (message: FromChild) => {
    messages.push(message);
    wake?.();
  });
  const exited = new Promise<void>((resolve, reject) => {
    proc.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`bench child (${role}, ${kind}) exited with ${code}`))));
  });
  const next = async (): Promise<FromChild> => {
    while (messages.length === 0) {
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), exited.then(() => Promise.reject(new Error(`bench child (${role}, ${kind}) ended early`)))]);
    }
    return messages.shift()!;
  };
  return { proc, messages, next, exited };
}

async function reportOf(side: { next(): Promise<FromChild> }): Promise<SideReport> {
  for (;;) {
    const message = await side.next();
    if ('report' in message) return message.report;
  }
}

/** One transfer: the two sides' reports. */
async function run(layout: Layout, kind: Kind): Promise<{ sender: SideReport; receiver: SideReport }> {
  if (layout === 'one') {
    const both = start('both', kind);
    const a = await reportOf(both);
    const b = await reportOf(both);
    await both.exited;
    return a.role === 'sender' ? { sender: a, receiver: b } : { sender: b, receiver: a };
  }
  const receiver = start('receiver', kind);
  const first = await receiver.next();
  if (!('listening' in first)) throw new Error('the bench receiver did not listen');
  const sender = start('sender', kind);
  sender.proc.send({ port: first.listening } satisfies ToChild);
  const [s, r] = await Promise.all([reportOf(sender), reportOf(receiver)]);
  await Promise.all([sender.exited, receiver.exited]);
  return { sender: s, receiver: r };
}

const median = (xs: number[]): number => (xs.length ? [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]! : NaN);

async function main(): Promise<void> {
  type Runs = Record<Kind, Array<{ sender: SideReport; receiver: SideReport }>>;
  const results: Record<Layout, Runs> = { pair: { tcp: [], udp: [] }, one: { tcp: [], udp: [] } };
  const loads: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? kinds : [...kinds].reverse();
    for (const layout of layouts) {
      for (const kind of order) {
        results[layout][kind].push(await run(layout, kind));
        loads.push(os.loadavg()[0]!);
      }
    }
  }
  const mib = total / MIB;
  const summary: Record<string, unknown> = {};
  for (const layout of layouts) {
    const rate = (kind: Kind): number[] => results[layout][kind].map((r) => mib / r.sender.seconds);
    const cpu = (kind: Kind, role: 'sender' | 'receiver' | 'both'): number => {
      const per = results[layout][kind].map((r) => {
        // One process: both reports cover the same process; the sender's span is the whole transfer.
        if (layout === 'one') return r.sender.cpuSeconds;
        return role === 'both' ? r.sender.cpuSeconds + r.receiver.cpuSeconds : r[role].cpuSeconds;
      });
      return (median(per) * 1000) / mib;
    };
    const [tcpRate, udpRate] = [median(rate('tcp')), median(rate('udp'))];
    const title = layout === 'pair' ? 'two processes (sender, receiver)' : 'one process (both ends)';
    console.log(`${title}:`);
    console.log(`  TLS over TCP: ${rate('tcp').map((x) => x.toFixed(0)).join(', ')} MiB/s (median ${tcpRate.toFixed(0)})`);
    console.log(`  TLS over µTP: ${rate('udp').map((x) => x.toFixed(0)).join(', ')} MiB/s (median ${udpRate.toFixed(0)})`);
    const cpuLine =
      layout === 'pair'
        ? (kind: Kind): string => `sender ${cpu(kind, 'sender').toFixed(2)}, receiver ${cpu(kind, 'receiver').toFixed(2)} ms`
        : (kind: Kind): string => `${cpu(kind, 'both').toFixed(2)} ms`;
    console.log(`  CPU per MiB (medians): TCP ${cpuLine('tcp')}; µTP ${cpuLine('udp')}`);
    const gcs = (kind: Kind): string => results[layout][kind].map((r) => (layout === 'one' ? r.sender.fullGcs : `${r.sender.fullGcs}/${r.receiver.fullGcs}`)).join(' ');
    console.log(`  full collections per run: TCP ${gcs('tcp')}; µTP ${gcs('udp')}`);
    console.log(`  µTP/TCP: ${(udpRate / tcpRate).toFixed(2)}x`);
    summary[layout] = {
      tcpMiBps: rate('tcp'),
      udpMiBps: rate('udp'),
      ratio: udpRate / tcpRate,
      cpuMsPerMiB:
        layout === 'pair'
          ? { tcp: { sender: cpu('tcp', 'sender'), receiver: cpu('tcp', 'receiver') }, udp: { sender: cpu('udp', 'sender'), receiver: cpu('udp', 'receiver') } }
          : { tcp: cpu('tcp', 'both'), udp: cpu('udp', 'both') },
      packetPayload: results[layout].udp[0]?.sender.packetPayload,
    };
  }
  const load = `load ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}`;
  console.log(`(${mib} MiB one way after ${warmup / MIB} MiB of warm-up, ${rounds} rounds, ${load}, ${os.cpus().length} cores)`);
  const file = path.resolve(SELF, '../../../bench/results/transport.json');
  await writeFile(file, `${JSON.stringify({ date: new Date().toISOString(), cores: os.cpus().length, mib, rounds, loads, ...summary }, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

const role = process.env.BENCH_TRANSPORT_ROLE as Role | undefined;
if (role) await child(role, (process.env.BENCH_TRANSPORT_KIND ?? 'udp') as Kind);
else await main();
