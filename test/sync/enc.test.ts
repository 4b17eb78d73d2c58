// Encryption for ENC peers: blocks, names, ENC-facing records, and the bridge's checks on ciphertext from ENC peers.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FolderKeys } from '../../src/keys/index.js';
import type { FileRecord } from '../../src/index/records.js';
import { decodeRecord, encodeRecord } from '../../src/index/record-codec.js';
import type { FolderIndex } from '../../src/index/types.js';
import { decodeBody, encodeBody } from '../../src/protocol/frames.js';
import { recordFromWire, recordSigningBytes, toWireRecord } from '../../src/protocol/records.js';
import { EncBridge } from '../../src/sync/enc-bridge.js';
import { BLOCK_TAG_BYTES, EncCrypto, base32, fromBase32 } from '../../src/sync/enc-crypto.js';
import { fromEncRecord, toEncRecord } from '../../src/sync/enc-records.js';
import { silentLogger } from '../../src/util/log.js';

const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();

const BLOCK = 1024;
const content = Buffer.concat([Buffer.alloc(BLOCK, 'a'), Buffer.alloc(BLOCK, 'a'), Buffer.from('tail of the file')]);
const blocks = [0, 1, 2].map((i) => content.subarray(i * BLOCK, (i + 1) * BLOCK));

function plainRecord(keys: FolderKeys, path = 'docs/plans/secret.txt'): FileRecord {
  const record: FileRecord = {
    path,
    type: 'file',
    size: content.length,
    mode: 0o640,
    mtimeMs: 1_700_000_000_123,
    inode: 0,
    version: { AAAA: 3, BBBB: 1 },
    modifiedBy: 'AAAA',
    blockSize: BLOCK,
    blocks: blocks.map(sha256),
    deleted: false,
    sequence: 7,
  };
  record.signature = keys.sign(recordSigningBytes(keys.folderId, record));
  return record;
}

describe('EncCrypto', () => {
  const keys = FolderKeys.generate();
  const crypto = new EncCrypto(keys.contentKey());

  test('blocks: deterministic AES-256-GCM, 16 bytes longer; any altered byte or the wrong hash fails', () => {
    const h = sha256(blocks[0]!);
    const sealed = crypto.encryptBlock(h, blocks[0]!);
    assert.equal(sealed.length, BLOCK + BLOCK_TAG_BYTES);
    assert.deepEqual(crypto.encryptBlock(h, blocks[1]!), sealed, 'identical blocks, identical ciphertext (dedup)');
    assert.ok(!sealed.includes(Buffer.from('aaaaaaaa')));
    assert.deepEqual(crypto.decryptBlock(h, sealed), blocks[0]);
    for (const at of [0, 100, sealed.length - 1]) {
      const altered = Buffer.from(sealed);
      altered[at]! ^= 1;
      assert.equal(crypto.decryptBlock(h, altered), undefined, `byte ${at}`);
    }
    assert.equal(crypto.decryptBlock(sha256(blocks[2]!), sealed), undefined);
    assert.equal(new EncCrypto(FolderKeys.generate().contentKey()).decryptBlock(h, sealed), undefined, 'another folder');
  });

  test('paths: one encrypted name per segment, deterministic, bound to the parent, reversible', () => {
    const enc = crypto.encryptPath('docs/plans/secret.txt');
    assert.equal(enc.split('/').length, 3);
    assert.match(enc, /^[a-z2-7/]+$/);
    assert.equal(crypto.encryptPath('docs/plans/secret.txt'), enc);
    assert.equal(crypto.encryptPath('docs/plans').split('/')[1], enc.split('/')[1], 'a directory has one name');
    assert.notEqual(crypto.encryptPath('other/secret.txt').split('/')[1], enc.split('/')[2], 'same name, other parent');
    assert.equal(crypto.decryptPath(enc), 'docs/plans/secret.txt');
    // Change one character inside the last name (not the final one, whose spare bits may be ignored).
    const at = enc.length - 6;
    const tampered = `${enc.slice(0, at)}${enc[at] === 'a' ? 'b' : 'a'}${enc.slice(at + 1)}`;
    assert.equal(crypto.decryptPath(tampered), undefined);
    assert.equal(crypto.decryptPath('notbase32!'), undefined);
  });

  test('base32 round-trips any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => assert.deepEqual(fromBase32(base32(bytes)), Buffer.from(bytes))));
  });
});

