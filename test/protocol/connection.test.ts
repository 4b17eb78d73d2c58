// PeerConnection over in-memory pairs and loopback TCP: requests, timeouts, keepalive, close, backpressure, bad input.

import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { PeerConnection, RequestFailedError, type PeerConnectionOptions } from '../../src/protocol/connection.js';
import { encodeFrame } from '../../src/protocol/frames.js';
import type { Message, RequestMessage } from '../../src/protocol/messages.js';
import { duplexPair, eventually, makeIdentities, tcpPair, tlsPair, type TlsPair } from './helpers.js';

/** The keepalive test's idle timeout, and the quiet it survives (a quarter more). */
const IDLE_TIMEOUT_MS = 1000;
const QUIET_MS = IDLE_TIMEOUT_MS * 1.25;

const folderId = Buffer.alloc(20, 1);
const hash = Buffer.alloc(32, 2);
const blockRequest = { folderId, path: 'a/b', offset: 0, size: 4, hash };

async function connectedPair(options: PeerConnectionOptions = {}): Promise<[PeerConnection, PeerConnection]> {
  const [x, y] = duplexPair();
  const a = new PeerConnection(x, { closeTimeoutMs: 200, ...options });
  const b = new PeerConnection(y, { closeTimeoutMs: 200, ...options });
  await Promise.all([a.open(), b.open()]);
  return [a, b];
}

/** Answers every Request with its path's bytes (or NO_SUCH_FILE for 'missing'), until closed. */
async function serve(conn: PeerConnection, onRequest?: (req: RequestMessage) => Promise<void>): Promise<void> {
  for await (const message of conn) {
    if (message.type !== 'Request') continue;
    await onRequest?.(message);
    if (message.path === 'missing') await conn.send({ type: 'Response', id: message.id, error: 'NO_SUCH_FILE' });
    else await conn.send({ type: 'Response', id: message.id, data: Buffer.from(message.path) }).catch(() => undefined);
  }
}

/** Runs `run` on a TLS socket pair between two fresh identities, then closes it and removes the identities. */
async function overTls(run: (pair: TlsPair) => Promise<void>): Promise<void> {
  const ids = await makeIdentities(2);
  const pair = await tlsPair(ids.identities[0]!, ids.identities[1]!);
  try {
    await run(pair);
  } finally {
    await pair.close();
    await ids.cleanup();
  }
}

/** Both ends of a TLS pair as open PeerConnections. */
async function openOverTls(pair: TlsPair): Promise<{ server: PeerConnection; client: PeerConnection }> {
  const server = new PeerConnection(pair.server, { closeTimeoutMs: 200 });
  const client = new PeerConnection(pair.client, { closeTimeoutMs: 200 });
  await Promise.all([server.open(), client.open()]);
  return { server, client };
}

