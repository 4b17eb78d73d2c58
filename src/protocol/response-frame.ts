// A block Response framed without copying the block: a small header (frame prefix and msgpack envelope) and the data itself.

import { FerryError } from './../errors.js';
import { FRAME_HEADER_BYTES } from './frames.js';
import { MAX_MESSAGE_BYTES, MESSAGE_CODES } from './messages.js';

/**
 * The frame of `{ type: 'Response', id, data }` as two buffers to write one after the other. The
 * body is the msgpack map {"id": uint32, "data": bin32}, which decodes exactly like the generic
 * encoder's output (same keys, same values); only the integer widths may differ, which msgpack allows.
 */
export function dataResponseFrame(id: number, data: Buffer): [Buffer, Buffer] {
  const header = Buffer.allocUnsafe(RESPONSE_HEADER_BYTES);
  writeDataResponseHeader(header, id, data.length);
  return [header, data];
}

/** fixmap(2) · fixstr "id" · uint32 · fixstr "data" · bin32 length */
const RESPONSE_ENVELOPE_BYTES = 1 + 3 + 5 + 5 + 5;

/** The bytes of a data Response frame before its data (dataResponseFrame's header). */
export const RESPONSE_HEADER_BYTES = FRAME_HEADER_BYTES + 1 + RESPONSE_ENVELOPE_BYTES;

/**
 * Writes dataResponseFrame's header for `dataBytes` of data into the first RESPONSE_HEADER_BYTES of
 * `header` (a buffer whose data follows right after it: the frame is then one buffer, one write).
 */
export function writeDataResponseHeader(header: Buffer, id: number, dataBytes: number): void {
  const length = 1 + RESPONSE_ENVELOPE_BYTES + dataBytes;
  if (length > MAX_MESSAGE_BYTES.Response) {
    throw new FerryError('FRAME_TOO_LARGE', `frame of ${length} bytes exceeds ${MAX_MESSAGE_BYTES.Response}`);
  }
  let at = header.writeUInt32BE(length, 0);
  header[at++] = MESSAGE_CODES.Response;
  header[at++] = 0x82;
  at += header.write('\xa2id', at, 'latin1');
  header[at++] = 0xce;
  at = header.writeUInt32BE(id >>> 0, at);
  at += header.write('\xa4data', at, 'latin1');
  header[at++] = 0xc6;
  header.writeUInt32BE(dataBytes, at);
}

/** The frame of `{ type: 'RelayData', stream, data }` as two buffers, the data not copied (as dataResponseFrame). */
export function relayDataFrame(stream: number, data: Buffer): [Buffer, Buffer] {
  // fixmap(2) · fixstr "stream" · uint32 · fixstr "data" · bin32 length
  const envelope = 1 + 7 + 5 + 5 + 5;
  const length = 1 + envelope + data.length;
  if (length > MAX_MESSAGE_BYTES.RelayData) {
    throw new FerryError('FRAME_TOO_LARGE', `frame of ${length} bytes exceeds ${MAX_MESSAGE_BYTES.RelayData}`);
  }
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + envelope);
  let at = header.writeUInt32BE(length, 0);
  header[at++] = MESSAGE_CODES.RelayData;
  header[at++] = 0x82;
  at += header.write('\xa6stream', at, 'latin1');
  header[at++] = 0xce;
  at = header.writeUInt32BE(stream >>> 0, at);
  at += header.write('\xa4data', at, 'latin1');
  header[at++] = 0xc6;
  header.writeUInt32BE(data.length, at);
  return [header, data];
}
