// Types for the parts of `bittorrent-dht` (webtorrent, pure JS) discovery uses.

declare module 'bittorrent-dht' {
  import { EventEmitter } from 'node:events';

  export interface DhtNode {
    host: string;
    port: number;
    id?: Uint8Array;
  }

  export interface DhtOptions {
    nodeId?: Buffer;
    bootstrap?: false | Array<string | DhtNode>;
    /** Passed down to k-rpc-socket: the socket to use instead of a new one. */
    socket?: unknown;
    maxTables?: number;
    maxValues?: number;
    maxPeers?: number;
    maxAge?: number;
    timeout?: number;
  }

  export default class DHT extends EventEmitter {
    constructor(options?: DhtOptions);
    readonly nodeId: Buffer;
    readonly nodes: { count(): number; toArray(): DhtNode[] };
    listening: boolean;
    ready: boolean;
    listen(port?: number, host?: string, callback?: () => void): void;
    address(): { address: string; port: number; family: string };
    announce(infoHash: Buffer, port: number, callback?: (err: Error | null) => void): void;
    lookup(infoHash: Buffer, callback?: (err: Error | null, nodes?: number) => void): () => void;
    addNode(node: DhtNode): void;
    toJSON(): { nodes: DhtNode[] };
    destroy(callback?: () => void): void;
  }
}
