// Relay overhead on loopback: the relay C in its own process (so its CPU time is its own), A and B
// in this one, each linked to C by TLS 1.3 (Ferry's suite) carrying PeerConnection frames, as in
// the daemon; A opens a relayed stream to B through C, runs TLS end to end over it and sends
// BENCH_RELAY_MIB (default 256) MiB in 64 KiB writes with backpressure; no rate cap. Prints
// throughput and C's CPU seconds (user + system) per GiB relayed.
// Run: node build/bench/relay.js (after the build); BENCH_RELAY_PROF=DIR writes C's CPU profile there.
// 2026-12-07, 2 cores under load average ~20 (8 agents), 64 MiB: C 0.53–0.57 CPU s = 8.5–9.1 CPU s
// per GiB relayed (before RelayData frames were written without a msgpack copy and kept under
// 64 KiB: 13.6–15.3, mostly GC of 128 KiB frame buffers); 12–19 MiB/s wall (the machine's load).

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { certificateDeviceId } from '../src/connections/peer-id.js';
import { loadOrCreateDeviceIdentity, type DeviceIdentity } from '../src/keys/index.js';
import { PeerConnection, clientTlsOptions, isRelayMessage, serverTlsOptions } from '../src/protocol/index.js';
import { RelayNode, type Carrier, type RelayStream } from '../src/relay/index.js';

const MIB = 1024 * 1024;
const FOLDERS = new Set(['bench']);

/** Feeds a link's relay messages to `node`; returns the carrier. */
function carry(node: RelayNode, socket: tls.TLSSocket, deviceId: string, direction: 'in' | 'out'): Carrier {
  const connection = new PeerConnection(socket, { idleTimeoutMs: 600_000 });
  void connection.open();
  const carrier: Carrier = { deviceId, direction, folderIds: FOLDERS, relayed: false, send: (m) => connection.send(m) };
  void (async () => {
    for await (const message of connection) if (isRelayMessage(message)) node.receive(carrier, message);
    node.detach(carrier);
  })();
  return carrier;
}

async function relayChild(home: string): Promise<void> {
  const identity = await loadOrCreateDeviceIdentity(home, { name: 'relay' });
  const carriers = new Map<string, Carrier>();
  const node = new RelayNode({ relay: true, rateBps: 0, carrierFor: (id) => carriers.get(id), onIncoming: (s) => s.destroy() });
  const server = tls.createServer(serverTlsOptions(identity), (socket) => {
    socket.setNoDelay(true); // as the daemon's listener and dialler do
    const id = certificateDeviceId(socket)!;
    carriers.set(id, carry(node, socket, id, 'in'));
    process.send!({ connected: id });
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as { port: number }).port, id: identity.id }));
  process.on('message', (message: string) => {
    if (message === 'cpu') process.send!({ cpu: process.cpuUsage(), relayedBytes: node.counters.relayedBytes });
    if (message === 'exit') {
      server.close();
      process.disconnect();
      setTimeout(() => process.exit(0), 200).unref();
    }
  });
}

async function main(): Promise<void> {
  const total = Number(process.env.BENCH_RELAY_MIB ?? 256) * MIB;
  const root = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-relay-'));
  const child = fork(fileURLToPath(import.meta.url), ['relay-child', path.join(root, 'c')], { stdio: 'inherit', execArgv: process.env.BENCH_RELAY_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_RELAY_PROF}`] : [] });
  const messages: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  child.on('message', (m: Record<string, unknown>) => {
    messages.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const next = async (key: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const i = messages.findIndex((m) => key in m);
      if (i >= 0) return messages.splice(i, 1)[0]!;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  try {
    const { port, id: cId } = (await next('port')) as { port: number; id: string };
    const ids: DeviceIdentity[] = [await loadOrCreateDeviceIdentity(path.join(root, 'a'), { name: 'a' }), await loadOrCreateDeviceIdentity(path.join(root, 'b'), { name: 'b' })];
    const incoming: RelayStream[] = [];
    const nodes = ids.map(
      () => new RelayNode({ relay: false, carrierFor: () => undefined, onIncoming: (stream) => void incoming.push(stream) }) as RelayNode & { carrier?: Carrier },
    );
    for (const [i, identity] of ids.entries()) {
      const socket = tls.connect({ ...clientTlsOptions(identity), host: '127.0.0.1', port });
      await once(socket, 'secureConnect');
      socket.setNoDelay(true);
      nodes[i]!.carrier = carry(nodes[i]!, socket, cId, 'out');
      await next('connected');
    }
    const stream = await nodes[0]!.open(nodes[0]!.carrier!, ids[1]!.id);
    const far = incoming.shift()!;
    const client = tls.connect({ ...clientTlsOptions(ids[0]!), socket: stream });
    const server = new tls.TLSSocket(far, { isServer: true, ...serverTlsOptions(ids[1]!) });
    await once(client, 'secureConnect');
    child.send('cpu');
    const before = (await next('cpu')) as { cpu: NodeJS.CpuUsage };
    const started = process.hrtime.bigint();
    const endsBefore = process.cpuUsage();
    let got = 0;
    const done = new Promise<void>((resolve) => {
      server.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= total) resolve();
      });
    });
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (let sent = 0; sent < total; sent += chunk.length) if (!client.write(chunk)) await once(client, 'drain');
    await done;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const ends = process.cpuUsage(endsBefore);
    child.send('cpu');
    const after = (await next('cpu')) as { cpu: NodeJS.CpuUsage; relayedBytes: number };
    const cpu = (after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / 1e6;
    const gib = total / (1024 * MIB);
    console.log(
      `relay: ${(total / MIB).toFixed(0)} MiB end-to-end TLS through C in ${seconds.toFixed(2)} s = ${(total / MIB / seconds).toFixed(1)} MiB/s; ` +
        `C relayed ${(after.relayedBytes / MIB).toFixed(1)} MiB using ${cpu.toFixed(2)} CPU s = ${(cpu / gib).toFixed(2)} CPU s per GiB ` +
        `(A and B together: ${((ends.user + ends.system) / 1e6).toFixed(2)} CPU s)`,
    );
    client.destroy();
    server.destroy();
  } finally {
    child.send('exit');
    await once(child, 'exit').catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'relay-child') await relayChild(process.argv[3]!);
else await main();
