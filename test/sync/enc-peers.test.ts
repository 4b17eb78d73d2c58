// In-process devices through ENC peers: a malicious ENC peer's altered ciphertext is caught and the block fetched from another.

import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { FolderKeys } from '../../src/keys/index.js';
import type { RequestMessage } from '../../src/protocol/messages.js';
import { connect, eventually, makeDevice, runCleanups, type Cleanups } from './helpers.js';

describe('sync through ENC peers', () => {
  const cleanups: Cleanups = [];
  afterEach(() => runCleanups(cleanups));

  test('B reads A\'s files through ENC peers; altered ciphertext is detected and fetched from another ENC peer', async () => {
    const keys = FolderKeys.generate();
    const a = await makeDevice(cleanups, { name: 'alice', keys });
    const e1 = await makeDevice(cleanups, { name: 'encone', keys: keys.weaken('enc') });
    const e2 = await makeDevice(cleanups, { name: 'enctwo', keys: keys.weaken('enc') });
    const b = await makeDevice(cleanups, { name: 'bob', keys: keys.weaken('ro') });
    await mkdir(join(a.root, 'dir'));
    await writeFile(join(a.root, 'dir', 'note.txt'), 'a secret note');
    await writeFile(join(a.root, 'big.bin'), Buffer.alloc(300_000, 7));
    await a.scan();
    await connect(cleanups, a, e1);
    await connect(cleanups, a, e2);
    const holds = (e: typeof e1): boolean => e.index.counts().localFiles === a.index.counts().localFiles && e.index.counts().needFiles === 0;
    await eventually(() => holds(e1) && holds(e2));

    // e1 turns malicious: every block it serves is altered.
    const honest = e1.sync.answer.bind(e1.sync);
    e1.sync.answer = async (device: string, request: RequestMessage) => {
      const answer = await honest(device, request);
      if ('data' in answer) answer.data = Buffer.from(answer.data.map((byte, i) => (i === 0 ? byte ^ 1 : byte)));
      return answer;
    };
    await connect(cleanups, b, e1);
    await eventually(() => (b.sync.enc?.altered ?? 0) > 0);
    assert.equal(b.sync.stats.badBlocks > 0, true);
    await assert.rejects(readFile(join(b.root, 'dir', 'note.txt')), 'nothing altered is installed');

    await connect(cleanups, b, e2);
    await eventually(() => b.index.counts().needFiles === 0 && b.index.counts().localFiles === a.index.counts().localFiles);
    assert.equal(await readFile(join(b.root, 'dir', 'note.txt'), 'utf8'), 'a secret note');
    assert.deepEqual(await readFile(join(b.root, 'big.bin')), Buffer.alloc(300_000, 7));
  });
});
