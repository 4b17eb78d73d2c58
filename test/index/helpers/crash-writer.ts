// Child process for the crash test: writes batches to an index forever and reports each committed sequence.

import { IndexStore } from '../../../src/index/store.js';
import { FOLDER_A, file, hash } from './store.js';

const [dir] = process.argv.slice(2);
if (!dir) throw new Error('usage: crash-writer.js INDEX_DIR');

const store = new IndexStore({ path: dir });
await store.open();
const index = store.folder(FOLDER_A);
const paths = Array.from({ length: 200 }, (_, i) => `dir${i % 7}/file ${i}`);
const pick = (): string => paths[Math.floor(Math.random() * paths.length)]!;
let round = index.localSequence();

async function localBatch(): Promise<void> {
  const batch = Array.from({ length: 1 + Math.floor(Math.random() * 50) }, () => {
    const n = ++round;
    const deleted = Math.random() < 0.2;
    return file(pick(), {
      size: deleted ? 0 : n,
      deleted,
      version: { DEV1: n, PEER: Math.floor(Math.random() * 3) },
      blocks: deleted ? [] : [hash(n), hash(1_000_000 + (n % 11))],
    });
  });
  const stored = await index.putLocal(batch);
  process.stdout.write(`committed ${stored[stored.length - 1]!.sequence}\n`);
}

async function globalBatch(): Promise<void> {
  const batch = Array.from({ length: 1 + Math.floor(Math.random() * 20) }, () =>
    ({ ...file(pick(), { size: Math.floor(Math.random() * 1000), version: { PEER: ++round } }), sequence: round }),
  );
  await index.putGlobal(batch);
}

// Several transactions in flight at any time, so the kill lands mid-commit as often as between commits.
for (;;) await Promise.all([localBatch(), globalBatch(), localBatch()]);
