// Tests for the page-aligned staging buffers of direct writes: O_DIRECT accepts them, and take() waits for a free one.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isFerryError } from '../../src/errors.js';
import { AlignedBuffers, DIRECT_IO_ALIGN } from '../../src/sync/aligned-buffers.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

/** Writes `data` to a fresh file opened with O_DIRECT; the error code when the kernel refuses it. */
async function directWrite(data: Buffer): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-direct-'));
  dirs.push(dir);
  const fd = openSync(join(dir, 'f'), constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT, 0o600);
  try {
    assert.equal(writeSync(fd, data, 0, data.length, 0), data.length);
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code;
  } finally {
    closeSync(fd);
  }
}

describe('AlignedBuffers', () => {
  test('every buffer is aligned for O_DIRECT; a view one byte off is refused, so the check is real', async () => {
    const staging = new AlignedBuffers(3, 64 * 1024);
    const buffers = await Promise.all([staging.take(), staging.take(), staging.take()]);
    assert.equal(new Set(buffers.map((b) => b.byteOffset)).size, 3, 'three distinct slots');
    for (const buffer of buffers) {
      assert.equal(buffer.length, 64 * 1024);
      buffer.fill(9);
      assert.equal(await directWrite(buffer.subarray(0, DIRECT_IO_ALIGN)), undefined);
    }
    assert.equal(await directWrite(buffers[0]!.subarray(1, 1 + DIRECT_IO_ALIGN)), 'EINVAL');
  });

  test('take() waits while every buffer is lent; give() hands the buffer to the first waiter', async () => {
    const staging = new AlignedBuffers(1, DIRECT_IO_ALIGN);
    const only = await staging.take();
    const order: string[] = [];
    const first = staging.take().then((b) => (order.push('first'), b));
    const second = staging.take().then((b) => (order.push('second'), b));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, [], 'nobody gets a buffer while the only one is lent');
    staging.give(only);
    assert.equal(await first, only);
    assert.deepEqual(order, ['first']);
    staging.give(only);
    assert.equal(await second, only);
  });

  test('an aborted wait rejects with ABORTED and leaves the queue', async () => {
    const staging = new AlignedBuffers(1, DIRECT_IO_ALIGN);
    const only = await staging.take();
    const controller = new AbortController();
    const abandoned = staging.take(controller.signal);
    const next = staging.take();
    controller.abort();
    await assert.rejects(abandoned, (err) => isFerryError(err, 'ABORTED'));
    staging.give(only);
    assert.equal(await next, only, 'the buffer goes to the waiter still there');
  });

  test('sizes that cannot be aligned are refused', () => {
    assert.throws(() => new AlignedBuffers(0, DIRECT_IO_ALIGN), RangeError);
    assert.throws(() => new AlignedBuffers(2, DIRECT_IO_ALIGN + 512), RangeError);
  });
});
