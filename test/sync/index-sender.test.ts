// IndexSender: the first change after a quiet spell goes at once; a burst right after a send waits out the gap and goes as one message.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FolderKeys } from '../../src/keys/index.js';
import type { PeerConnection } from '../../src/protocol/connection.js';
import type { IndexMessage } from '../../src/protocol/messages.js';
import { IndexSender } from '../../src/sync/index-exchange.js';
import { silentLogger } from '../../src/util/log.js';
import { file, tempStore } from '../index/helpers/store.js';

/**
 * Long enough that the two index writes of the burst (each a committed, synced transaction, which a
 * busy shared disk can hold for a second or more) land within the gap after the first send.
 */
const GAP_MS = 5000;

/** A connection that records what is sent, and when. */
function recordingConnection(): { connection: PeerConnection; sent: Array<{ message: IndexMessage; atMs: number }> } {
  const sent: Array<{ message: IndexMessage; atMs: number }> = [];
  const connection = {
    closed: false,
    async send(message: IndexMessage) {
      sent.push({ message, atMs: Date.now() });
    },
  };
  return { connection: connection as unknown as PeerConnection, sent };
}

describe('IndexSender', () => {
  test('sends the first change at once and a burst after it as one message, one gap later', async (t) => {
    const { store } = await tempStore(t);
    const keys = FolderKeys.generate();
    const index = store.folder(keys.folderIdHex);
    await index.putLocal([file('a')]);
    const { connection, sent } = recordingConnection();
    const sender = new IndexSender(keys, index, connection, silentLogger, { sentSequence: 0, full: true, unsigned: false, updateGapMs: GAP_MS });

    const startMs = Date.now();
    sender.kick();
    await sender.settled();
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.message.type, 'Index');
    assert.ok(sent[0]!.atMs - startMs < GAP_MS, 'after a quiet spell the index goes at once');

    await index.putLocal([file('b')]);
    sender.kick();
    await index.putLocal([file('c')]);
    sender.kick();
    assert.equal(sent.length, 1, 'changes right after a send wait');
    await sender.settled();
    assert.equal(sent.length, 2);
    assert.equal(sent[1]!.message.type, 'IndexUpdate');
    assert.deepEqual(sent[1]!.message.records.map((r) => r.path), ['b', 'c']);
    // The gap runs from when the first send began (after startMs; its message may reach the
    // connection later on a busy machine), so it is measured from startMs.
    assert.ok(sent[1]!.atMs - startMs >= GAP_MS, `one gap later (${sent[1]!.atMs - startMs} ms after the first kick)`);
    assert.equal(sender.recordsSent, 3);

    // Stopped while a send waits: nothing more goes, and settled() does not hang.
    await index.putLocal([file('d')]);
    sender.kick();
    sender.stop();
    await sender.settled();
    assert.equal(sent.length, 2);
  });
});
