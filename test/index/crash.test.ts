// Durability: a writer SIGKILLed mid-write leaves an index that reopens consistent and keeps what it acknowledged.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { IndexStore } from '../../src/index/store.js';
import { FOLDER_A, recount, sequenceProblems, tempDir } from './helpers/store.js';

const WRITER = fileURLToPath(new URL('./helpers/crash-writer.js', import.meta.url));

/** Runs the writer until it has acknowledged `commits` batches, kills it, and returns the last acknowledged sequence. */
async function writeAndKill(dir: string, commits: number): Promise<number> {
  const child = spawn(process.execPath, [WRITER, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let acknowledged = 0;
  let seen = 0;
  for await (const line of createInterface({ input: child.stdout })) {
    const match = /^committed (\d+)$/.exec(line);
    if (!match) continue;
    acknowledged = Math.max(acknowledged, Number(match[1]));
    if (++seen === commits) child.kill('SIGKILL');
  }
  assert.equal(await exited, 'SIGKILL', 'the writer ran until it was killed');
  return acknowledged;
}

test('an index survives SIGKILL during writes: consistent counters, sequence log and acknowledged data', async (t) => {
  const dir = `${await tempDir(t)}/index`;
  for (const commits of [40, 75, 120]) {
    const acknowledged = await writeAndKill(dir, commits);
    assert.deepEqual(await sequenceProblems(dir, FOLDER_A), []);

    const store = new IndexStore({ path: dir });
    await store.open();
    try {
      const index = store.folder(FOLDER_A);
      assert.ok(index.localSequence() >= acknowledged, `sequence ${index.localSequence()} lost acknowledged ${acknowledged}`);
      assert.deepEqual(index.counts(), recount(index));
      for (const record of index.localRecords()) {
        if (!record.deleted) assert.deepEqual(index.findBlock(record.blocks[0]!)?.path, record.path);
      }
    } finally {
      await store.close();
    }
  }
});
