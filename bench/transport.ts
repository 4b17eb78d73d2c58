// Transport throughput on loopback: the same TLS 1.3 link (Ferry's cipher suite) over TCP and over
// µTP on a UDP socket, one way, BENCH_TRANSPORT_MIB (default 256) MiB in 64 KiB writes with
// backpressure, alternating TCP and UDP runs BENCH_TRANSPORT_ROUNDS (default 3) times; medians.
// Run: make bench BENCH=transport (or node build/bench/transport.js after the build). Prints MiB/s and the UDP/TCP ratio.
// 2026-12-07, 2 busy cores, 128 MiB: TCP 752–872 MiB/s, µTP 114–127 MiB/s (0.15x); raw µTP
// without TLS ~150 MiB/s, CPU-bound (event loop 100 % busy) at ~9 µs per 1,400-byte datagram for
// both ends: the send syscall, allocation and GC per packet. Since: 16 KiB packets on loopback
// (probed) and no per-packet allocation: raw µTP 10 → 2.7 ms of CPU per MiB; with TLS 14–15 →
// 10.3–10.5 ms per MiB (0.14–0.15x → 0.20–0.23x, load 22); see docs/benchmarks.md for what is left.

import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { loadOrCreateDeviceIdentity, type DeviceIdentity } from '../src/keys/index.js';
import { clientTlsOptions, serverTlsOptions } from '../src/protocol/index.js';
import { UdpSocket, UtpEndpoint, type UtpConnection } from '../src/transport/index.js';

const MIB = 1024 * 1024;
const total = Number(process.env.BENCH_TRANSPORT_MIB ?? 256) * MIB;
const rounds = Number(process.env.BENCH_TRANSPORT_ROUNDS ?? 3);
const chunk = Buffer.alloc(64 * 1024, 7);

/** CPU seconds (user + system, both ends: they share this process) of each transfer, by transport. */
const cpuSeconds: Record<'tcp' | 'udp', number[]> = { tcp: [], udp: [] };

async function transfer(client: tls.TLSSocket, server: tls.TLSSocket, kind: 'tcp' | 'udp'): Promise<number> {
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  let got = 0;
  const done = new Promise<void>((resolve) => {
    server.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= total) resolve();
    });
  });
  for (let sent = 0; sent < total; sent += chunk.length) {
    if (!client.write(chunk)) await once(client, 'drain');
  }
  await done;
  const cpu = process.cpuUsage(cpuBefore);
  cpuSeconds[kind].push((cpu.user + cpu.system) / 1e6);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function tcpRun(identity: DeviceIdentity): Promise<number> {
  const server = tls.createServer({ ...serverTlsOptions(identity), noDelay: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
  const client = tls.connect({ ...clientTlsOptions(identity), host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  client.setNoDelay(true);
  await once(client, 'secureConnect');
  const [socket] = await accepted;
  const s = await transfer(client, socket, 'tcp');
  client.destroy();
  socket.destroy();
  server.close();
  return s;
}

async function udpRun(identity: DeviceIdentity): Promise<number> {
  const sa = new UdpSocket({ host: '127.0.0.1', port: 0 });
  const sb = new UdpSocket({ host: '127.0.0.1', port: 0 });
  await Promise.all([sa.open(), sb.open()]);
  const ea = new UtpEndpoint(sa);
  const eb = new UtpEndpoint(sb);
  const accepted = once(eb, 'connection') as Promise<[UtpConnection]>;
  const x = await ea.connect({ address: '127.0.0.1', port: sb.address().port }, { timeoutMs: 5000 });
  const tlsClient = tls.connect({ ...clientTlsOptions(identity), socket: x });
  const [y] = await accepted;
  const tlsServer = new tls.TLSSocket(y, { isServer: true, ...serverTlsOptions(identity) });
  await Promise.all([once(tlsClient, 'secureConnect'), once(tlsServer, 'secure')]);
  const s = await transfer(tlsClient, tlsServer, 'udp');
  tlsClient.destroy();
  tlsServer.destroy();
  ea.close();
  eb.close();
  await Promise.all([sa.close(), sb.close()]);
  return s;
}

const median = (xs: number[]): number => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;

const dir = await mkdtemp(path.join(os.tmpdir(), 'ferry-bench-transport-'));
try {
  const identity = await loadOrCreateDeviceIdentity(path.join(dir, 'device'), { name: 'bench' });
  const tcp: number[] = [];
  const udp: number[] = [];
  for (let round = 0; round < rounds; round++) {
    tcp.push(await tcpRun(identity));
    udp.push(await udpRun(identity));
  }
  const rate = (s: number): number => total / MIB / s;
  const [tcpRate, udpRate] = [rate(median(tcp)), rate(median(udp))];
  console.log(`TLS over TCP: ${tcp.map((s) => rate(s).toFixed(0)).join(', ')} MiB/s (median ${tcpRate.toFixed(0)})`);
  console.log(`TLS over µTP: ${udp.map((s) => rate(s).toFixed(0)).join(', ')} MiB/s (median ${udpRate.toFixed(0)})`);
  const cpuPerMiB = (kind: 'tcp' | 'udp'): string => ((median(cpuSeconds[kind]) * 1000) / (total / MIB)).toFixed(2);
  console.log(`CPU (both ends) per MiB: TCP ${cpuPerMiB('tcp')} ms, µTP ${cpuPerMiB('udp')} ms (medians)`);
  console.log(`UDP/TCP: ${(udpRate / tcpRate).toFixed(2)}x (${total / MIB} MiB one way, ${rounds} rounds, load ${os.loadavg()[0]!.toFixed(1)})`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
