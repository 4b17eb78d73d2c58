// PeerConnection.supersede(): a link another link replaced ends without failing a request: each
// side's requests in flight are answered, both sides send Close SUPERSEDED, then the link closes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLOSE_SUPERSEDED, PeerConnection } from '../../src/protocol/connection.js';
import type { RequestMessage } from '../../src/protocol/messages.js';
import { duplexPair } from './helpers.js';

const blockRequest = (path: string) => ({ folderId: Buffer.alloc(20, 1), path, offset: 0, size: 4, hash: Buffer.alloc(32, 2) });

/** Answers Requests only when the test releases them (in arrival order), with the path's bytes. */
function gatedServer(conn: PeerConnection): { arrived: RequestMessage[]; release: () => Promise<void>; done: Promise<void>; waitFor: (n: number) => Promise<void> } {
  const arrived: RequestMessage[] = [];
  let answered = 0;
  const listeners: Array<() => void> = [];
  const done = (async () => {
    for await (const message of conn) {
      if (message.type !== 'Request') continue;
      arrived.push(message);
      for (const listener of listeners.splice(0)) listener();
    }
  })();
  return {
    arrived,
    done,
    waitFor: async (n) => {
      while (arrived.length < n) await new Promise<void>((resolve) => listeners.push(resolve));
    },
    release: async () => {
      for (const request of arrived.slice(answered)) {
        answered++;
        await conn.send({ type: 'Response', id: request.id, data: Buffer.from(request.path) });
      }
    },
  };
}

test('supersede(): requests in flight both ways are answered, then both ends close with SUPERSEDED', async () => {
  const [x, y] = duplexPair();
  const a = new PeerConnection(x, { closeTimeoutMs: 200 });
  const b = new PeerConnection(y, { closeTimeoutMs: 200 });
  await Promise.all([a.open(), b.open()]);
  const serverA = gatedServer(a);
  const serverB = gatedServer(b);
  // A asks B three blocks, B asks A two: none answered yet.
  const fromB = ['a1', 'a2', 'a3'].map((path) => a.request(blockRequest(path)));
  const fromA = ['b1', 'b2'].map((path) => b.request(blockRequest(path)));
  await Promise.all([serverB.waitFor(3), serverA.waitFor(2)]);

  // B keeps another link: it supersedes this one first (A has no handler: it supersedes on the peer's Close).
  const closedB = b.supersede('replaced', 30_000);
  let closedBoth = false;
  const both = Promise.all([closedB, a.supersede()]).then(() => (closedBoth = true));
  // B still waits for its own two answers: neither side has closed, and A's requests are still served.
  await serverB.release();
  assert.deepEqual((await Promise.all(fromB)).map(String), ['a1', 'a2', 'a3']);
  assert.equal(a.closed, false);
  assert.equal(b.closed, false);
  assert.equal(closedBoth, false);
  await serverA.release();
  assert.deepEqual((await Promise.all(fromA)).map(String), ['b1', 'b2']);
  await both;
  await Promise.all([serverA.done, serverB.done]);
  assert.equal(a.closeCode, CLOSE_SUPERSEDED);
  assert.equal(b.closeCode, CLOSE_SUPERSEDED);
});

test('supersede(): the side the peer superseded first is told (onPeerSuperseded) and may still ask until it supersedes too', async () => {
  const [x, y] = duplexPair();
  const a = new PeerConnection(x, { closeTimeoutMs: 200 });
  const b = new PeerConnection(y, { closeTimeoutMs: 200 });
  await Promise.all([a.open(), b.open()]);
  let told = 0;
  a.onPeerSuperseded = () => told++;
  const serverB = gatedServer(b);
  const closedB = b.supersede('replaced', 30_000);
  while (told === 0) await new Promise((resolve) => setImmediate(resolve));
  // A has not switched yet: a request it sends now is still answered by B.
  const late = a.request(blockRequest('late'));
  await serverB.waitFor(1);
  await serverB.release();
  assert.equal((await late).toString(), 'late');
  assert.equal(b.closed, false);
  await a.supersede();
  await closedB;
  await serverB.done;
  assert.equal(a.closeCode, CLOSE_SUPERSEDED);
  assert.equal(b.closeCode, CLOSE_SUPERSEDED);
  assert.equal(told, 1);
});

test('supersede(): bounded: a peer that never supersedes is closed after the drain time', async () => {
  const [x, y] = duplexPair();
  const a = new PeerConnection(x, { closeTimeoutMs: 200 });
  const b = new PeerConnection(y, { closeTimeoutMs: 200 });
  await Promise.all([a.open(), b.open()]);
  b.onPeerSuperseded = () => undefined; // B ignores it
  const reading = (async () => {
    for await (const message of b) void message;
  })();
  await a.supersede('replaced', 100);
  assert.equal(a.closed, true);
  await reading;
  assert.equal(b.closed, true);
});
