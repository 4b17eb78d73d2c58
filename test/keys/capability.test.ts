// Tests for folder capability keys: derivation, one-wayness, text form, signing and proof keys.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, hkdfSync } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { isFerryError, type ErrorCode } from '../../src/errors.js';
import { FolderKeys, type Access } from '../../src/keys/index.js';
import { decodeKeyText, encodeKeyText } from '../../src/keys/keytext.js';

const LEVELS: Access[] = ['rw', 'ro', 'enc'];
const secretArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

function assertCode(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isFerryError(err), `expected a FerryError, got ${String(err)}`);
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`);
    return true;
  });
}

describe('known answers (a change here changes every folder: it is a format change)', () => {
  // S = 00 01 02 … 1f
  const fixture = {
    rw: 'AAAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPY2IAY64',
    ro: 'BKFF4U4ZGNQOALDT7AMLVXOA5RUTSOYKBY5WDS33X3UIETGQUJ6BIZLJARHGM5EQSVPCGABL3WTAA3WUS2LKWU4INMWTV5BCGLXTW6IVT6WA32',
    enc: 'ETE2UGYC5ZCD735ONOA4ZA6UZJ43YAOBBDE5KQRLI4G2QHTG5VR2YZLJARHGM5EQSVPCGABL3WTAA3WUS2LKWU4INMWTV5BCGLXTW6IRRGG7ZQ',
    folderId: '97f781783aca3fea2de5dce50afe1996536342b1',
    verifyKey: '8cad2089ccce9212abc460057bb4c00dda92d2d56a710d65a75e84465de76f22',
    signatureOfFerry:
      '9a434fa4bef1c5415e1474a235778f570d7c6185bc90237edde4d9ada87ddae1' +
      '7126b33dcebbf386da84a3cfdd865741d60ca804a9224f424099daf54b629907',
    proofRo: 'bd2341a4678585aef68671416d3dc9a4a6c1700fba2b46bb7986c1b5e2daf6f1',
    proofEnc: 'dfbba4f671e94620a66d6859b0332743b0014b958c959f42bb6457cc62646ac3',
    content: '1af43480d230d8a3d62e425f0f150a8cf51871aac99afe0657e17481ae948cb7',
  };
  const secret = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const keys = FolderKeys.fromSecret(secret);

  test('fixed S gives fixed key texts, folder ID, verify key and derived keys', () => {
    assert.equal(keys.format('rw'), fixture.rw);
    assert.equal(keys.format('ro'), fixture.ro);
    assert.equal(keys.format('enc'), fixture.enc);
    assert.equal(keys.folderIdHex, fixture.folderId);
    assert.equal(keys.verifyKey.toString('hex'), fixture.verifyKey);
    assert.equal(keys.sign(Buffer.from('ferry')).toString('hex'), fixture.signatureOfFerry);
    assert.equal(keys.proofKey('ro').toString('hex'), fixture.proofRo);
    assert.equal(keys.proofKey('enc').toString('hex'), fixture.proofEnc);
    assert.equal(keys.contentKey().toString('hex'), fixture.content);
  });

  test('the fixture keys parse back to the same folder', () => {
    for (const level of LEVELS) {
      const parsed = FolderKeys.parse(fixture[level]);
      assert.equal(parsed.access, level);
      assert.equal(parsed.folderIdHex, fixture.folderId);
    }
  });

  test('derivations follow the documented scheme (HKDF-SHA256, fixed salt and labels)', () => {
    const salt = Buffer.from('ferry capability keys v1');
    const hkdf = (ikm: Buffer, label: string) => Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(label), 32));
    const r = hkdf(secret, 'ro');
    const n = hkdf(r, 'enc');
    assert.deepEqual(keys.readSecret, r);
    assert.deepEqual(keys.encSecret, n);
    assert.deepEqual(keys.proofKey('ro'), hkdf(r, 'proof ro'));
    assert.deepEqual(keys.proofKey('enc'), hkdf(n, 'proof enc'));
    assert.deepEqual(keys.contentKey(), hkdf(r, 'content'));
    const id = createHash('sha256').update('ferry folder id\0').update(n).update(keys.verifyKey).digest();
    assert.deepEqual(keys.folderId, id.subarray(0, 20));
  });
});

describe('derivation', () => {
  test('generate makes a RW key with 32-byte material and a 20-byte folder ID', () => {
    const keys = FolderKeys.generate();
    assert.equal(keys.access, 'rw');
    assert.equal(keys.secret?.length, 32);
    assert.equal(keys.readSecret?.length, 32);
    assert.equal(keys.encSecret.length, 32);
    assert.equal(keys.verifyKey.length, 32);
    assert.equal(keys.folderId.length, 20);
    assert.match(keys.folderIdHex, /^[0-9a-f]{40}$/);
    assert.notEqual(FolderKeys.generate().folderIdHex, keys.folderIdHex);
  });

  test('all three keys of a folder share folder ID, verify key and ENC material', () => {
    fc.assert(
      fc.property(secretArb, (s) => {
        const rw = FolderKeys.fromSecret(s);
        for (const level of LEVELS) {
          const other = FolderKeys.parse(rw.format(level));
          assert.deepEqual(other.folderId, rw.folderId);
          assert.deepEqual(other.verifyKey, rw.verifyKey);
          assert.deepEqual(other.encSecret, rw.encSecret);
          assert.deepEqual(rw.weaken(level).folderId, rw.folderId);
        }
      }),
      { numRuns: 50 },
    );
  });

  test('weaker keys hold no stronger material and cannot print or produce it', () => {
    const rw = FolderKeys.generate();
    for (const ro of [rw.weaken('ro'), FolderKeys.parse(rw.format('ro'))]) {
      assert.equal(ro.access, 'ro');
      assert.equal(ro.secret, undefined);
      assert.deepEqual(ro.readSecret, rw.readSecret);
      assert.equal(ro.canSign, false);
      assertCode(() => ro.format('rw'), 'KEY_ACCESS');
      assertCode(() => ro.weaken('rw'), 'KEY_ACCESS');
      assert.equal(ro.format('enc'), rw.format('enc'));
    }
    for (const enc of [rw.weaken('enc'), FolderKeys.parse(rw.format('enc')), FolderKeys.parse(rw.format('ro')).weaken('enc')]) {
      assert.equal(enc.access, 'enc');
      assert.equal(enc.secret, undefined);
      assert.equal(enc.readSecret, undefined);
      assertCode(() => enc.format('ro'), 'KEY_ACCESS');
      assertCode(() => enc.format('rw'), 'KEY_ACCESS');
      assertCode(() => enc.weaken('ro'), 'KEY_ACCESS');
      assertCode(() => enc.proofKey('ro'), 'KEY_ACCESS');
      assertCode(() => enc.contentKey(), 'KEY_ACCESS');
    }
    // The weaker key texts carry exactly their own material: no S in RO, neither S nor R in ENC.
    const kinds = [
      { prefix: 'B', payloadBytes: 64, name: 'read-only' },
      { prefix: 'E', payloadBytes: 64, name: 'encrypted' },
    ];
    const roPayload = decodeKeyText(rw.format('ro'), kinds).payload;
    const encPayload = decodeKeyText(rw.format('enc'), kinds).payload;
    assert.deepEqual(roPayload, Buffer.concat([rw.readSecret!, rw.verifyKey]));
    assert.deepEqual(encPayload, Buffer.concat([rw.encSecret, rw.verifyKey]));
  });

  test('fromSecret rejects a secret of the wrong size', () => {
    assertCode(() => FolderKeys.fromSecret(new Uint8Array(31)), 'KEY_INVALID');
    assertCode(() => FolderKeys.fromSecret(new Uint8Array(33)), 'KEY_INVALID');
  });

  test('secrets never appear in logs or JSON', () => {
    const keys = FolderKeys.generate();
    for (const text of [JSON.stringify(keys), inspect(keys), JSON.stringify({ keys })]) {
      assert.ok(text.includes(keys.folderIdHex));
      for (const secret of [keys.secret!, keys.readSecret!, keys.encSecret]) {
        assert.ok(!text.includes(secret.toString('hex')));
        assert.ok(!text.includes(secret.toString('base64')));
      }
    }
  });
});

describe('text form', () => {
  test('format/parse round trip at every level', () => {
    fc.assert(
      fc.property(secretArb, fc.constantFrom(...LEVELS), (s, level) => {
        const rw = FolderKeys.fromSecret(s);
        const text = rw.format(level);
        assert.match(text, /^[ABE][A-Z2-7]+$/);
        assert.equal(text[0], { rw: 'A', ro: 'B', enc: 'E' }[level]);
        assert.equal(text.length, level === 'rw' ? 59 : 110);
        const parsed = FolderKeys.parse(text);
        assert.equal(parsed.access, level);
        assert.equal(parsed.format(), text);
        assert.deepEqual(parsed.secret, level === 'rw' ? rw.secret : undefined);
        assert.deepEqual(parsed.readSecret, level === 'enc' ? undefined : rw.readSecret);
        assert.deepEqual(parsed.encSecret, rw.encSecret);
      }),
      { numRuns: 100 },
    );
  });

  test('surrounding whitespace and lowercase are accepted', () => {
    const keys = FolderKeys.generate();
    for (const level of LEVELS) {
      const text = keys.format(level);
      assert.equal(FolderKeys.parse(`  ${text.toLowerCase()}\n`).format(), text);
      assert.equal(FolderKeys.parse(`\t${text}\r\n`).format(), text);
    }
  });

  test('any single-character substitution is a checksum error', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'.split('');
    fc.assert(
      fc.property(secretArb, fc.constantFrom(...LEVELS), fc.nat(), fc.constantFrom(...alphabet), fc.boolean(),
        (s, level, at, replacement, lower) => {
          const text = FolderKeys.fromSecret(s).format(level);
          const i = at % text.length;
          fc.pre(replacement !== text[i]);
          const typo = text.slice(0, i) + replacement + text.slice(i + 1);
          assertCode(() => FolderKeys.parse(lower ? typo.toLowerCase() : typo), 'KEY_CHECKSUM');
        }),
      { numRuns: 500 },
    );
  });

  test('any adjacent transposition is a checksum error', () => {
    fc.assert(
      fc.property(secretArb, fc.constantFrom(...LEVELS), fc.nat(), (s, level, at) => {
        const text = FolderKeys.fromSecret(s).format(level);
        const i = at % (text.length - 1);
        fc.pre(text[i] !== text[i + 1]);
        const typo = text.slice(0, i) + text[i + 1] + text[i] + text.slice(i + 2);
        assertCode(() => FolderKeys.parse(typo), 'KEY_CHECKSUM');
      }),
      { numRuns: 500 },
    );
  });

  test('every substitution and transposition of the fixture keys is caught (exhaustive)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const keys = FolderKeys.fromSecret(Buffer.alloc(32, 7));
    for (const level of LEVELS) {
      const text = keys.format(level);
      for (let i = 0; i < text.length; i++) {
        for (const replacement of alphabet) {
          if (replacement === text[i]) continue;
          assertCode(() => FolderKeys.parse(text.slice(0, i) + replacement + text.slice(i + 1)), 'KEY_CHECKSUM');
        }
        if (i + 1 < text.length && text[i] !== text[i + 1]) {
          assertCode(() => FolderKeys.parse(text.slice(0, i) + text[i + 1] + text[i] + text.slice(i + 2)), 'KEY_CHECKSUM');
        }
      }
    }
  });

  test('the checksum error tells the user it is a typo', () => {
    const text = FolderKeys.generate().format('ro');
    const typo = text.slice(0, 10) + (text[10] === 'Q' ? 'R' : 'Q') + text.slice(11);
    assert.throws(() => FolderKeys.parse(typo), /typo: checksum mismatch/);
  });

  test('text that is not a Ferry key is KEY_NOT_FERRY, with the reason', () => {
    const key = FolderKeys.generate().format('rw');
    const cases: Array<[string, RegExp]> = [
      ['', /empty/],
      ['   \n', /empty/],
      ['hello world', /space or line break/],
      ['https://example.com/folder', /character ":"/],
      [key.slice(0, 20) + '0' + key.slice(21), /did you mean O/],
      [key.slice(0, 30) + ' ' + key.slice(30), /one unbroken word/],
      [key.slice(0, 30) + '-' + key.slice(31), /character "-"/],
      ['A', /has 1 character,/],
      ['ABCDEFGH', /Ferry keys have 59 or 110/],
      [key.slice(0, -1), /part of it may be missing/],
      [key + 'A', /part of it may be missing/],
    ];
    for (const [text, message] of cases) {
      assertCode(() => FolderKeys.parse(text), 'KEY_NOT_FERRY');
      assert.throws(() => FolderKeys.parse(text), message);
    }
    assertCode(() => FolderKeys.parse('A'.repeat(59)), 'KEY_CHECKSUM');
    assertCode(() => FolderKeys.parse(12 as unknown as string), 'KEY_NOT_FERRY');
  });

  test('a well-formed key with an unknown prefix is KEY_UNKNOWN_TYPE', () => {
    for (const prefix of ['C', 'Z', 'F']) {
      const text = encodeKeyText(prefix, Buffer.alloc(32, 1));
      assertCode(() => FolderKeys.parse(text), 'KEY_UNKNOWN_TYPE');
      assert.throws(() => FolderKeys.parse(text), /unknown key type 'C'|unknown key type 'Z'|unknown key type 'F'/);
      // Even of another length: the checksum shows it was written by a Ferry, not mistyped.
      assertCode(() => FolderKeys.parse(encodeKeyText(prefix, Buffer.alloc(48, 2))), 'KEY_UNKNOWN_TYPE');
    }
  });

  test('a known prefix with the wrong amount of material is KEY_INVALID', () => {
    assertCode(() => FolderKeys.parse(encodeKeyText('B', Buffer.alloc(32, 1))), 'KEY_INVALID');
    assertCode(() => FolderKeys.parse(encodeKeyText('A', Buffer.alloc(64, 1))), 'KEY_INVALID');
    assertCode(() => FolderKeys.parse(encodeKeyText('E', Buffer.alloc(40, 1))), 'KEY_INVALID');
  });
});

describe('signing and proof keys', () => {
  test('RW signs; every level verifies, on the event loop and in the thread pool alike; weaker levels cannot sign', async () => {
    const rw = FolderKeys.generate();
    const ro = FolderKeys.parse(rw.format('ro'));
    const enc = FolderKeys.parse(rw.format('enc'));
    const data = Buffer.from('file record bytes');
    const signature = rw.sign(data);
    assert.equal(signature.length, 64);
    assert.equal(rw.canSign, true);
    for (const keys of [rw, ro, enc]) {
      assert.equal(keys.verify(data, signature), true);
      assert.equal(keys.verify(Buffer.from('file record bytez'), signature), false);
      assert.equal(keys.verify(data, signature.subarray(1)), false);
      const flipped = Buffer.from(signature);
      flipped[5]! ^= 1;
      assert.equal(keys.verify(data, flipped), false);
      // Fresh keys of the same level, so nothing is remembered: the pool really verifies.
      const fresh = FolderKeys.parse(keys.format(keys.access));
      assert.equal(await fresh.verifyAsync(Buffer.from('file record bytez'), signature), false);
      assert.equal(await fresh.verifyAsync(data, flipped), false);
      assert.equal(await fresh.verifyAsync(data, signature.subarray(1)), false);
      assert.equal(await fresh.verifyAsync(data, signature), true);
    }
    for (const keys of [ro, enc]) {
      assert.equal(keys.canSign, false);
      assertCode(() => keys.sign(data), 'KEY_ACCESS');
    }
    assert.equal(FolderKeys.generate().verify(data, signature), false);
    assert.equal(await FolderKeys.generate().verifyAsync(data, signature), false);
  });

  test('remembered signatures: only the exact (data, signature) pairs made or verified before are taken without a check', () => {
    const rw = FolderKeys.generate();
    const ro = rw.weaken('ro');
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (bytes, at) => {
        const data = Buffer.from(bytes);
        const signature = rw.sign(data);
        assert.equal(ro.verify(data, signature), true); // now remembered by both
        assert.equal(ro.verify(data, signature), true);
        const otherData = Buffer.from(data);
        otherData[at % otherData.length]! ^= 0x40;
        const otherSignature = Buffer.from(signature);
        otherSignature[at % otherSignature.length]! ^= 0x40;
        for (const keys of [rw, ro]) {
          assert.equal(keys.verify(otherData, signature), false);
          assert.equal(keys.verify(data, otherSignature), false);
        }
      }),
      { numRuns: 200 },
    );
    // A signature by another folder's key is refused even for data this folder signed.
    const data = Buffer.from('record');
    rw.sign(data);
    assert.equal(rw.verify(data, FolderKeys.generate().sign(data)), false);
  });

  test('proof keys agree across the levels that hold them and differ between levels and folders', () => {
    const rw = FolderKeys.generate();
    const ro = rw.weaken('ro');
    const enc = rw.weaken('enc');
    assert.deepEqual(ro.proofKey('ro'), rw.proofKey('ro'));
    assert.deepEqual(enc.proofKey('enc'), rw.proofKey('enc'));
    assert.deepEqual(ro.proofKey('enc'), rw.proofKey('enc'));
    assert.notDeepEqual(rw.proofKey('ro'), rw.proofKey('enc'));
    assert.notDeepEqual(FolderKeys.generate().proofKey('enc'), rw.proofKey('enc'));
    assert.equal(rw.proofKey('ro').length, 32);
    assert.deepEqual(ro.contentKey(), rw.contentKey());
    assert.equal(rw.contentKey().length, 32);
    for (const material of [rw.proofKey('ro'), rw.proofKey('enc'), rw.contentKey()]) {
      assert.notDeepEqual(material, rw.readSecret);
      assert.notDeepEqual(material, rw.encSecret);
    }
  });
});
