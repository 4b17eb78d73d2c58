// The µTP codec and the LEDBAT controller, as pure functions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ledbat, RANDOM_LOSS_KEEP, TARGET_DELAY_US } from '../../src/transport/ledbat.js';
import { ST_DATA, ST_STATE, ST_SYN, decodePacket, encodePacket, isUtpPacket, seqDiff } from '../../src/transport/utp-packet.js';
import { encodeBindingRequest } from '../../src/nat/stun.js';

const header = { type: ST_DATA, connectionId: 0xbeef, timestampUs: 0xfffffff0, timestampDiffUs: 12345, windowSize: 1 << 22, seq: 65535, ack: 7 } as const;

test('a packet round-trips with payload and a selective ack; header fields at the BEP 29 offsets', () => {
  const sack = Buffer.from([0b101, 0, 0, 0x80]);
  const buf = encodePacket(header, Buffer.from('hello'), sack);
  assert.equal(buf[0], 0x01); // DATA, version 1
  assert.equal(buf[1], 1); // first extension: selective ack
  assert.equal(buf.readUInt16BE(2), 0xbeef);
  assert.equal(buf.length, 20 + 2 + 4 + 5);
  const pkt = decodePacket(buf)!;
  assert.deepEqual({ ...pkt, sack: [...pkt.sack!], payload: pkt.payload.toString() }, { ...header, sack: [...sack], payload: 'hello' });
});

test('malformed packets decode to null: truncated, bad version or type, broken extension chain, bad SACK length, payload on a STATE', () => {
  const good = encodePacket({ ...header, type: ST_STATE });
  assert.ok(decodePacket(good));
  assert.equal(decodePacket(good.subarray(0, 19)), null);
  assert.equal(decodePacket(Buffer.concat([Buffer.from([0x02]), good.subarray(1)])), null); // version 2
  assert.equal(decodePacket(Buffer.concat([Buffer.from([0x51]), good.subarray(1)])), null); // type 5
  const chain = Buffer.from(good);
  chain[1] = 1; // a SACK extension announced, none there
  assert.equal(decodePacket(chain), null);
  assert.equal(decodePacket(encodePacket({ ...header, type: ST_STATE }, undefined, Buffer.alloc(3))), null); // SACK not a multiple of 4
  assert.equal(decodePacket(encodePacket({ ...header, type: ST_STATE }, Buffer.from('x'))), null);
  assert.equal(decodePacket(encodePacket({ ...header, type: ST_SYN }, Buffer.from('x'))), null);
});

test('STUN, DHT and tracker datagrams are not µTP (the shared socket demultiplexes by first bytes)', () => {
  const stunRequest = encodeBindingRequest(Buffer.alloc(12, 1));
  const stunSuccess = Buffer.from(stunRequest);
  stunSuccess.writeUInt16BE(0x0101, 0); // starts 01 01 like a µTP DATA with a SACK extension
  assert.equal(isUtpPacket(stunRequest), false);
  assert.equal(isUtpPacket(stunSuccess), false);
  assert.equal(isUtpPacket(Buffer.from('d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe')), false);
  const trackerConnect = Buffer.alloc(16);
  trackerConnect.writeUInt32BE(0, 0);
  assert.equal(isUtpPacket(trackerConnect), false);
  assert.equal(isUtpPacket(encodePacket(header)), true);
});

test('sequence numbers compare on the 16-bit circle', () => {
  assert.equal(seqDiff(0, 65535), 1);
  assert.equal(seqDiff(65535, 0), -1);
  assert.equal(seqDiff(100, 100), 0);
  assert.equal(seqDiff(32767, 0), 32767);
});

