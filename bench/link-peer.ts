// One end of the emulated-link benchmark (bench/link.ts), run inside a lab namespace:
//   link-peer.js serve HOST PORT           sends endlessly to whoever connects: over µTP (UDP HOST:PORT) and TCP (HOST:PORT)
//   link-peer.js fetch HOST PORT PLAN      downloads as PLAN says, then prints one JSON line of received bytes per bin
// PLAN: `utp@START-END,tcp@START-END` (seconds from the start; each flow is opened at START, closed at END).

import { once } from 'node:events';
import net from 'node:net';
import { UdpSocket, UtpEndpoint, type UtpConnection } from '../src/transport/index.js';

/** Bytes received are counted in bins this long. */
export const BIN_MS = 250;
const chunk = Buffer.alloc(64 * 1024, 0x5a);

/** Writes as fast as the stream takes it, until it closes. */
function pumpForever(stream: NodeJS.WritableStream & { destroyed: boolean }): void {
  stream.on('error', () => undefined);
  const fill = (): void => {
    while (!stream.destroyed && stream.write(chunk));
  };
  stream.on('drain', fill);
  fill();
}

async function serve(host: string, port: number): Promise<void> {
  const socket = new UdpSocket({ host, port });
  await socket.open();
  const endpoint = new UtpEndpoint(socket);
  endpoint.on('connection', (utp: UtpConnection) => {
    // Windows sampled each 250 ms, and the connection's counters at its end, to stderr (the bench prints it).
    const windows: number[] = [];
    const delays: number[] = [];
    const sampler = setInterval(() => {
      windows.push(Math.round(utp.congestionWindow / 1400));
      delays.push(Math.round(utp.queuingDelayUs / 1000));
    }, 250);
    utp.once('close', () => {
      clearInterval(sampler);
      const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
      const q = (xs: number[], f: number): number => sorted(xs)[Math.floor(f * (xs.length - 1))] ?? 0;
      const w = `window (packets) p10/50/90 ${q(windows, 0.1)}/${q(windows, 0.5)}/${q(windows, 0.9)}`;
      const d = `queuing delay (ms) p10/50/90 ${q(delays, 0.1)}/${q(delays, 0.5)}/${q(delays, 0.9)}`;
      console.error(`  server µTP: ${JSON.stringify(utp.stats)}; ${w}; ${d}; srtt ${utp.srttMs?.toFixed(0)} ms`);
    });
    pumpForever(utp);
  });
  const server = net.createServer((tcp) => pumpForever(tcp));
  server.listen(port, host);
  await once(server, 'listening');
  console.log('ready');
  await once(process, 'SIGTERM');
  endpoint.close();
  server.close();
  await socket.close();
  process.exit(0);
}

interface Flow {
  kind: 'utp' | 'tcp';
  startS: number;
  endS: number;
}

function parsePlan(text: string): Flow[] {
  return text.split(',').map((part) => {
    const match = /^(utp|tcp)@([\d.]+)-([\d.]+)$/.exec(part);
    if (!match) throw new Error(`bad plan part ${part}`);
    return { kind: match[1] as 'utp' | 'tcp', startS: Number(match[2]), endS: Number(match[3]) };
  });
}

async function fetch(host: string, port: number, plan: Flow[]): Promise<void> {
  const socket = new UdpSocket({ host: '0.0.0.0', port: 0 });
  await socket.open();
  const endpoint = new UtpEndpoint(socket);
  const started = performance.now();
  const totalMs = Math.max(...plan.map((f) => f.endS)) * 1000;
  const bins: Record<string, number[]> = {};
  const sleepUntil = (s: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, started + s * 1000 - performance.now())));
  await Promise.all(
    plan.map(async (flow, i) => {
      const name = `${flow.kind}${i}`;
      const counts: number[] = new Array(Math.ceil(totalMs / BIN_MS)).fill(0);
      bins[name] = counts;
      await sleepUntil(flow.startS);
      const stream: NodeJS.ReadableStream & { destroy(): void } =
        flow.kind === 'utp'
          ? await endpoint.connect({ address: host, port }, { timeoutMs: 10_000 })
          : await new Promise<net.Socket>((resolve, reject) => {
              const tcp = net.connect(port, host, () => resolve(tcp));
              tcp.once('error', reject);
            });
      if (flow.kind === 'utp') (stream as UtpConnection).write(Buffer.from('go')); // the acceptor hands it on after a round trip
      stream.on('error', () => undefined);
      stream.on('data', (d: Buffer) => {
        const bin = Math.floor((performance.now() - started) / BIN_MS);
        if (bin < counts.length) counts[bin]! += d.length;
      });
      await sleepUntil(flow.endS);
      stream.destroy();
    }),
  );
  console.log(JSON.stringify({ binMs: BIN_MS, bins }));
  endpoint.close();
  await socket.close();
  process.exit(0);
}

const [mode, host, port, plan] = process.argv.slice(2);
if (mode === 'serve') await serve(host!, Number(port));
else if (mode === 'fetch') await fetch(host!, Number(port), parsePlan(plan!));
else {
  console.error('usage: link-peer.js serve HOST PORT | fetch HOST PORT PLAN');
  process.exit(2);
}