describe('ENC-facing records', () => {
  const keys = FolderKeys.generate();
  const encKeys = keys.weaken('enc');
  const crypto = new EncCrypto(keys.contentKey());
  const plain = plainRecord(keys);
  const cipherHashes = blocks.map((b, i) => sha256(crypto.encryptBlock(plain.blocks[i]!, b)));

  test('carry no name, no hash and no mode of the plaintext; ENC keys verify them; wire and index keep them intact', () => {
    const enc = toEncRecord(crypto, keys, plain, cipherHashes)!;
    assert.equal(enc.size, content.length + 3 * BLOCK_TAG_BYTES);
    assert.equal(enc.blockSize, BLOCK + BLOCK_TAG_BYTES);
    assert.deepEqual(enc.blocks, cipherHashes);
    assert.equal(enc.mode, 0o600);
    assert.deepEqual(enc.version, plain.version);
    const bytes = encodeBody(toWireRecord(enc));
    for (const name of ['docs', 'plans', 'secret']) assert.ok(!bytes.includes(Buffer.from(name)), name);
    for (const h of plain.blocks) assert.ok(!bytes.includes(Buffer.from(h)), 'no plaintext hash');
    assert.ok(encKeys.verify(recordSigningBytes(keys.folderId, enc), enc.signature!), 'an ENC peer verifies it');
    const wire = recordFromWire(decodeBody(bytes), 'test');
    assert.deepEqual(Buffer.from(wire.sealed!), Buffer.from(enc.sealed!));
    assert.ok(encKeys.verify(recordSigningBytes(keys.folderId, wire), wire.signature!));
    const stored = decodeRecord(enc.path, decodeBody(encodeBody(encodeRecord(enc))));
    assert.deepEqual(Buffer.from(stored.sealed!), Buffer.from(enc.sealed!));
    assert.equal(decodeRecord(plain.path, encodeRecord(plain)).sealed, undefined);
  });

  test('open back to the signed plaintext record; altered or swapped sealed records are refused', () => {
    const enc = toEncRecord(crypto, keys, plain, cipherHashes)!;
    const { plain: back, view } = fromEncRecord(crypto, enc);
    assert.equal(back.path, plain.path);
    assert.equal(back.mode, plain.mode);
    assert.equal(back.mtimeMs, plain.mtimeMs);
    assert.deepEqual(back.blocks.map((b) => Buffer.from(b)), plain.blocks);
    assert.ok(keys.verify(recordSigningBytes(keys.folderId, back), back.signature!), 'the author\'s signature survives');
    assert.equal(view.cipherBlockSize, BLOCK + BLOCK_TAG_BYTES);

    const altered = { ...enc, sealed: Buffer.from(enc.sealed!) };
    altered.sealed[20]! ^= 1;
    assert.throws(() => fromEncRecord(crypto, altered), /PROTOCOL|decrypt/);
    const other = toEncRecord(crypto, keys, plainRecord(keys, 'docs/other.txt'), cipherHashes)!;
    assert.throws(() => fromEncRecord(crypto, { ...enc, sealed: other.sealed }), /decrypt/);
    assert.throws(() => fromEncRecord(new EncCrypto(FolderKeys.generate().contentKey()), enc), /decrypt/);
  });

  test('names too long for a file system once encrypted are not published', () => {
    assert.equal(toEncRecord(crypto, keys, plainRecord(keys, `d/${'n'.repeat(200)}`), cipherHashes), undefined);
  });
});