describe('PeerConnection', () => {
  test('request/response, errors from the peer, byte counters', async () => {
    const [a, b] = await connectedPair();
    const served = serve(b);
    assert.equal((await a.request(blockRequest)).toString(), 'a/b');
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => a.request({ ...blockRequest, path: `f${i}` })));
    assert.deepEqual(many.map(String), Array.from({ length: 50 }, (_, i) => `f${i}`));
    await assert.rejects(a.request({ ...blockRequest, path: 'missing' }), (err: unknown) => err instanceof RequestFailedError && err.responseError === 'NO_SUCH_FILE');
    assert.ok(a.bytesOut > 0 && a.bytesIn > 0);
    assert.equal(a.bytesOut, b.bytesIn);
    await a.close();
    await served;
    assert.equal(b.closedByPeer, true);
    assert.match(b.closeReason!, /closing/);
  });

  test('requests made in one turn of the event loop leave in one write of the stream', async () => {
    // x writes through writev when it can, counting its calls; y as usual.
    let writes = 0;
    let y!: Duplex;
    const x = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        writes++;
        y.push(chunk);
        callback();
      },
      writev(chunks, callback) {
        writes++;
        y.push(Buffer.concat(chunks.map(({ chunk }) => chunk as Buffer)));
        callback();
      },
      final(callback) {
        y.push(null);
        callback();
      },
    });
    y = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        x.push(chunk);
        callback();
      },
      final(callback) {
        x.push(null);
        callback();
      },
    });
    const a = new PeerConnection(x, { closeTimeoutMs: 200 });
    const b = new PeerConnection(y, { closeTimeoutMs: 200 });
    await Promise.all([a.open(), b.open()]);
    const served = serve(b);
    const before = writes;
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => a.request({ ...blockRequest, path: `f${i}` })));
    assert.deepEqual(many.map(String), Array.from({ length: 40 }, (_, i) => `f${i}`));
    assert.equal(writes - before, 1, '40 requests, one write');
    await a.close();
    await served;
  });

  test('a request times out, can be aborted, and a late response is ignored', async () => {
    const [a, b] = await connectedPair();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const served = serve(b, () => gate);
    await assert.rejects(a.request(blockRequest, { timeoutMs: 30 }), (err: unknown) => isFerryError(err, 'TIMEOUT'));
    const controller = new AbortController();
    const aborted = a.request(blockRequest, { signal: controller.signal, timeoutMs: 10_000 });
    controller.abort();
    await assert.rejects(aborted, (err: unknown) => isFerryError(err, 'ABORTED'));
    release();
    // The late responses arrive and are dropped; the link still works.
    assert.equal((await a.request({ ...blockRequest, path: 'after' })).toString(), 'after');
    await a.close();
    await served;
  });

  test('outstanding requests are bounded; extra ones wait for a slot', async () => {
    const [a, b] = await connectedPair({ maxOutstandingRequests: 2 });
    let inFlight = 0;
    let maxInFlight = 0;
    const served = serve(b, async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight--;
    });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => a.request({ ...blockRequest, path: `p${i}` })));
    assert.equal(results.length, 10);
    assert.ok(maxInFlight <= 2, `max in flight ${maxInFlight}`);
    await a.close();
    await served;
  });

  test('close() fails pending requests and tells the peer why', async () => {
    const [a, b] = await connectedPair();
    const pending = a.request(blockRequest); // b never answers: nobody consumes b's messages
    await eventually(() => b.bytesIn > 0);
    await a.close('SHUTDOWN', 'going away');
    await assert.rejects(pending, (err: unknown) => isFerryError(err, 'CLOSED'));
    await eventually(() => b.closed);
    assert.equal(b.closeCode, 'SHUTDOWN');
    assert.match(b.closeReason!, /going away/);
    await assert.rejects(a.send({ type: 'Ping' }), (err: unknown) => isFerryError(err, 'CLOSED'));
    await a.close(); // idempotent
  });

  test('keepalive pings keep a quiet link open; a silent peer is closed', async () => {
    const [a, b] = await connectedPair({ pingIntervalMs: 20, idleTimeoutMs: IDLE_TIMEOUT_MS });
    // More than an idle timeout of quiet, as far as the application is concerned: only time can show that the link
    // was not closed for being idle.
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    assert.ok(a.bytesIn > 0 && b.bytesIn > 0, 'pings flowed');
    assert.equal(a.closed, false);
    assert.equal(b.closed, false);
    await a.close();
    await b.close();

    const [x, y] = duplexPair();
    const lonely = new PeerConnection(x, { pingIntervalMs: 20, idleTimeoutMs: 80, closeTimeoutMs: 50 });
    y.resume(); // the other end reads but never writes
    await lonely.open();
    await eventually(() => lonely.closed);
    assert.equal(lonely.closeCode, 'TIMEOUT');
  });

  test('bad input closes the connection with a reason and nothing escapes to the event loop', async () => {
    const inputs: Buffer[] = [
      encodeFrame(0x55, Buffer.alloc(2)), // unknown type
      Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x10]), // oversized
      encodeFrame(0x20, Buffer.from([0x81, 0xa1])), // malformed msgpack
      encodeFrame(0x20, Buffer.from([0x80])), // Request missing every field
    ];
    for (const input of inputs) {
      const [x, y] = duplexPair();
      const victim = new PeerConnection(x, { closeTimeoutMs: 50 });
      await victim.open();
      y.write(input);
      await eventually(() => victim.closed);
      assert.ok(['PROTOCOL', 'FRAME_TOO_LARGE', 'PATH_UNSAFE'].includes(victim.closeCode!), victim.closeCode);
      await assert.rejects(victim.receive(), (err: unknown) => isFerryError(err, 'CLOSED'));
      y.destroy();
    }
  });

  test('receive() honours its timeout and signal; the async iterator ends on close', async () => {
    const [a, b] = await connectedPair();
    await assert.rejects(b.receive({ timeoutMs: 20 }), (err: unknown) => isFerryError(err, 'TIMEOUT'));
    const controller = new AbortController();
    const waiting = b.receive({ signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, (err: unknown) => isFerryError(err, 'ABORTED'));
    const seen: Message[] = [];
    const reading = (async () => {
      for await (const message of b) seen.push(message);
    })();
    await a.send({ type: 'Close', code: 'X', reason: 'y' }).catch(() => undefined);
    await reading;
    assert.equal(seen.length, 0);
    assert.equal(b.closeCode, 'X');
  });

  test('over TLS both ends read into one buffer of their own; blocks, and bytes that came before the connection started, arrive intact', async () => {
    await overTls(async (pair) => {
      // The server speaks first, before the client's PeerConnection exists: those bytes wait in the socket's stream buffer.
      const server = new PeerConnection(pair.server, { closeTimeoutMs: 200 });
      await server.open();
      await server.send({ type: 'Ping' });
      await server.send({ type: 'Have', folderId, path: 'early', version: {}, blockIndexes: [1, 2, 3] });
      await eventually(() => pair.client.readableLength > 0);
      const client = new PeerConnection(pair.client, { closeTimeoutMs: 200 });
      await client.open();
      assert.equal(client.readsIntoOwnBuffer, true, 'the TLS client reads into its own buffer');
      assert.equal(server.readsIntoOwnBuffer, true, "the TLS server's socket too");
      const early = await client.receive({ timeoutMs: 10_000 });
      assert.equal(early.type === 'Have' && early.path, 'early');
      const block = (i: number): Buffer => Buffer.alloc(1024 * 1024 + i, i + 1);
      const answers = (async () => {
        for await (const message of server) {
          if (message.type === 'Request') await server.send({ type: 'Response', id: message.id, data: block(message.offset) }).catch(() => undefined);
        }
      })();
      const got = await Promise.all(Array.from({ length: 8 }, (_, i) => client.request({ ...blockRequest, offset: i, size: 1024 * 1024 + i })));
      got.forEach((data, i) => assert.ok(data.equals(block(i)), `block ${i} intact`));
      await client.close();
      await answers;
    });
  });

  test('a Response whose data came from blockBuffer() is one buffer in one write (no writev), and arrives intact over TLS', async () => {
    await overTls(async (pair) => {
      const { server, client } = await openOverTls(pair);
      // What the TLS socket is handed: one buffer per _write, several per _writev (which TLSWrap copies into one).
      const writes: number[] = [];
      const writevs: number[] = [];
      const socket = pair.server as unknown as { _write: Function; _writev: Function };
      const write = socket._write.bind(socket);
      const writev = socket._writev.bind(socket);
      socket._write = (chunk: Buffer, encoding: string, cb: () => void) => (writes.push(chunk.length), write(chunk, encoding, cb));
      socket._writev = (chunks: unknown[], cb: () => void) => (writevs.push(chunks.length), writev(chunks, cb));
      const sizes = [1024 * 1024, 128 * 1024, 4096, 1];
      const fill = (i: number, data: Buffer): Buffer => data.fill(i + 1);
      const answers = (async () => {
        for await (const message of server) {
          if (message.type !== 'Request') continue;
          const data = fill(message.offset, server.blockBuffer(message.size));
          await server.send({ type: 'Response', id: message.id, data }).catch(() => undefined);
        }
      })();
      for (const [i, size] of sizes.entries()) {
        const got = await client.request({ ...blockRequest, offset: i, size });
        assert.ok(got.equals(Buffer.alloc(size, i + 1)), `block ${i} intact`);
      }
      assert.deepEqual(writevs, [], 'no response was written as several buffers');
      // Each response: its data plus the 24 bytes of its frame header, in one write.
      assert.deepEqual(writes, sizes.map((size) => size + 24));
      assert.equal(server.bytesOut, client.bytesIn);
      await client.close();
      await answers;
    });
  });

  test('over TLS, the body of a large frame is read straight into its own buffer, not copied out of the read buffer', async () => {
    await overTls(async (pair) => {
      const { server, client } = await openOverTls(pair);
      // What reaches the decoder through the socket's own read buffer (a copy each), and what is written in place.
      const decoder = (client as unknown as { decoder: { pushTransient: (b: Buffer) => unknown; filledInPlace: (n: number) => unknown } }).decoder;
      let copied = 0;
      let inPlace = 0;
      const pushTransient = decoder.pushTransient.bind(decoder);
      const filledInPlace = decoder.filledInPlace.bind(decoder);
      decoder.pushTransient = (bytes: Buffer) => ((copied += bytes.length), pushTransient(bytes));
      decoder.filledInPlace = (n: number) => ((inPlace += n), filledInPlace(n));
      const block = (i: number, size: number): Buffer => Buffer.alloc(size, i + 1);
      const answers = (async () => {
        for await (const message of server) {
          if (message.type === 'Request') await server.send({ type: 'Response', id: message.id, data: block(message.offset, message.size) }).catch(() => undefined);
        }
      })();
      const sizes = [1024 * 1024, 4096, 1024 * 1024 + 7, 100, 300 * 1024];
      const got = await Promise.all(sizes.map((size, i) => client.request({ ...blockRequest, offset: i, size })));
      got.forEach((data, i) => assert.ok(data.equals(block(i, sizes[i]!)), `block ${i} intact`));
      const large = sizes.filter((size) => size >= 64 * 1024).reduce((a, b) => a + b, 0);
      // Each large frame's first record and its last < 16 KiB come through the read buffer; the rest goes in place.
      assert.ok(inPlace >= large - 3 * 2 * 16 * 1024, `in place ${inPlace} of ${large} large-frame bytes`);
      assert.equal(copied + inPlace, client.bytesIn);
      await client.close();
      await answers;
    });
  });

  test('large sends to a slow reader wait for drain instead of buffering without bound', async () => {
    const tcp = await tcpPair();
    try {
      const sender = new PeerConnection(tcp.a, { closeTimeoutMs: 200 });
      const receiver = new PeerConnection(tcp.b, { closeTimeoutMs: 200, maxQueuedMessages: 2 });
      await Promise.all([sender.open(), receiver.open()]);
      const block = Buffer.alloc(1024 * 1024, 3);
      let maxBuffered = 0;
      const sending = (async () => {
        for (let i = 0; i < 64; i++) {
          await sender.send({ type: 'Response', id: i, data: block }).catch(() => undefined);
          maxBuffered = Math.max(maxBuffered, tcp.a.writableLength);
        }
      })();
      // Responses to unknown ids are dropped at once, so use a message the receiver queues instead.
      const progress = { type: 'Have' as const, folderId, path: 'x', version: {}, blockIndexes: Array.from({ length: 60000 }, (_, i) => i) };
      const sendingQueued = (async () => {
        for (let i = 0; i < 100; i++) {
          await sender.send(progress);
          maxBuffered = Math.max(maxBuffered, tcp.a.writableLength);
        }
      })();
      // The receiver takes nothing: its queue fills, reading stops, the kernel buffers fill, and the sender's socket
      // buffer reaches its high-water mark (a sender that buffered without bound would have sent everything by then).
      await eventually(() => tcp.a.writableLength >= tcp.a.writableHighWaterMark);
      const queuedBytesWhileStalled = sender.bytesOut - receiver.bytesIn;
      let received = 0;
      while (received < 100) {
        const message = await receiver.receive({ timeoutMs: 10_000 });
        if (message.type === 'Have') received++;
      }
      await Promise.all([sending, sendingQueued]);
      // One frame in the socket buffer at most beyond the high-water mark: never the whole 64 MiB + 30 MiB.
      assert.ok(maxBuffered <= tcp.a.writableHighWaterMark + 2 * 1024 * 1024, `buffered ${maxBuffered}`);
      assert.ok(queuedBytesWhileStalled < 40 * 1024 * 1024, `in flight while stalled ${queuedBytesWhileStalled}`);
      await sender.close();
      await receiver.close();
    } finally {
      await tcp.close();
    }
  });
});
