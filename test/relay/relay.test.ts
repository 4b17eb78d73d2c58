// RelayNode: streams relayed between two peers of a device, with credit-window flow control, refusals and the rate cap.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, describe, test } from 'node:test';
import { RELAY_WINDOW_BYTES } from '../../src/protocol/index.js';
import { waitFor } from '../helpers/daemon.js';
import { Device, link, readAll } from './helpers.js';

const devices: Device[] = [];
const closed = (stream: NodeJS.EventEmitter): Promise<unknown> => new Promise((resolve) => stream.once('close', resolve));
function device(id: string, folders: string[], options: ConstructorParameters<typeof Device>[2] = {}): Device {
  const made = new Device(id, folders, options);
  devices.push(made);
  return made;
}
afterEach(async () => {
  await Promise.all(devices.splice(0).map((d) => d.close()));
});

/** A (dialled C), B (dialled C), C the relay; all share folder f1. */
async function triangle(relayOptions: ConstructorParameters<typeof Device>[2] = {}) {
  const a = device('AAAA', ['f1']);
  const b = device('BBBB', ['f1']);
  const c = device('CCCC', ['f1', 'f2'], relayOptions);
  await link(a, c);
  await link(b, c);
  return { a, b, c };
}

describe('RelayNode', () => {
  test('bytes cross the relay both ways, in order, and each side half-closes on its own', async () => {
    const { a, b, c } = await triangle();
    const opened = a.node.open(a.carriers.get('CCCC')!, 'BBBB');
    const incoming = await b.nextIncoming();
    const stream = await opened;
    assert.equal(incoming.from, 'AAAA');
    assert.ok(stream.rttMs !== undefined && stream.rttMs >= 0);
    const toB = randomBytes(3 * 1024 * 1024 + 17);
    const toA = randomBytes(700_000);
    const gotB = readAll(incoming.stream);
    const gotA = readAll(stream);
    stream.end(toB);
    incoming.stream.end(toA);
    assert.ok((await gotB).equals(toB));
    assert.ok((await gotA).equals(toA));
    await waitFor(async () => c.node.relaying === 0 && a.node.endStreams === 0 && b.node.endStreams === 0, 'the stream forgotten everywhere');
    assert.equal(c.node.counters.relayedBytes, toB.length + toA.length);
  });

  test('a reader that stops reading stops the sender: neither the relay nor the ends hold more than one window', async () => {
    const { a, b, c } = await triangle();
    const opened = a.node.open(a.carriers.get('CCCC')!, 'BBBB');
    const incoming = await b.nextIncoming();
    const stream = await opened;
    incoming.stream.pause(); // the reader at B never reads
    const total = 8 * RELAY_WINDOW_BYTES;
    let accepted = 0;
    const chunk = Buffer.alloc(16 * 1024, 7);
    // A writer that honours backpressure, as TLS does.
    const writer = (async () => {
      while (accepted < total) {
        accepted += chunk.length;
        if (!stream.write(chunk)) await once(stream, 'drain');
      }
      stream.end();
    })();
    await waitFor(async () => incoming.stream.readableLength === RELAY_WINDOW_BYTES, 'the window filled at B');
    // Everything B holds is one window; the relay forwarded exactly that much; the sender holds the rest in its own buffer.
    assert.equal(c.node.counters.relayedBytes, RELAY_WINDOW_BYTES);
    assert.equal(stream.bytesOut, RELAY_WINDOW_BYTES);
    assert.ok(stream.writableLength <= 2 * 64 * 1024, `sender buffer ${stream.writableLength}`);
    // A round trip through the relay later, still nothing more moved.
    const probe = await a.node.open(a.carriers.get('CCCC')!, 'BBBB');
    probe.destroy();
    assert.equal(c.node.counters.relayedBytes, RELAY_WINDOW_BYTES);
    assert.ok(accepted < total, 'the writer is held back');
    // The reader reads: the rest flows.
    const all = readAll(incoming.stream);
    await writer;
    assert.equal((await all).length, total);
    assert.equal(incoming.stream.bytesIn, accepted);
  });

  test('refusals: no folder in common, a device not connected to the relay, relaying off', async () => {
    const { a, c } = await triangle();
    const d = device('DDDD', ['f2']);
    await link(d, c);
    await assert.rejects(d.node.open(d.carriers.get('CCCC')!, 'AAAA'), /relay refused: NO_COMMON_FOLDER/);
    await assert.rejects(a.node.open(a.carriers.get('CCCC')!, 'EEEE'), /relay refused: NOT_CONNECTED/);
    await assert.rejects(a.node.open(a.carriers.get('CCCC')!, 'AAAA'), /relay refused: NOT_CONNECTED/);
    assert.equal(c.node.relaying, 0);
    assert.equal(c.node.refusedBy.NO_COMMON_FOLDER, 1);

    const off = await triangle({ relay: false });
    await assert.rejects(off.a.node.open(off.a.carriers.get('CCCC')!, 'BBBB'), /relay refused: RELAY_OFF/);
    assert.equal(off.b.incoming.length, 0);
  });

  test('streams per peer are bounded: one more is refused BUSY, and a closed one frees its place', async () => {
    const { a, b } = await triangle({ maxStreamsPerPeer: 2 });
    const streams = [await a.node.open(a.carriers.get('CCCC')!, 'BBBB'), await a.node.open(a.carriers.get('CCCC')!, 'BBBB')];
    await assert.rejects(a.node.open(a.carriers.get('CCCC')!, 'BBBB'), /relay refused: BUSY/);
    const far = await b.nextIncoming();
    far.stream.destroy();
    await closed(streams[0]!);
    const third = await a.node.open(a.carriers.get('CCCC')!, 'BBBB');
    third.destroy();
    streams[1]!.destroy();
  });

  test('data beyond the granted window aborts the stream at the relay', async () => {
    const { a, b, c } = await triangle();
    const opened = a.node.open(a.carriers.get('CCCC')!, 'BBBB');
    const far = await b.nextIncoming();
    const stream = await opened;
    const carrier = a.carriers.get('CCCC')!;
    const piece = Buffer.alloc(64 * 1024);
    for (let sent = 0; sent <= RELAY_WINDOW_BYTES; sent += piece.length) await carrier.send({ type: 'RelayData', stream: stream.id, data: piece });
    await closed(far.stream);
    assert.equal(c.node.relaying, 0);
  });

  test('credit for bytes never received aborts the stream at the relay (no unbounded credit to pace)', async () => {
    const { a, b, c } = await triangle();
    const opened = a.node.open(a.carriers.get('CCCC')!, 'BBBB');
    const far = await b.nextIncoming();
    const stream = await opened;
    await b.carriers.get('CCCC')!.send({ type: 'RelayWindow', stream: far.stream.id, credit: 1 });
    await closed(stream);
    assert.equal(c.node.relaying, 0);
    assert.equal(c.node.rate.taken, 0);
  });

  test('the rate cap paces relayed bytes', async () => {
    const rate = 512 * 1024;
    const { a, b, c } = await triangle({ rateBps: rate });
    const opened = a.node.open(a.carriers.get('CCCC')!, 'BBBB');
    const far = await b.nextIncoming();
    const stream = await opened;
    const size = 2 * 1024 * 1024;
    const started = performance.now();
    const got = readAll(far.stream);
    stream.end(Buffer.alloc(size, 1));
    assert.equal((await got).length, size);
    const seconds = (performance.now() - started) / 1000;
    // A window and one second's burst may pass at once; the rest at the rate at most.
    const floor = (size - RELAY_WINDOW_BYTES - rate) / rate;
    assert.ok(seconds >= floor * 0.95, `${size} bytes in ${seconds.toFixed(2)} s at a cap of ${rate} B/s (at least ${floor.toFixed(2)} s)`);
    assert.ok(c.node.rate.taken >= size - RELAY_WINDOW_BYTES);
  });
});
