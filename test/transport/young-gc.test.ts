// Young collections paced by the buffer bytes a µTP transfer leaves behind (src/transport/young-gc.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { BufferChurn, youngCollector, type Collect } from '../../src/transport/young-gc.js';

test('one scavenge per 4 MiB of buffers left behind, none before', () => {
  const asked: string[] = [];
  const churn = new BufferChurn(((options) => asked.push(options.type)) as Collect, 4 * 1024 * 1024);
  for (let i = 0; i < 63; i++) churn.add(65_536);
  assert.deepEqual(asked, []);
  churn.add(65_536);
  assert.deepEqual(asked, ['minor']);
  for (let i = 0; i < 64 * 2; i++) churn.add(65_536);
  assert.equal(churn.collections, 3);
});

test('without a collector (V8 refused the flag) counting does nothing', () => {
  const churn = new BufferChurn(null, 1);
  churn.add(1_000_000);
  assert.equal(churn.collections, 0);
});

test("V8's collector is obtained without exposing gc to other code", () => {
  const collect = youngCollector();
  assert.equal(typeof collect, 'function');
  collect!({ type: 'minor' });
  assert.equal(runInNewContext('typeof gc'), 'undefined');
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
});
