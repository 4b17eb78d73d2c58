// µTP over an in-memory datagram link whose faults are scripted and seeded: sequence numbers that
// wrap around 0xffff mid-transfer, random loss, duplicated and reordered packets, acks lost; the
// data must arrive intact both ways and the connection close cleanly. (The loopback tests in
// utp.test.ts start at a random sequence number, so they wrap only sometimes.)

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mock, test } from 'node:test';
import { MAX_PAYLOAD, UtpEndpoint, type DatagramSocket, type UdpEndpoint, type UtpConnection, type UtpConnectionOptions } from '../../src/transport/index.js';
import { ST_DATA, ST_STATE, decodePacket } from '../../src/transport/utp-packet.js';

interface Faults {
  loss: number;
  duplicate: number;
  reorder: number;
}

/** Two datagram sockets joined in memory; each datagram may be lost, doubled or held behind the next. */
class MemoryLink {
  private rng = 0x2545f491;
  readonly sides: [MemorySocket, MemorySocket];
  lost = 0;
  doubled = 0;
  reordered = 0;
  /** Data sequence numbers seen, by sending port. */
  readonly dataSeqs = new Map<number, Set<number>>();

  constructor(private readonly faults: Faults) {
    this.sides = [new MemorySocket(this, { address: '10.0.0.1', port: 1 }), new MemorySocket(this, { address: '10.0.0.2', port: 2 })];
  }

  random(): number {
    let x = this.rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng / 0x100000000;
  }

  carry(from: MemorySocket, buf: Buffer): void {
    const to = this.sides[0] === from ? this.sides[1] : this.sides[0];
    const pkt = decodePacket(buf);
    if (pkt?.type === ST_DATA) {
      const seen = this.dataSeqs.get(from.local.port) ?? new Set<number>();
      seen.add(pkt.seq);
      this.dataSeqs.set(from.local.port, seen);
    }
    // Faults only once the connection is up (its setup has its own tests), on data and acks alike.
    const faulty = pkt !== null && (pkt.type === ST_DATA || pkt.type === ST_STATE) && to.connected && from.connected;
    const copy = Buffer.from(buf); // the sender may reuse its buffer once acked
    if (faulty && this.random() < this.faults.loss) {
      this.lost++;
      return;
    }
    const times = faulty && this.random() < this.faults.duplicate ? 2 : 1;
    if (times === 2) this.doubled++;
    const late = faulty && this.random() < this.faults.reorder;
    if (late) this.reordered++;
    for (let i = 0; i < times; i++) {
      // Delivered on a later turn of the event loop, as a socket would; a reordered one a turn later still.
      if (late) setImmediate(() => setImmediate(() => to.deliver(copy, from.local)));
      else setImmediate(() => to.deliver(copy, from.local));
    }
  }
}

class MemorySocket implements DatagramSocket {
  private handler: ((buf: Buffer, from: UdpEndpoint) => void) | null = null;
  connected = false;

  constructor(private readonly link: MemoryLink, readonly local: UdpEndpoint) {}

  send(buf: Buffer): void {
    this.link.carry(this, buf);
  }

  handle(_classify: (buf: Buffer) => boolean, handler: (buf: Buffer, from: UdpEndpoint) => void): () => void {
    this.handler = handler;
    return () => {
      this.handler = null;
    };
  }

  deliver(buf: Buffer, from: UdpEndpoint): void {
    this.handler?.(buf, from);
  }
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Deterministic bytes (a seeded generator), so a failure is the same every run. */
function bytes(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function drain(stream: UtpConnection): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

async function pump(stream: UtpConnection, data: Buffer, sizes: readonly number[] = [16384]): Promise<void> {
  for (let at = 0, i = 0; at < data.length; i++) {
    const end = Math.min(data.length, at + sizes[i % sizes.length]!);
    if (!stream.write(data.subarray(at, end))) await once(stream, 'drain');
    at = end;
  }
  stream.end();
}

async function transfer(faults: Faults, size: number, options: { connection?: UtpConnectionOptions; writes?: readonly number[] } = {}): Promise<MemoryLink> {
  const link = new MemoryLink(faults);
  const [sa, sb] = link.sides;
  const a = new UtpEndpoint(sa, { connection: options.connection ?? {} });
  const b = new UtpEndpoint(sb, { connection: options.connection ?? {} });
  // A real socket keeps the event loop alive while all packets are lost and only the connections' (unreferenced) timers are due.
  const socketHandle = setInterval(() => undefined, 1_000);
  try {
    const accepted = once(b, 'connection') as Promise<[UtpConnection]>;
    const x = await a.connect(sb.local, { timeoutMs: 10_000 });
    x.write(Buffer.from('x'));
    const [y] = await accepted;
    assert.equal((y.read(1) ?? (await once(y, 'readable'), y.read(1)))?.toString(), 'x');
    sa.connected = sb.connected = true;
    const up = bytes(size, 1);
    const down = bytes(size, 2);
    const [gotAtY, gotAtX] = await Promise.all([drain(y), drain(x), pump(x, up, options.writes), pump(y, down, options.writes)]);
    assert.equal(sha(gotAtY), sha(up));
    assert.equal(sha(gotAtX), sha(down));
    const closed = (c: UtpConnection): Promise<void> => new Promise((resolve) => (c.closed ? resolve() : c.once('close', () => resolve())));
    await Promise.all([closed(x), closed(y)]);
    return link;
  } finally {
    clearInterval(socketHandle);
    a.close();
    b.close();
  }
}

test('sequence numbers wrap past 0xffff mid-transfer: 1 MiB each way intact through 3 % loss, 3 % duplicates and 3 % reordering', async () => {
  // Both ends pick their first sequence number (and connection ID) from Math.random: 0xffc0, 64 packets before the wrap.
  const random = mock.method(Math, 'random', () => 0xffc0 / 0x10000);
  let link: MemoryLink;
  try {
    link = await transfer({ loss: 0.03, duplicate: 0.03, reorder: 0.03 }, 1024 * 1024);
  } finally {
    random.mock.restore();
  }
  assert.equal(link.dataSeqs.size, 2);
  for (const seqs of link.dataSeqs.values()) {
    assert.ok(seqs.has(0xffff) && seqs.has(0) && seqs.has(1), 'the data packets crossed the wrap');
    assert.ok(seqs.size > (1024 * 1024) / MAX_PAYLOAD, 'one sequence number per packet');
  }
  assert.ok(link.lost > 20 && link.doubled > 20 && link.reordered > 20, `faults happened: ${link.lost} lost, ${link.doubled} doubled, ${link.reordered} reordered`);
});

test('10 % of data and acks duplicated and 10 % reordered, nothing lost: intact both ways, and both ends close cleanly', async () => {
  const link = await transfer({ loss: 0, duplicate: 0.1, reorder: 0.1 }, 512 * 1024);
  assert.ok(link.doubled > 20 && link.reordered > 20);
});

test('writes of mixed sizes, copied into send blocks that packets span and that are reused once acked: intact both ways through 3 % loss and reordering', async () => {
  // TLS's 4-record writes (a little over 64 KiB), single bytes, small frames and mid-sized pieces, so packets gather slices of several writes.
  const writes = [65_707, 1, 100, 16_384, 1_999, 2_048, 3_000, 700];
  const link = await transfer({ loss: 0.03, duplicate: 0.01, reorder: 0.03 }, 1024 * 1024, { writes });
  assert.ok(link.lost > 10, `packets were lost and sent again from the written chunks: ${link.lost}`);
});
