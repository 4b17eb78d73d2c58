// LAN announcements of fake devices: a host announcing many device IDs gets only a few of them heard (and so dialled) (issue 25, low).

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { LAN_NEW_DEVICES_PER_SOURCE, LanDiscovery } from '../../src/discovery/lan.js';
import { encodeAnnouncement } from '../../src/discovery/lan-packet.js';
import { waitFor } from '../helpers/daemon.js';

/** A well-formed device ID (base32 letters) per number. */
const fakeId = (i: number): string => `F${String(i).replace(/\d/g, (d) => 'BCDEFGHIJK'[Number(d)]!).padStart(51, 'A')}`;

/** Sends every packet from a socket bound to `from`; resolves once all were handed to the kernel. */
async function sendFrom(from: string, port: number, packets: Buffer[]): Promise<void> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, from, () => resolve()));
  await Promise.all(packets.map((packet) => new Promise<void>((resolve) => socket.send(packet, port, '127.0.0.1', () => resolve()))));
  await new Promise<void>((resolve) => socket.close(() => resolve()));
}

test('100 fake device IDs from one host: a few are heard; another host and known devices still are', async () => {
  const port = 40000 + Math.floor(Math.random() * 20000);
  const heard = new Set<string>();
  const lan = new LanDiscovery({ deviceId: 'Z'.repeat(52), syncPort: () => 1, port, ipv6: false, maxPacketsPerS: 10_000, onHeard: (_a, id) => heard.add(id) });
  await lan.open();
  try {
    const flood = Array.from({ length: 100 }, (_, i) => encodeAnnouncement({ deviceId: fakeId(i), port: 3000 + i }));
    assert.equal(new Set(flood.map((p) => p.toString('hex'))).size, 100);
    for (let i = 0; i < flood.length; i += 20) await sendFrom('127.0.0.1', port, flood.slice(i, i + 20));
    await waitFor(async () => lan.counters.received >= 100 || undefined, 'the announcements to arrive');
    assert.equal(heard.size, LAN_NEW_DEVICES_PER_SOURCE, `heard ${heard.size} of 100 fake devices`);
    assert.equal(lan.counters.devicesRefused, 100 - LAN_NEW_DEVICES_PER_SOURCE);

    // A device on another host is heard; a device heard before is heard again.
    const before = lan.counters.received;
    await sendFrom('127.0.0.2', port, [encodeAnnouncement({ deviceId: 'B'.repeat(52), port: 22100 })]);
    await sendFrom('127.0.0.1', port, [flood[0]!]);
    await waitFor(async () => lan.counters.received >= before + 2 || undefined, 'the later announcements');
    assert.ok(heard.has('B'.repeat(52)));
    assert.equal(lan.counters.devicesRefused, 100 - LAN_NEW_DEVICES_PER_SOURCE);
  } finally {
    await lan.close();
  }
});
