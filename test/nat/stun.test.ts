// STUN Binding client: responses of a real server (Debian's stund, captured) and of RFC 5769's
// shape decoded; foreign, truncated and mismatched datagrams ignored; retransmission and timeout.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import {
  StunClient, decodeBindingResponse, encodeBindingRequest, isStunMessage, type DatagramPort, type UdpEndpoint,
} from '../../src/nat/stun.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

// stund (stun-server 0.97) answering a Binding request from 10.9.9.1:48333, seen in a namespace here:
// MAPPED-ADDRESS, SOURCE-ADDRESS, CHANGED-ADDRESS, XOR-MAPPED-ADDRESS, SERVER "Vovida.org 0.97".
const STUND_TXID = hex('59700d203a3759c77804a1aa');
const STUND_RESPONSE = hex(`
  0101 0044 2112a442 59700d203a3759c77804a1aa
  0001 0008 0001bccd 0a090901
  0004 0008 00010d96 0a090901
  0005 0008 00010d97 0a090902
  0020 0008 00019ddf 2b1bad43
  8022 0010 566f766964612e6f726720302e393700`);

// RFC 5769 §2.2's sample IPv4 response (192.0.2.1:32853), integrity and fingerprint zeroed: not checked here.
const RFC5769_TXID = hex('b7e7a701bc34d686fa87dfae');
const RFC5769_RESPONSE = hex(`
  0101 003c 2112a442 b7e7a701bc34d686fa87dfae
  8022 000b 7465737420766563746f7220
  0020 0008 0001a147 e112a643
  0008 0014 0000000000000000000000000000000000000000
  8028 0004 00000000`);

test('a real server\'s response and the RFC 5769 sample decode to the mapped address', () => {
  assert.ok(isStunMessage(STUND_RESPONSE));
  assert.deepEqual(decodeBindingResponse(STUND_RESPONSE, STUND_TXID), { ok: true, mapped: { address: '10.9.9.1', port: 48333 } });
  assert.deepEqual(decodeBindingResponse(RFC5769_RESPONSE, RFC5769_TXID), { ok: true, mapped: { address: '192.0.2.1', port: 32853 } });
});

test('an IPv6 XOR-MAPPED-ADDRESS is unmasked with the cookie and the transaction ID', () => {
  const address = hex('20010db8123456780011223344556677');
  const mask = Buffer.concat([hex('2112a442'), RFC5769_TXID]);
  const xored = Buffer.from(address.map((b, i) => b ^ mask[i]!));
  const response = Buffer.concat([hex('0101 0018 2112a442'), RFC5769_TXID, hex('0020 0014 0002 a147'), xored]);
  assert.deepEqual(decodeBindingResponse(response, RFC5769_TXID), { ok: true, mapped: { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 } });
});

test('other transactions, truncated or foreign datagrams are not responses; an error response says why', () => {
  assert.equal(decodeBindingResponse(STUND_RESPONSE, Buffer.alloc(12)), null);
  assert.equal(decodeBindingResponse(STUND_RESPONSE.subarray(0, 40), STUND_TXID), null);
  const lying = Buffer.from(STUND_RESPONSE);
  lying.writeUInt16BE(0x00ff, 22); // an attribute claiming more bytes than the message has
  lying.writeUInt16BE(lying.length - 20, 2);
  assert.equal(decodeBindingResponse(lying, STUND_TXID), null);
  assert.equal(isStunMessage(Buffer.from('d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe')), false);
  assert.equal(isStunMessage(encodeBindingRequest(STUND_TXID)), true);
  const error = Buffer.concat([hex('0111 0010 2112a442'), STUND_TXID, hex('0009 000c 00000401'), Buffer.from('Unauthd\0')]);
  assert.deepEqual(decodeBindingResponse(error, STUND_TXID), { ok: false, reason: 'STUN server answered error 401 Unauthd?' });
  const empty = Buffer.concat([hex('0101 0000 2112a442'), STUND_TXID]);
  assert.deepEqual(decodeBindingResponse(empty, STUND_TXID), { ok: false, reason: 'STUN response carries no mapped address' });
});

/** A shared-socket stand-in: records sends, delivers datagrams to whichever handler's classifier takes them. */
class FakePort implements DatagramPort {
  readonly sent: Array<{ buf: Buffer; port: number; host: string }> = [];
  onSend: (buf: Buffer) => void = () => undefined;
  private readonly handlers: Array<{ classify: (b: Buffer) => boolean; handler: (b: Buffer, from: UdpEndpoint) => void }> = [];
  send(buf: Buffer, port: number, host: string): void {
    this.sent.push({ buf, port, host });
    this.onSend(buf);
  }
  handle(classify: (b: Buffer) => boolean, handler: (b: Buffer, from: UdpEndpoint) => void): () => void {
    const entry = { classify, handler };
    this.handlers.push(entry);
    return () => this.handlers.splice(this.handlers.indexOf(entry), 1);
  }
  deliver(buf: Buffer, from: UdpEndpoint): void {
    for (const { classify, handler } of this.handlers) if (classify(buf)) handler(buf, from);
  }
  get handlerCount(): number {
    return this.handlers.length;
  }
}

function responseFor(request: Buffer, mapped: string, port: number): Buffer {
  const txid = request.subarray(8, 20);
  const xport = port ^ 0x2112;
  const xaddr = Buffer.from(mapped.split('.').map(Number)).map((b, i) => b ^ hex('2112a442')[i]!);
  return Buffer.concat([hex('0101 000c 2112a442'), txid, hex('0020 0008 0001'), Buffer.from([xport >> 8, xport & 0xff]), xaddr]);
}

test('the client answers with the mapped address, ignoring answers from anyone but the server asked', async () => {
  const port = new FakePort();
  const server = { address: '192.0.2.50', port: 3478 };
  port.onSend = (request) =>
    queueMicrotask(() => {
      port.deliver(responseFor(request, '6.6.6.6', 666), { address: '192.0.2.99', port: 3478 }); // spoofed source
      port.deliver(Buffer.from('not stun at all, a DHT or uTP packet'), server);
      port.deliver(responseFor(request, '198.51.100.4', 40001), server);
    });
  const client = new StunClient(port);
  assert.deepEqual(await client.binding(server), { address: '198.51.100.4', port: 40001 });
  assert.equal(port.sent.length, 1);
  assert.deepEqual([port.sent[0]!.host, port.sent[0]!.port], ['192.0.2.50', 3478]);
  client.close();
  assert.equal(port.handlerCount, 0);
});

test('the client retransmits with a doubling timeout, then gives up with TIMEOUT', async () => {
  const port = new FakePort();
  const client = new StunClient(port, { rtoMs: 5, tries: 3 });
  await assert.rejects(client.binding({ address: '192.0.2.50', port: 3478 }), (err: unknown) => isFerryError(err, 'TIMEOUT'));
  assert.equal(port.sent.length, 3);
  assert.ok(port.sent.every((s) => s.buf.equals(port.sent[0]!.buf)), 'retransmissions repeat the same transaction');
  await assert.rejects(client.binding({ address: 'stun.example.org', port: 3478 }), (err: unknown) => isFerryError(err, 'USAGE'));
  client.close();
});