describe('EncBridge', () => {
  const keys = FolderKeys.generate();
  const plain = plainRecord(keys);
  const index = { getLocal: (path: string) => (path === plain.path ? plain : undefined) } as unknown as FolderIndex;
  const readBlock = async (_path: string, offset: number, size: number, hash: Uint8Array): Promise<Buffer | undefined> => {
    const block = content.subarray(offset, offset + size);
    return sha256(block).equals(hash) ? block : undefined;
  };
  const bridge = new EncBridge({ keys, index, logger: silentLogger, readBlock });

  test('what we publish, an ENC peer serves, and we read back; altered ciphertext from it is refused', async () => {
    const enc = (await bridge.outgoing(plain))!;
    // The ENC peer stores what it fetched from us: our answers, checked against the ENC record's hashes.
    const stored: Buffer[] = [];
    for (const [i, hash] of enc.blocks.entries()) {
      const size = Math.min(enc.blockSize, enc.size - i * enc.blockSize);
      const answer = await bridge.answer({ type: 'Request', id: 1, folderId: keys.folderId, path: enc.path, offset: i * enc.blockSize, size, hash: Buffer.from(hash) });
      assert.ok('data' in answer, JSON.stringify(answer));
      assert.ok(sha256(answer.data).equals(hash));
      stored.push(answer.data);
    }
    assert.ok(stored[0]!.equals(stored[1]!), 'identical blocks are stored once by hash');
    const wrong = await bridge.answer({ type: 'Request', id: 2, folderId: keys.folderId, path: enc.path, offset: 0, size: BLOCK + 16, hash: randomBytes(32) });
    assert.deepEqual(wrong, { error: 'NO_SUCH_FILE' });
    // Ciphertext blocks go one per request: a run of two, even of real blocks, is refused.
    const run = Buffer.concat([enc.blocks[0]!, enc.blocks[1]!]);
    const twoBlocks = await bridge.answer({ type: 'Request', id: 3, folderId: keys.folderId, path: enc.path, offset: 0, size: 2 * enc.blockSize, hash: run });
    assert.deepEqual(twoBlocks, { error: 'INVALID_REQUEST' });

    // Another RW/RO device learns the record from the ENC peer and fetches from it.
    const reader = new EncBridge({ keys: keys.weaken('ro'), index, logger: silentLogger, readBlock });
    const [back] = reader.incoming('ENCPEER', { type: 'Index', folderId: keys.folderId, indexId: Buffer.alloc(8), firstSequence: 1, lastSequence: 1, records: [enc] }).records;
    assert.equal(back!.path, plain.path);
    let tamper = false;
    const send = async (params: { path: string; offset: number; hash: Buffer }): Promise<Buffer> => {
      assert.equal(params.path, enc.path);
      const data = Buffer.from(stored[params.offset / enc.blockSize]!);
      if (tamper) data[3]! ^= 0x40;
      return data;
    };
    const params = (i: number) => ({ folderId: keys.folderId, path: plain.path, offset: i * BLOCK, size: blocks[i]!.length, hash: Buffer.from(plain.blocks[i]!) });
    for (const i of [0, 1, 2]) assert.deepEqual(await reader.request('ENCPEER', params(i), send), blocks[i]);
    tamper = true;
    assert.equal((await reader.request('ENCPEER', params(2), send)).length, 0, 'an altered block comes back empty: a bad block');
    assert.equal(reader.altered, 1);
    await assert.rejects(reader.request('OTHER', params(0), send), /REQUEST_FAILED|no block/);
  });

  test('devices that cannot sign publish nothing to ENC peers', async () => {
    const ro = new EncBridge({ keys: keys.weaken('ro'), index, logger: silentLogger, readBlock });
    assert.equal(await ro.outgoing(plain), undefined);
  });
});
