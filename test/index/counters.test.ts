// Counters model test: random local and global writes, counts() always equals a brute-force recount and a model.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compareVersions, conflictWinner, type FileRecord, type FileType, type VersionVector } from '../../src/index/records.js';
import { FOLDER_A, file, hash, recount, tempStore } from './helpers/store.js';

interface Change {
  path: string;
  type: FileType;
  size: number;
  deleted: boolean;
  version: VersionVector;
}

type Op = { kind: 'local' | 'global'; changes: Change[] };

const changeArb: fc.Arbitrary<Change> = fc.record({
  path: fc.constantFrom('a', 'b', 'c/d', 'c', 'e f'),
  type: fc.constantFrom<FileType>('file', 'file', 'dir', 'symlink'),
  size: fc.integer({ min: 0, max: 1000 }),
  deleted: fc.boolean(),
  // Small counters over two devices give every order: equal, newer, older, concurrent.
  version: fc.record({ DEV1: fc.integer({ min: 0, max: 2 }), PEER: fc.integer({ min: 0, max: 2 }) }),
});

const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom<'local' | 'global'>('local', 'global'),
  changes: fc.array(changeArb, { minLength: 1, maxLength: 4 }),
});

function toRecord(change: Change): Omit<FileRecord, 'sequence'> {
  const live = change.type === 'file' && !change.deleted;
  return file(change.path, {
    type: change.type,
    size: change.type === 'file' ? change.size : 0,
    deleted: change.deleted,
    version: { ...change.version },
    blocks: live && change.size > 0 ? [hash(change.size)] : [],
  });
}

test('counters equal a brute-force recount and a model after random writes', async (t) => {
  const { store } = await tempStore(t);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
      const index = store.folder(`${FOLDER_A.slice(0, 34)}${String(run++).padStart(6, '0')}`);
      const local = new Map<string, VersionVector>();
      const global = new Map<string, FileRecord>();
      let sequence = 0;
      for (const op of ops) {
        const records = op.changes.map(toRecord);
        if (op.kind === 'local') {
          const stored = await index.putLocal(records);
          for (const record of stored) {
            assert.equal(record.sequence, ++sequence);
            local.set(record.path, record.version);
            const current = global.get(record.path);
            const order = current ? compareVersions(record.version, current.version) : 'newer';
            const wins = order === 'concurrent' && conflictWinner(record, current!) === record;
            if (order === 'newer' || wins) global.set(record.path, record);
          }
        } else {
          await index.putGlobal(records.map((r) => ({ ...r, sequence: 1 })));
          for (const record of records) global.set(record.path, { ...record, sequence: 1 });
        }
        assert.deepEqual(index.counts(), recount(index));
      }
      assert.equal(index.localSequence(), sequence);
      for (const [path, record] of global) assert.deepEqual(index.getGlobal(path)?.version, record.version);
      for (const [path, version] of local) assert.deepEqual(index.getLocal(path)?.version, version);
    }),
    { numRuns: 120 },
  );
});

test('concurrent putLocal and putGlobal calls keep the counters right', async (t) => {
  const { store } = await tempStore(t);
  const index = store.folder(FOLDER_A);
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 2, maxLength: 12 }), async (ops) => {
      await Promise.all(
        ops.map((op) =>
          op.kind === 'local'
            ? index.putLocal(op.changes.map(toRecord))
            : index.putGlobal(op.changes.map((c) => ({ ...toRecord(c), sequence: 1 }))),
        ),
      );
      assert.deepEqual(index.counts(), recount(index));
    }),
    { numRuns: 40 },
  );
});
