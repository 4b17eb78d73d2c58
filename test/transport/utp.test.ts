// µTP over real UDP sockets on loopback: integrity of large transfers both ways, through a lossy
// and reordering link, TLS 1.3 over it, backpressure, and the abuse rules (no state for junk or
// unproved SYNs, no reply larger than a SYN, bounded half-open table).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { LOOPBACK_PAYLOAD, MAX_PAYLOAD, MAX_SIZE_PROBES, UdpSocket, UtpEndpoint, type UtpConnection, type UtpEndpointOptions } from '../../src/transport/index.js';
import { HEADER_BYTES, ST_STATE, ST_SYN, decodePacket, encodePacket } from '../../src/transport/utp-packet.js';
import { makeIdentities } from '../protocol/helpers.js';
import { clientTlsOptions, serverTlsOptions } from '../../src/protocol/index.js';
import { LossyLink } from '../helpers/lossy-link.js';
import { POLL_MS, WAIT_LIMIT_MS } from '../helpers/wait.js';

interface Side {
  socket: UdpSocket;
  endpoint: UtpEndpoint;
}

async function side(options: UtpEndpointOptions = {}): Promise<Side> {
  const socket = new UdpSocket({ host: '127.0.0.1', port: 0 });
  await socket.open();
  return { socket, endpoint: new UtpEndpoint(socket, options) };
}

/** An emulated link stands for an internet path: packets of the internet's size, as off loopback. */
const internetSized: UtpEndpointOptions = { connection: { maxPayload: MAX_PAYLOAD } };

async function closeSide(s: Side): Promise<void> {
  s.endpoint.close();
  await s.socket.close();
}

function sha(buf: Buffer | Buffer[]): string {
  const hash = createHash('sha256');
  for (const b of Array.isArray(buf) ? buf : [buf]) hash.update(b);
  return hash.digest('hex');
}

/** Reads a stream to its end (without destroying it, as `for await` would). */
function drain(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve, reject) => {
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** Writes `data` in 64 KiB pieces, respecting backpressure, then ends. */
async function pump(stream: NodeJS.WritableStream, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 65536) {
    if (!stream.write(data.subarray(at, at + 65536))) await once(stream, 'drain');
  }
  stream.end();
}

async function connectPair(a: Side, b: Side, port = b.socket.address().port): Promise<[UtpConnection, UtpConnection]> {
  const accepted = once(b.endpoint, 'connection') as Promise<[UtpConnection]>;
  const dialled = await a.endpoint.connect({ address: '127.0.0.1', port }, { timeoutMs: 10_000 });
  dialled.write(Buffer.from('x')); // the acceptor hands the connection on once the round trip is proved
  const [accept] = await accepted;
  const first = accept.read(1) ?? (await once(accept, 'readable'), accept.read(1));
  assert.equal(first?.toString(), 'x');
  return [dialled, accept];
}

