// LAN announcements: the packet format, and a live socket fed garbage, oversized and flooding packets.

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import fc from 'fast-check';
import { LanDiscovery } from '../../src/discovery/lan.js';
import { decodeAnnouncement, encodeAnnouncement, MAX_LAN_PACKET_BYTES } from '../../src/discovery/lan-packet.js';
import { waitFor } from '../helpers/daemon.js';

const ID_A = 'A'.repeat(52);
const ID_B = 'B'.repeat(52);

function send(port: number, packets: Buffer[]): Promise<void> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => {
    let left = packets.length;
    for (const packet of packets) socket.send(packet, port, '127.0.0.1', () => --left === 0 && socket.close(() => resolve()));
  });
}

const freePort = (): number => 40000 + Math.floor(Math.random() * 20000);

test('an announcement carries magic, version, port and device ID, and decodes back', () => {
  const packet = encodeAnnouncement({ deviceId: ID_A, port: 22100 });
  assert.equal(packet.length, 60);
  assert.deepEqual(decodeAnnouncement(packet), { deviceId: ID_A, port: 22100 });
  assert.ok(!packet.includes(Buffer.from('folder')));
});

test('malformed announcements are reasons, never exceptions', () => {
  const good = encodeAnnouncement({ deviceId: ID_A, port: 22100 });
  const broken = (mutate: (b: Buffer) => void): Buffer => {
    const copy = Buffer.from(good);
    mutate(copy);
    return copy;
  };
  assert.match((decodeAnnouncement(Buffer.alloc(3)) as { error: string }).error, /too short/);
  assert.match((decodeAnnouncement(Buffer.alloc(MAX_LAN_PACKET_BYTES + 1)) as { error: string }).error, /oversized/);
  assert.match((decodeAnnouncement(broken((b) => b.writeUInt32BE(1, 0))) as { error: string }).error, /magic/);
  assert.match((decodeAnnouncement(broken((b) => b.writeUInt8(9, 4))) as { error: string }).error, /version/);
  assert.match((decodeAnnouncement(broken((b) => b.writeUInt16BE(0, 5))) as { error: string }).error, /port 0/);
  assert.match((decodeAnnouncement(broken((b) => b.writeUInt8(10, 7))) as { error: string }).error, /length/);
  assert.match((decodeAnnouncement(broken((b) => b.write('!', 8))) as { error: string }).error, /device ID/);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const result = decodeAnnouncement(Buffer.from(bytes));
      assert.ok('error' in result || typeof result.deviceId === 'string');
    }),
    { numRuns: 500 },
  );
});

test('a LAN socket hears a device, ignores garbage and floods, and keeps a bounded table', async () => {
  const portA = freePort();
  const heard: string[] = [];
  const a = new LanDiscovery({ deviceId: ID_A, syncPort: () => 1111, port: portA, ipv6: false, maxPacketsPerS: 20, onHeard: (address, id) => heard.push(`${id} ${address}`) });
  const b = new LanDiscovery({ deviceId: ID_B, syncPort: () => 2222, port: portA + 1, ipv6: false, extraTargets: [{ host: '127.0.0.1', port: portA }], onHeard: () => {} });
  try {
    await a.open();
    await b.open();
    await waitFor(async () => heard.includes(`${ID_B} 127.0.0.1:2222`), 'A to hear B');
    // Garbage, oversized and a flood of distinct device IDs: all dropped or bounded, nothing thrown.
    const junk = [Buffer.from('hello'), Buffer.alloc(60_000, 1), Buffer.alloc(0)];
    const flood = Array.from({ length: 600 }, (_, i) => encodeAnnouncement({ deviceId: `C${String(i).padStart(51, '0').replace(/[^A-Z2-7]/g, 'C')}`, port: 3000 + i }));
    await send(portA, junk);
    for (let i = 0; i < flood.length; i += 50) await send(portA, flood.slice(i, i + 50));
    await waitFor(async () => {
      const r = a.report() as { malformed: number; rateLimited: number; received: number };
      return r.malformed >= 1 && r.rateLimited > 0 && r.rateLimited + r.received >= 100;
    }, 'the packets to arrive');
    const report = a.report() as { malformed: number; rateLimited: number; devices: unknown[] };
    assert.ok(report.malformed >= 1, 'garbage counted as malformed');
    assert.ok(report.rateLimited > 0, 'the flood was rate-limited');
    assert.ok(report.devices.length <= 256, 'the table of heard devices is bounded');
    assert.ok(!heard.some((h) => h.startsWith(ID_A)), 'its own announcements are not "heard"');
  } finally {
    await a.close();
    await b.close();
  }
});
