// Schema version and migrations: a new index is stamped, older ones migrate, newer ones are refused untouched.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { open } from 'lmdb';
import { isFerryError } from '../../src/errors.js';
import type { Migration } from '../../src/index/schema.js';
import { IndexStore } from '../../src/index/store.js';
import { FOLDER_A, file, tempDir } from './helpers/store.js';

async function storedVersion(dir: string): Promise<unknown> {
  const env = open({ path: dir, maxDbs: 32 });
  try {
    return env.openDB({ name: 'meta', useRecords: false } as { name: string }).get('schemaVersion');
  } finally {
    await env.close();
  }
}

async function withStore<T>(options: ConstructorParameters<typeof IndexStore>[0], use: (s: IndexStore) => Promise<T> | T): Promise<T> {
  const store = new IndexStore(options);
  await store.open();
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

test('a new index is stamped with the current schema version', async (t) => {
  const dir = `${await tempDir(t)}/index`;
  await withStore({ path: dir }, () => undefined);
  assert.equal(IndexStore.SCHEMA_VERSION, 4);
  assert.equal(await storedVersion(dir), IndexStore.SCHEMA_VERSION);
});

test('an index from a newer Ferry is refused with INDEX_SCHEMA and left unchanged', async (t) => {
  const dir = `${await tempDir(t)}/index`;
  await withStore({ path: dir }, async (store) => {
    await store.putSetting('name', 'nas');
    await store.folder(FOLDER_A).putLocal([file('x')]);
  });
  const env = open({ path: dir, maxDbs: 32 });
  await env.openDB({ name: 'meta', useRecords: false } as { name: string }).put('schemaVersion', 99);
  await env.close();
  const before = await readFile(`${dir}/data.mdb`);

  const store = new IndexStore({ path: dir });
  await assert.rejects(store.open(), (err) => {
    assert.ok(isFerryError(err, 'INDEX_SCHEMA'));
    assert.match(err.message, /newer Ferry \(schema 99; this build reads up to 4\)/);
    return true;
  });
  await store.close();
  assert.deepEqual(await readFile(`${dir}/data.mdb`), before);
  assert.equal(await storedVersion(dir), 99);
});

test('registered migrations run in order, once, inside the open', async (t) => {
  const dir = `${await tempDir(t)}/index`;
  await withStore({ path: dir, schemaVersion: 1 }, async (store) => {
    await store.putSetting('greeting', 'hello');
  });
  const ran: string[] = [];
  const migrations: Migration[] = [
    {
      from: 2,
      to: 3,
      migrate(dbs) {
        ran.push('2→3');
        dbs.settings.putSync('greeting', `${dbs.settings.get('greeting') as string}!`);
      },
    },
    {
      from: 1,
      to: 2,
      migrate(dbs) {
        ran.push('1→2');
        dbs.settings.putSync('greeting', (dbs.settings.get('greeting') as string).toUpperCase());
      },
    },
  ];
  await withStore({ path: dir, schemaVersion: 3, migrations }, (store) => {
    assert.equal(store.getSetting('greeting'), 'HELLO!');
  });
  assert.deepEqual(ran, ['1→2', '2→3']);
  assert.equal(await storedVersion(dir), 3);
  await withStore({ path: dir, schemaVersion: 3, migrations }, () => undefined);
  assert.deepEqual(ran, ['1→2', '2→3'], 'an up-to-date index runs no migration');
});

test('a failing migration aborts its step, and a missing one is an INDEX_SCHEMA error', async (t) => {
  const dir = `${await tempDir(t)}/index`;
  await withStore({ path: dir, schemaVersion: 1 }, (store) => store.putSetting('keep', 1));
  const failing: Migration[] = [
    { from: 1, to: 2, migrate: (dbs) => void dbs.settings.putSync('keep', 2) },
    {
      from: 2,
      to: 3,
      migrate(dbs) {
        dbs.settings.putSync('keep', 3);
        throw new Error('disk on fire');
      },
    },
  ];
  const store = new IndexStore({ path: dir, schemaVersion: 3, migrations: failing });
  await assert.rejects(store.open(), (err) => isFerryError(err, 'INDEX_SCHEMA') && /2 → 3 failed: Error: disk on fire/.test(err.message));
  await store.close();
  assert.equal(await storedVersion(dir), 2, 'the step that worked is kept');
  await withStore({ path: dir, schemaVersion: 2, migrations: [] }, (s) => assert.equal(s.getSetting('keep'), 2));

  const missing = new IndexStore({ path: dir, schemaVersion: 4, migrations: [] });
  await assert.rejects(missing.open(), (err) => isFerryError(err, 'INDEX_SCHEMA') && /from schema 2 towards 4/.test(err.message));
  await missing.close();
});
