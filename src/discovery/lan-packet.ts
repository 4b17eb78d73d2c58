// The LAN announcement datagram: magic, version, sync port and device ID; nothing about folders.
//
//   u32 magic "FRLA" | u8 version (1) | u16 sync port | u8 n | n bytes device ID (ASCII)

import { isDeviceId } from '../keys/index.js';

export const LAN_MAGIC = 0x46524c41;
export const LAN_VERSION = 1;
/** Announcements longer than this are dropped unread. */
export const MAX_LAN_PACKET_BYTES = 128;

export interface LanAnnouncement {
  deviceId: string;
  port: number;
}

export function encodeAnnouncement({ deviceId, port }: LanAnnouncement): Buffer {
  const id = Buffer.from(deviceId, 'ascii');
  const packet = Buffer.alloc(8 + id.length);
  packet.writeUInt32BE(LAN_MAGIC, 0);
  packet.writeUInt8(LAN_VERSION, 4);
  packet.writeUInt16BE(port, 5);
  packet.writeUInt8(id.length, 7);
  id.copy(packet, 8);
  return packet;
}

/** The announcement in `packet`, or a reason it is not one (never throws). */
export function decodeAnnouncement(packet: Buffer): LanAnnouncement | { error: string } {
  if (packet.length > MAX_LAN_PACKET_BYTES) return { error: `oversized (${packet.length} bytes)` };
  if (packet.length < 8) return { error: `too short (${packet.length} bytes)` };
  if (packet.readUInt32BE(0) !== LAN_MAGIC) return { error: 'wrong magic' };
  const version = packet.readUInt8(4);
  if (version !== LAN_VERSION) return { error: `unknown version ${version}` };
  const port = packet.readUInt16BE(5);
  if (port === 0) return { error: 'port 0' };
  const length = packet.readUInt8(7);
  if (packet.length !== 8 + length) return { error: 'length mismatch' };
  const deviceId = packet.toString('latin1', 8);
  if (!isDeviceId(deviceId)) return { error: 'not a device ID' };
  return { deviceId, port };
}
