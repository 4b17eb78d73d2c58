// Test helpers for relay/: RelayNodes joined by real PeerConnections over loopback TCP (no TLS, no handshake: the relay layer alone).

import net from 'node:net';
import { once } from 'node:events';
import { PeerConnection, isRelayMessage } from '../../src/protocol/index.js';
import { RelayNode, type Carrier, type RelayNodeOptions, type RelayStream } from '../../src/relay/index.js';

export interface Incoming {
  stream: RelayStream;
  from: string;
}

export class Device {
  readonly node: RelayNode;
  readonly carriers = new Map<string, Carrier>();
  readonly incoming: Incoming[] = [];
  private readonly waiters: Array<(incoming: Incoming) => void> = [];
  readonly connections: PeerConnection[] = [];

  constructor(readonly id: string, readonly folders: string[], options: Partial<RelayNodeOptions> = {}) {
    this.node = new RelayNode({
      relay: true,
      carrierFor: (deviceId) => this.carriers.get(deviceId),
      onIncoming: (stream, from) => {
        const incoming = { stream, from };
        this.incoming.push(incoming);
        this.waiters.shift()?.(incoming);
      },
      ...options,
    });
  }

  nextIncoming(): Promise<Incoming> {
    const ready = this.incoming.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiters.push((incoming) => resolve(this.incoming.splice(this.incoming.indexOf(incoming), 1)[0]!)));
  }

  close(): Promise<unknown> {
    this.node.close();
    return Promise.all(this.connections.map((c) => c.close()));
  }
}

/** Connects `dialler` to `acceptor` (as if dialler had dialled it) and feeds each side's relay messages to its node. */
export async function link(dialler: Device, acceptor: Device): Promise<void> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection');
  const client = net.connect(port, '127.0.0.1');
  const [socket] = (await accepted) as [net.Socket];
  socket.setNoDelay(true); // as the daemon's sockets
  client.setNoDelay(true);
  server.close();
  const attach = async (self: Device, other: Device, stream: net.Socket, direction: 'in' | 'out'): Promise<void> => {
    const connection = new PeerConnection(stream, { closeTimeoutMs: 200 });
    await connection.open();
    self.connections.push(connection);
    const common = new Set(self.folders.filter((f) => other.folders.includes(f)));
    const carrier: Carrier = { deviceId: other.id, direction, folderIds: common, relayed: false, send: (m) => connection.send(m) };
    self.carriers.set(other.id, carrier);
    void (async () => {
      try {
        for await (const message of connection) if (isRelayMessage(message)) self.node.receive(carrier, message);
      } catch {
        // closed by a test
      }
      self.node.detach(carrier);
    })();
  };
  await attach(dialler, acceptor, client, 'out');
  await attach(acceptor, dialler, socket, 'in');
}

/** Reads a stream to its end (not with `for await`, which destroys the stream, writable side too, once reading ends). */
export function readAll(stream: RelayStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('close', () => reject(new Error('stream closed before its end')));
    stream.resume();
  });
}
