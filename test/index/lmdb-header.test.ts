// The check of an index's LMDB meta pages before it is opened: this word size and format, whole, not garbage.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { IndexStore } from '../../src/index/store.js';
import { checkIndexFile, checkIndexHead, LMDB_MAGIC, metaLayout, processWordBits, type WordBits } from '../../src/index/lmdb-header.js';
import { removeDir, tempDir } from '../helpers/daemon.js';

/** Two meta pages as a build of `bits` word size writes them (LMDB 1.0, data format 2). */
function craftedHead(bits: WordBits, pageSize = 4096, lastPage = 1): Buffer {
  const layout = metaLayout(bits);
  const buf = Buffer.alloc(2 * pageSize);
  for (const [page, txnid] of [[0, 6], [1, 7]] as const) {
    const base = page * pageSize;
    if (layout.word === 8) buf.writeBigUInt64LE(BigInt(page), base);
    else buf.writeUInt32LE(page, base);
    buf.writeUInt16LE(0x08, base + layout.flags);
    buf.writeUInt32LE(LMDB_MAGIC, base + layout.magic);
    buf.writeUInt32LE(2, base + layout.version);
    buf.writeUInt32LE(pageSize, base + layout.pageSize);
    if (layout.word === 8) {
      buf.writeBigUInt64LE(BigInt(lastPage), base + layout.lastPage);
      buf.writeBigUInt64LE(BigInt(txnid), base + layout.txnid);
    } else {
      buf.writeUInt32LE(lastPage, base + layout.lastPage);
      buf.writeUInt32LE(txnid, base + layout.txnid);
    }
  }
  return buf;
}

async function realIndex(dir: string): Promise<string> {
  const store = new IndexStore({ path: dir });
  await store.open();
  for (let i = 0; i < 300; i++) await store.putSetting(`k${i}`, 'v'.repeat(200));
  await store.close();
  return join(dir, 'data.mdb');
}

test('an index written by this build passes; the layout of this word size matches the real file', async () => {
  const dir = await tempDir('lmdb-header');
  try {
    const file = await realIndex(dir);
    const check = await checkIndexFile(file);
    assert.equal(check?.ok, true, JSON.stringify(check));
    const bits = processWordBits();
    const other: WordBits = bits === 64 ? 32 : 64;
    // The same bytes judged as the other word size would judge them: refused as that word size.
    const head = await readFile(file);
    const asOther = checkIndexHead(head, head.length, other);
    assert.equal(asOther.ok, false);
    assert.equal(!asOther.ok && asOther.problem, 'word-size');
    assert.equal(await checkIndexFile(join(dir, 'missing.mdb')), undefined);
  } finally {
    await removeDir(dir);
  }
});

test('crafted meta pages of each word size: accepted by that word size, refused as word-size by the other', () => {
  for (const bits of [32, 64] as const) {
    const head = craftedHead(bits);
    assert.deepEqual(checkIndexHead(head, head.length, bits), { ok: true, pageSize: 4096, txnid: 7 });
    const other = checkIndexHead(head, head.length, bits === 64 ? 32 : 64);
    assert.equal(!other.ok && other.problem, 'word-size', JSON.stringify(other));
    assert.match(!other.ok ? other.detail : '', new RegExp(`written by a ${bits}-bit build`));
  }
});

test('a truncated, garbage or other-format data file is refused with its reason', async () => {
  const bits = processWordBits();
  const head = craftedHead(bits, 4096, 9);
  // The newest meta says the file has 10 pages; 2 are there.
  const cut = checkIndexHead(head, head.length, bits);
  assert.equal(!cut.ok && cut.problem, 'truncated');
  const tiny = checkIndexHead(head.subarray(0, 100), 100, bits);
  assert.equal(!tiny.ok && tiny.problem, 'truncated');
  const empty = checkIndexHead(Buffer.alloc(0), 0, bits);
  assert.equal(!empty.ok && empty.problem, 'truncated');
  const noise = randomBytes(65536);
  const garbage = checkIndexHead(noise, noise.length, bits);
  assert.equal(!garbage.ok && garbage.problem, 'garbage');
  const older = craftedHead(bits);
  older.writeUInt32LE(1, metaLayout(bits).version);
  const format = checkIndexHead(older, older.length, bits);
  assert.equal(!format.ok && format.problem, 'format');
  const damagedSecond = craftedHead(bits);
  damagedSecond.fill(0x5a, 4096, 4096 + 64);
  const second = checkIndexHead(damagedSecond, damagedSecond.length, bits);
  assert.equal(!second.ok && second.problem, 'garbage');

  const dir = await tempDir('lmdb-header');
  try {
    const file = await realIndex(dir);
    const { length } = await readFile(file);
    await truncate(file, Math.floor(length / 2));
    const check = await checkIndexFile(file);
    assert.equal(check && !check.ok && check.problem, 'truncated', JSON.stringify(check));
    await writeFile(file, randomBytes(length));
    const random = await checkIndexFile(file);
    assert.equal(random && !random.ok && random.problem, 'garbage', JSON.stringify(random));
  } finally {
    await removeDir(dir);
  }
});