describe('µTP on loopback', () => {
  let a: Side;
  let b: Side;
  before(async () => {
    a = await side();
    b = await side();
  });
  after(async () => {
    await closeSide(a);
    await closeSide(b);
  });

  test('16 MiB each way at once arrive intact, and both ends close cleanly', async () => {
    const [x, y] = await connectPair(a, b);
    const up = randomBytes(16 * 1024 * 1024);
    const down = randomBytes(16 * 1024 * 1024);
    const [gotAtY, gotAtX] = await Promise.all([drain(y), drain(x), pump(x, up), pump(y, down)]);
    assert.equal(sha(gotAtY), sha(up));
    assert.equal(sha(gotAtX), sha(down));
    const closed = (c: UtpConnection): Promise<void> => new Promise((resolve) => (c.closed ? resolve() : c.once('close', () => resolve())));
    await Promise.all([closed(x), closed(y)]);
    assert.ok(x.srttMs !== undefined && x.srttMs >= 0);
    for (const sender of [x, y]) {
      // Loopback carries big datagrams: a sender that lost nothing had its size probe acked and moved up to them.
      // (On a starved machine a timeout can take the probe, and LEDBAT then keep the window below a probe's size;
      // the probe tests below lose probes on purpose.)
      const { timeouts, randomLosses, congestionLosses } = sender.stats;
      if (timeouts + randomLosses + congestionLosses === 0) assert.equal(sender.packetPayload, LOOPBACK_PAYLOAD);
    }
  });

  test('a bulk sender reuses its send blocks once their packets are acked: 32 MiB sent from about a window of them', async () => {
    const [x, y] = await connectPair(a, b);
    const data = randomBytes(32 * 1024 * 1024);
    const [got] = await Promise.all([drain(y), pump(x, data)]);
    assert.equal(sha(got), sha(data));
    // 512 blocks of 64 KiB without reuse; at most the window (4 MiB) and the send buffer (1 MiB) in use at once.
    assert.ok(x.sendBlocksAllocated <= 96, `send blocks allocated: ${x.sendBlocksAllocated}`);
    y.end();
  });

  test('a connection that has sent nothing for a second gives its send blocks back, and sends from new ones after', async () => {
    const [x, y] = await connectPair(a, b);
    let got = 0;
    y.on('data', (d: Buffer) => (got += d.length));
    const data = randomBytes(8 * 1024 * 1024);
    for (let at = 0; at < data.length; at += 65536) if (!x.write(data.subarray(at, at + 65536))) await once(x, 'drain');
    const deadline = Date.now() + WAIT_LIMIT_MS;
    while (x.sendBlocksHeld > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    assert.equal(got, data.length);
    assert.equal(x.state, 'connected');
    assert.equal(x.sendBlocksHeld, 0, 'the free blocks and the last, all acked, are given back');
    const more = randomBytes(100_000);
    const rest = drain(y);
    await pump(x, more);
    assert.equal(sha(await rest), sha(more));
    y.end();
  });

  test('a reader that stops reading closes the window: the writer is held back, then resumes', async () => {
    const [x, y] = await connectPair(a, b);
    y.pause();
    const data = randomBytes(12 * 1024 * 1024);
    let writes = 0;
    let blocked = false;
    for (let at = 0; at < data.length; at += 65536) {
      writes++;
      if (!x.write(data.subarray(at, at + 65536))) {
        blocked = true;
        break;
      }
    }
    assert.ok(blocked, 'write() reported backpressure');
    assert.ok(writes * 65536 < data.length);
    // The rest, with backpressure honoured, once the reader reads again.
    const rest = data.subarray(writes * 65536);
    const done = Promise.all([drain(y), (async () => {
      await once(x, 'drain');
      await pump(x, rest);
    })()]);
    y.resume();
    const [got] = await done;
    assert.equal(sha(got), sha(data));
  });

  test('a written buffer is copied before its callback: reusing it then does not change what is sent', async () => {
    const [x, y] = await connectPair(a, b);
    const data = randomBytes(768 * 1024);
    const original = Buffer.from(data);
    // The congestion window starts at ten packets: when the callback comes, most of it still waits to be sent.
    await new Promise<void>((resolve, reject) => x.write(data, (err) => (err ? reject(err) : resolve())));
    data.fill(0);
    x.end();
    const got = await drain(y);
    assert.equal(sha(got), sha(original));
  });

  test('TLS 1.3 runs over it unchanged', async () => {
    const [c, d] = [await side(), await side()];
    const temp = await makeIdentities(1);
    try {
      const [x, y] = await connectPair(c, d);
      const identity = temp.identities[0]!;
      const server = new tls.TLSSocket(y, { isServer: true, ...serverTlsOptions(identity) });
      const client = tls.connect({ ...clientTlsOptions(identity), socket: x });
      await once(client, 'secureConnect');
      assert.equal(client.getProtocol(), 'TLSv1.3');
      const data = randomBytes(4 * 1024 * 1024);
      const [got] = await Promise.all([drain(server), pump(client, data)]);
      assert.equal(sha(got), sha(data));
      server.end();
    } finally {
      await Promise.all([closeSide(c), closeSide(d)]);
      await temp.cleanup();
    }
  });
});

describe('µTP packets on loopback', () => {
  test('writes a little longer than one packet (as TLS writes its records) go out as full packets, not a full one and a tiny one each; data queued before the size probe is gathered into the new size', async () => {
    const socket = new UdpSocket({ host: '127.0.0.1', port: 0 });
    await socket.open();
    // The sender's datagrams, counted on their way out: DATA packets' payload sizes.
    const payloads: number[] = [];
    const counting = {
      send: (buf: Buffer, port: number, host: string): void => {
        const pkt = decodePacket(buf);
        if (pkt && pkt.type === 0 && pkt.payload.length > 0) payloads.push(pkt.payload.length);
        socket.send(buf, port, host);
      },
      handle: socket.handle.bind(socket),
    };
    const a: Side = { socket, endpoint: new UtpEndpoint(counting) };
    const b = await side();
    try {
      const [x, y] = await connectPair(a, b);
      // As TLS over a Duplex writes: one write per turn of the event loop, the next after the last one's callback.
      const piece = LOOPBACK_PAYLOAD + 171;
      const data = randomBytes(64 * piece);
      const got = drain(y);
      for (let at = 0; at < data.length; at += piece) {
        await new Promise<void>((resolve, reject) => x.write(data.subarray(at, at + piece), (err) => (err ? reject(err) : resolve())));
        await new Promise((resolve) => setImmediate(resolve));
      }
      x.end();
      assert.equal(sha(await got), sha(data));
      // Until the size probe's ack, packets are small (as many as the window lets out during its
      // round trip, no more than before it); the blocks queued before it then go out gathered into
      // packets of the new size, not one small packet each.
      const probe = payloads.indexOf(LOOPBACK_PAYLOAD);
      assert.ok(probe >= 0, 'the sender moved to loopback-sized packets');
      const start = payloads.indexOf(LOOPBACK_PAYLOAD, probe + 1);
      const smallBefore = payloads.slice(0, probe).filter((n) => n === MAX_PAYLOAD).length;
      const smallAfter = payloads.slice(probe).filter((n) => n === MAX_PAYLOAD).length;
      assert.ok(smallAfter <= smallBefore, `${smallAfter} small packets after the probe, ${smallBefore} before it`);
      // From the first packet of the new size on, packets are full but for a few: each write's tail waits for the next write.
      const after = payloads.slice(start);
      const bytes = after.reduce((sum, n) => sum + n, 0);
      const small = after.filter((n) => n < LOOPBACK_PAYLOAD / 2).length;
      assert.ok(after.length <= Math.ceil(bytes / LOOPBACK_PAYLOAD) + 4, `${after.length} packets carried ${bytes} bytes (${small} of them under half full)`);
    } finally {
      await closeSide(a);
      await closeSide(b);
    }
  });
});

describe('µTP through a lossy, reordering link', () => {
  test('4 MiB each way intact with 3 % loss and 3 % reordering each direction', async () => {
    const a = await side(internetSized);
    const b = await side(internetSized);
    const link = new LossyLink({ target: { address: '127.0.0.1', port: b.socket.address().port }, loss: 0.03, reorder: 0.03, seed: 7 });
    const port = await link.open();
    try {
      const [x, y] = await connectPair(a, b, port);
      const up = randomBytes(4 * 1024 * 1024);
      const down = randomBytes(4 * 1024 * 1024);
      const [gotAtY, gotAtX] = await Promise.all([drain(y), drain(x), pump(x, up), pump(y, down)]);
      assert.equal(sha(gotAtY), sha(up));
      assert.equal(sha(gotAtX), sha(down));
      assert.ok(link.dropped > 50 && link.reordered > 50, `the link did drop (${link.dropped}) and reorder (${link.reordered})`);
    } finally {
      await link.close();
      await closeSide(a);
      await closeSide(b);
    }
  });
});

describe('µTP packet-size probes', () => {
  test('a lost size probe is sent again, the data arrives intact, and a later probe moves the sender up to big packets', async () => {
    const a = await side();
    const b = await side();
    // Datagrams over the internet's size are dropped once each way: the first probe of each side.
    const link = new LossyLink({ target: { address: '127.0.0.1', port: b.socket.address().port }, dropLarger: { bytes: HEADER_BYTES + 34 + MAX_PAYLOAD, count: 2 } });
    const port = await link.open();
    try {
      const [x, y] = await connectPair(a, b, port);
      const up = randomBytes(4 * 1024 * 1024);
      const down = randomBytes(4 * 1024 * 1024);
      const [gotAtY, gotAtX] = await Promise.all([drain(y), drain(x), pump(x, up), pump(y, down)]);
      assert.equal(sha(gotAtY), sha(up));
      assert.equal(sha(gotAtX), sha(down));
      assert.equal(link.droppedLarger, 2);
      // One lost probe (on a busy machine, lost with the burst around it) is no sign of the path's size.
      assert.equal(x.packetPayload, LOOPBACK_PAYLOAD);
      assert.equal(y.packetPayload, LOOPBACK_PAYLOAD);
    } finally {
      await link.close();
      await closeSide(a);
      await closeSide(b);
    }
  });
  test('a size probe lost with the burst around it is no sign of the path\'s size: tried again until one arrives', async () => {
    const a = await side();
    const b = await side();
    // One way only, so every large datagram is x's: each of the first ones is dropped with the 8 packets after it.
    const drops = 3 * MAX_SIZE_PROBES;
    const link = new LossyLink({ target: { address: '127.0.0.1', port: b.socket.address().port }, dropLarger: { bytes: HEADER_BYTES + 34 + MAX_PAYLOAD, count: drops, burst: 8 } });
    const port = await link.open();
    try {
      const [x, y] = await connectPair(a, b, port);
      const up = randomBytes(8 * 1024 * 1024);
      y.end();
      const [gotAtY] = await Promise.all([drain(y), pump(x, up)]);
      assert.equal(sha(gotAtY), sha(up));
      assert.equal(link.droppedLarger, drops, 'more probes (and their copies sent again) were lost than MAX_SIZE_PROBES');
      assert.equal(x.packetPayload, LOOPBACK_PAYLOAD);
    } finally {
      await link.close();
      await closeSide(a);
      await closeSide(b);
    }
  });
});

describe('µTP abuse rules', () => {
  test('junk, truncated and unmatched packets create no state; a SYN gets one STATE no larger; unproved SYNs stay bounded and are never handed on', async () => {
    const b = new UdpSocket({ host: '127.0.0.1', port: 0 });
    await b.open();
    const endpoint = new UtpEndpoint(b, { maxHalfOpen: 4 });
    let handed = 0;
    endpoint.on('connection', () => handed++);
    const raw = createSocket('udp4');
    await new Promise<void>((resolve) => raw.bind(0, '127.0.0.1', resolve));
    const replies: Buffer[] = [];
    raw.on('message', (buf) => replies.push(buf));
    const port = b.address().port;
    const send = (buf: Buffer): Promise<void> => new Promise((resolve) => raw.send(buf, port, '127.0.0.1', () => resolve()));
    try {
      const syn = (id: number): Buffer => encodePacket({ type: ST_SYN, connectionId: id, timestampUs: 1, timestampDiffUs: 0, windowSize: 65536, seq: 100, ack: 0 });
      // Truncated header, a bad extension chain, a payload on a SYN, data for no connection.
      const junk = [
        syn(1).subarray(0, HEADER_BYTES - 1),
        Buffer.concat([Buffer.from([0x41, 0x01]), syn(1).subarray(2), Buffer.from([0, 200])]),
        Buffer.concat([syn(1), Buffer.from('payload')]),
        encodePacket({ type: 0, connectionId: 9, timestampUs: 1, timestampDiffUs: 0, windowSize: 1, seq: 1, ack: 1 }, Buffer.from('data')),
      ];
      const until = async (done: () => boolean): Promise<void> => {
        while (!done()) await new Promise((resolve) => setImmediate(resolve));
      };
      for (const buf of junk) await send(buf);
      // The truncated one is no µTP at all (the socket drops it); the others reach the endpoint, which drops them.
      await until(() => b.dropped === 1 && endpoint.dropped === 3);
      // Ten SYNs from one "spoofed" source that never answers: four fit the half-open table.
      for (let id = 10; id < 20; id++) await send(syn(id));
      await until(() => endpoint.dropped === 9);
      assert.equal(endpoint.halfOpenCount, 4, 'half-open table bounded');
      assert.equal(endpoint.size, 4);
      while (replies.length < 4) await once(raw, 'message');
      for (const reply of replies) {
        const pkt = decodePacket(reply)!;
        assert.equal(pkt.type, ST_STATE);
        assert.ok(reply.length <= syn(1).length, 'no reply larger than the SYN');
      }
      assert.equal(handed, 0, 'nothing handed on without a proved round trip');
      // A forged "proof" with a wrong ack number is ignored.
      const first = decodePacket(replies[0]!)!;
      await send(encodePacket({ type: ST_STATE, connectionId: (first.connectionId + 1) & 0xffff, timestampUs: 1, timestampDiffUs: 0, windowSize: 65536, seq: 101, ack: (first.seq + 7) & 0xffff }));
      await send(encodePacket({ type: ST_STATE, connectionId: (first.connectionId + 1) & 0xffff, timestampUs: 1, timestampDiffUs: 0, windowSize: 65536, seq: 101, ack: (first.seq - 1) & 0xffff }));
      while (handed === 0) await once(endpoint, 'connection');
      assert.equal(handed, 1, 'the proved one only');
    } finally {
      raw.close();
      endpoint.close();
      await b.close();
    }
  });
});
