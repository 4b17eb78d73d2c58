// Public API of relay/: relaying streams between peers, and the ends of relayed streams.

export {
  DEFAULT_RELAY_RATE_BPS,
  RELAY_MAX_END_STREAMS,
  RELAY_MAX_STREAMS,
  RELAY_MAX_STREAMS_PER_PEER,
  RELAY_OPEN_TIMEOUT_MS,
  RelayNode,
  type Carrier,
  type RelayNodeOptions,
} from './relay.js';
export { RelayStream, type RelayStreamOptions } from './stream.js';
