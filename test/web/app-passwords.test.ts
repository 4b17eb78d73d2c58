// App passwords: issued once, stored argon2id-hashed, checked, limited to a folder or read-only, and revoked at once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../src/errors.js';
import { AppPasswords, parseBasicAuth, type AppPasswordRecord } from '../../src/web/app-passwords.js';

function memoryStore(): { records: AppPasswordRecord[]; store: ConstructorParameters<typeof AppPasswords>[0] } {
  const state = { records: [] as AppPasswordRecord[] };
  return {
    get records() {
      return state.records;
    },
    store: {
      get: () => state.records,
      set: async (records) => {
        state.records = records;
      },
      folderId: (folder) => {
        if (folder === 'photos' || folder === 'ab'.repeat(20)) return 'ab'.repeat(20);
        throw new FerryError('FOLDER_UNKNOWN', `no shared folder '${folder}'`);
      },
    },
  };
}

test('an app password is shown once, stored only as an argon2id hash, and opens requests', async () => {
  const memory = memoryStore();
  const apps = new AppPasswords(memory.store);
  const issued = await apps.add('laptop');
  assert.equal(issued.user, 'laptop');
  assert.ok(issued.password.length >= 32);
  assert.equal(memory.records.length, 1);
  assert.match(memory.records[0]!.hash, /^\$argon2id\$/);
  assert.ok(!JSON.stringify(memory.records).includes(issued.password));
  assert.deepEqual(await apps.check('laptop', issued.password), { name: 'laptop', readOnly: false });
  assert.equal(await apps.check('laptop', 'wrong'), undefined);
  assert.equal(await apps.check('nobody', issued.password), undefined);
  const listed = apps.list();
  assert.equal(listed.length, 1);
  assert.equal(listed[0]!.name, 'laptop');
  assert.ok(!('hash' in listed[0]!));
});

test('a verified credential is not hashed again, and parallel requests share one check', async () => {
  const apps = new AppPasswords(memoryStore().store);
  const { password } = await apps.add('phone');
  const results = await Promise.all([1, 2, 3, 4].map(() => apps.check('phone', password)));
  assert.ok(results.every((r) => r?.name === 'phone'));
  assert.equal(apps.checks, 1);
  await apps.check('phone', password);
  assert.equal(apps.checks, 1);
  assert.ok(apps.knownGood('phone', password));
});

test('revoking ends a password at once, also one verified moments ago', async () => {
  const apps = new AppPasswords(memoryStore().store);
  const { password } = await apps.add('tablet');
  assert.ok(await apps.check('tablet', password));
  await apps.revoke('tablet');
  assert.equal(apps.knownGood('tablet', password), undefined);
  assert.equal(await apps.check('tablet', password), undefined);
  await assert.rejects(apps.revoke('tablet'), /no app password named/);
});

test('folder and read-only limits are kept; names and folders are checked', async () => {
  const apps = new AppPasswords(memoryStore().store);
  const { password } = await apps.add('frame', { folder: 'photos', readOnly: true });
  assert.deepEqual(await apps.check('frame', password), { name: 'frame', folder: 'ab'.repeat(20), readOnly: true });
  await assert.rejects(apps.add('frame'), /exists/);
  await assert.rejects(apps.add('bad name'), /letters, digits/);
  await assert.rejects(apps.add('../x'), /letters, digits/);
  await assert.rejects(apps.add('other', { folder: 'nope' }), /no shared folder/);
});

test('Basic credentials are read from the Authorization header, and nothing else', () => {
  const header = `Basic ${Buffer.from('laptop:pa:ss').toString('base64')}`;
  assert.deepEqual(parseBasicAuth(header), { user: 'laptop', password: 'pa:ss' });
  assert.equal(parseBasicAuth('Bearer abc'), undefined);
  assert.equal(parseBasicAuth(`Basic ${Buffer.from('nocolon').toString('base64')}`), undefined);
  assert.equal(parseBasicAuth(undefined), undefined);
});
