// Relay messages (codes 0x78-0x7E): a device carries a byte stream between two of its peers, each
// end running its own TLS and Ferry handshake over it (src/relay/, docs/protocol.md "Relays").

/** Largest `data` of one RelayData: its whole frame stays under 64 KiB, so receivers assemble it in a plain allocation. */
export const RELAY_MAX_DATA_BYTES = 64 * 1024 - 256;
/** Bytes each end of a relayed stream may send before the other grants more (RelayWindow): the initial credit, each way. */
export const RELAY_WINDOW_BYTES = 256 * 1024;

/** Why a relay (or the far end) refused a RelayOpen, or aborted a stream (RelayClose.code). */
export const RELAY_REFUSALS = [
  'RELAY_OFF', // this device does not relay (setting relay: false, `ferry run --no-relay`)
  'NOT_CONNECTED', // the device asked for is not connected to the relay
  'NO_COMMON_FOLDER', // the two devices proved no folder in common with the relay
  'NESTED', // a relayed link never carries another relayed stream
  'BUSY', // stream limits reached (per peer or in all)
  'TIMEOUT', // the far end did not answer in time
  'CLOSED', // a link of the path closed
  'PROTOCOL', // a stream rule was broken (data beyond the credit, say)
  'REFUSED', // the far end does not take relayed streams
] as const;
export type RelayRefusal = (typeof RELAY_REFUSALS)[number];

/**
 * Stream IDs are u32, chosen by the side that opens the stream on one link: odd when it dialled
 * that link (TLS client), even when it accepted it, so both sides may open streams at once.
 */

/** To a relay: open stream `stream` to `device` (a device connected to the relay). */
export interface RelayOpenMessage {
  type: 'RelayOpen';
  stream: number;
  device: string;
}

/** From a relay to the far end: `device` (connected to the relay) opens stream `stream` to you. */
export interface RelayConnectMessage {
  type: 'RelayConnect';
  stream: number;
  device: string;
}

/** The stream is open (far end to relay, relay to opener). */
export interface RelayAcceptMessage {
  type: 'RelayAccept';
  stream: number;
}

/** The stream is not opened; `code` says why. */
export interface RelayRefuseMessage {
  type: 'RelayRefuse';
  stream: number;
  code: RelayRefusal;
  reason: string;
}

/** Bytes of the stream, within the credit the other end granted. */
export interface RelayDataMessage {
  type: 'RelayData';
  stream: number;
  data: Buffer;
}

/** The sender read `credit` more bytes: the other end may send that many more. */
export interface RelayWindowMessage {
  type: 'RelayWindow';
  stream: number;
  credit: number;
}

/** Without `code`: the sender sends no more (half close). With `code`: the stream is aborted both ways. */
export interface RelayCloseMessage {
  type: 'RelayClose';
  stream: number;
  code?: RelayRefusal;
  reason?: string;
}

export type RelayMessage =
  | RelayOpenMessage
  | RelayConnectMessage
  | RelayAcceptMessage
  | RelayRefuseMessage
  | RelayDataMessage
  | RelayWindowMessage
  | RelayCloseMessage;

const RELAY_TYPES: ReadonlySet<string> = new Set(['RelayOpen', 'RelayConnect', 'RelayAccept', 'RelayRefuse', 'RelayData', 'RelayWindow', 'RelayClose']);

export function isRelayMessage(message: { type: string }): message is RelayMessage {
  return RELAY_TYPES.has(message.type);
}