test('LEDBAT: slow start doubles, queuing delay past the target shrinks the window, a loss with a grown queue halves it and one at an empty queue takes a sixteenth, a timeout floors it and slow start takes it back to half', () => {
  const mss = 1400;
  const cc = new Ledbat({ mss, maxWindow: 4 << 20 });
  const start = cc.window;
  cc.delaySample(1_000, 0);
  cc.onAck(start, 0); // a full window acked at no queuing delay
  assert.equal(cc.window, 2 * start);
  // A loss with the queue empty is the line's random loss: a sixteenth off, not half.
  assert.equal(RANDOM_LOSS_KEEP, 15 / 16);
  cc.onLoss(1, 10);
  assert.equal(cc.window, 2 * start * RANDOM_LOSS_KEEP);
  assert.equal(cc.slowStart, false);
  cc.onLoss(2, 10); // within a round trip of the last: not again
  assert.equal(cc.window, 2 * start * RANDOM_LOSS_KEEP);
  // A queue of a fifth of the target (20 ms) is still the line's own: random, a sixteenth off.
  for (let i = 0; i < 4; i++) cc.delaySample(1_000 + TARGET_DELAY_US / 5, 5);
  assert.equal(cc.onLoss(12, 10), 'random');
  assert.equal(cc.window, 2 * start * RANDOM_LOSS_KEEP * RANDOM_LOSS_KEEP);
  // A loss once the queue has grown (here a quarter of the target) is congestion: halved.
  for (let i = 0; i < 4; i++) cc.delaySample(1_000 + TARGET_DELAY_US / 4, 5);
  assert.equal(cc.onLoss(23, 10), 'congested');
  assert.equal(cc.window, start * RANDOM_LOSS_KEEP * RANDOM_LOSS_KEEP);
  for (let i = 0; i < 4; i++) cc.delaySample(1_000, 21);
  // Congestion avoidance at zero delay: grows; at twice the target: shrinks.
  const before = cc.window;
  cc.onAck(mss, cc.window);
  assert.ok(cc.window > before);
  for (let i = 0; i < 4; i++) cc.delaySample(1_000 + 2 * TARGET_DELAY_US, 100);
  assert.equal(cc.queuingDelay, 2 * TARGET_DELAY_US);
  const high = cc.window;
  cc.onAck(mss, cc.window);
  assert.ok(cc.window < high);
  const beforeTimeout = cc.window;
  cc.onTimeout();
  assert.equal(cc.window, 2 * mss);
  // Then slow start (queue drained), doubling each round trip, up to half the window the timeout found.
  for (let i = 0; i < 4; i++) cc.delaySample(1_000, 200);
  cc.onAck(cc.window, 0);
  assert.equal(cc.window, 4 * mss);
  while (cc.window < beforeTimeout / 2 && cc.window >= 4 * mss) {
    const last = cc.window;
    cc.onAck(cc.window, 0);
    if (cc.window < beforeTimeout / 2) assert.equal(cc.window, 2 * last);
  }
  assert.equal(cc.window, beforeTimeout / 2); // not past it: from there the linear climb
});

test('LEDBAT: one-way delay samples on either side of the 32-bit wrap (clocks whose offset is near 0 mod 2^32 µs) read as the small differences they are, not as 71 minutes of queue', () => {
  const mss = 1400;
  // The peers' clocks nearly agree: samples jitter around 0, some just under 2^32.
  for (const base of [0xffffffff - 300, 200, 0]) {
    const cc = new Ledbat({ mss, maxWindow: 4 << 20 });
    const jitter = [0, 500, -400, 250, -100, 800, -600, 0];
    for (let i = 0; i < jitter.length; i++) cc.delaySample((base + jitter[i]!) >>> 0, i);
    // The least sample is base - 600 µs; the last four (250, -100, 800, -600, 0 → least -600) sit on it.
    assert.ok(cc.queuingDelay < 2_000, `queuing delay ${cc.queuingDelay} µs`);
    const start = cc.window;
    cc.onAck(start, 0);
    assert.equal(cc.window, 2 * start, 'slow start goes on: no queue seen');
    // A real queue on top still shows, across the wrap.
    for (let i = 0; i < 4; i++) cc.delaySample((base + 2 * TARGET_DELAY_US) >>> 0, 20);
    assert.ok(Math.abs(cc.queuingDelay - (2 * TARGET_DELAY_US + 600)) < 2, `queuing delay ${cc.queuingDelay} µs`);
  }
});
