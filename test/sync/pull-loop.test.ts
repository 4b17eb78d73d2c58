// PullLoop's retries: a pass that left failures is retried after 1 s, then 2 s, ... up to retryIntervalMs; a clean pass resets it.

import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { FailedItems } from '../../src/sync/failed-items.js';
import { PullLoop } from '../../src/sync/pull-loop.js';
import { silentLogger } from '../../src/util/log.js';

test('a failed pass is retried after 1 s, then 2 s, up to retryIntervalMs; a clean pass starts again at 1 s', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const outcomes = [1, 1, 1, 1, 0, 1, 0];
    let passes = 0;
    const loop = new PullLoop({
      pass: async () => ({ done: 0, failed: outcomes[passes++] ?? 0, skipped: 0 }),
      retryIntervalMs: 3_000,
      logger: silentLogger,
      signal: new AbortController().signal,
      closed: () => false,
      failed: new FailedItems(),
      reportFailed: () => undefined,
    });
    /** Advances the clock by `ms` and lets any pass that started run to its end. */
    const advance = async (ms: number): Promise<void> => {
      mock.timers.tick(ms);
      await loop.idle();
    };
    loop.schedule();
    await loop.idle();
    assert.equal(passes, 1);
    // Waits of 1, 2, 3 (the cap) and 3 s: each retry comes exactly when its wait has passed, not before.
    for (const wait of [1_000, 2_000, 3_000, 3_000]) {
      const before: number = passes;
      await advance(wait - 1);
      assert.equal(passes, before, `no retry before ${wait} ms`);
      await advance(1);
      assert.equal(passes, before + 1, `a retry at ${wait} ms`);
    }
    // Pass 5 was clean: no retry is pending however long we wait.
    await advance(60_000);
    assert.equal(passes, 5);
    // A later failure starts from 1 s again.
    loop.schedule();
    await loop.idle();
    assert.equal(passes, 6);
    await advance(999);
    assert.equal(passes, 6);
    await advance(1);
    assert.equal(passes, 7);
    loop.close();
  } finally {
    mock.timers.reset();
  }
});
