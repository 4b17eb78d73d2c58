// Names that break case-insensitive or Windows-facing storage (issue 25 item 9): `.ferry` case
// variants, control characters and bidirectional overrides are never written nor indexed (and are
// reported); the per-folder "portable names" option keeps out what Windows/SMB cannot hold, and
// with it off a Linux device syncs every such name byte for byte.

import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { walk } from '../../src/scan/walker.js';
import { refusedName } from '../../src/util/names.js';
import { connect, makeDevice, newFolder, runCleanups, tempDir, until, type Cleanups } from '../sync/helpers.js';
import { answerNothing, rawPeer, record, sendRecords, signed } from '../sync/raw-peer.js';

const cleanups: Cleanups = [];
afterEach(() => runCleanups(cleanups));
after(() => runCleanups(cleanups));

/** Names Windows and SMB clients cannot hold (all fine on ext4). */
const WINDOWS_ONLY_BAD = ['CON', 'aux.txt', 'a:b.txt', 'q?.txt', 'dot.', 'space ', 'lpt1', 'x<y', 'say"hi"'];

describe('names (hostile peer, Windows-facing storage)', () => {
  test('the rule: .ferry case-folded, control characters, bidi overrides; portable names only when asked', () => {
    for (const path of ['.FERRY/archive/x', '.Ferry', '.fErRy/x', 'a\tb', 'dir/new\nline', 'evil\u202etxt.exe', 'x\u2066y', 'bell\u0007']) {
      assert.ok(refusedName(path) !== undefined, JSON.stringify(path));
    }
    for (const path of ['.ferry', 'sub/.FERRY', 'ok.txt', 'caf\u00e9', ...WINDOWS_ONLY_BAD]) {
      assert.equal(refusedName(path), undefined, JSON.stringify(path));
    }
    for (const path of WINDOWS_ONLY_BAD) assert.ok(refusedName(path, { portable: true }) !== undefined, JSON.stringify(path));
    for (const path of ['ok.txt', 'console.txt', 'com10', 'auxiliary', '.hidden', 'a.b.c']) {
      assert.equal(refusedName(path, { portable: true }), undefined, JSON.stringify(path));
    }
  });

  test('records named .FERRY/…, .Ferry, with control characters or a bidi override are not written, and are reported', async () => {
    const keys = newFolder();
    const victim = await makeDevice(cleanups, { name: 'victim', keys });
    const peer = await rawPeer(cleanups, victim, keys);
    answerNothing(peer);
    const bad = ['.FERRY', '.FERRY/evil.txt', '.Ferry', 'tab\there.txt', 'evil\u202etxt.exe'];
    const records = [...bad, 'fine.txt'].map((path, i) =>
      signed(keys, record(path, { sequence: i + 1, ...(path === '.FERRY' || path === '.Ferry' ? { type: 'dir', mode: 0o755 } : {}) })),
    );
    await sendRecords(peer, records);
    await until(async () => (await readdir(victim.root)).includes('fine.txt'));
    await until(() => bad.every((path) => victim.sync.failed.has(path)));
    assert.deepEqual((await readdir(victim.root)).filter((name) => name !== '.ferry'), ['fine.txt']);
  });

  test('the walker does not index such names on disk and reports them', async () => {
    const root = await tempDir(cleanups);
    await mkdir(join(root, '.Ferry'));
    await writeFile(join(root, '.Ferry/x.txt'), 'x');
    await writeFile(join(root, 'tab\there.txt'), 'x');
    await writeFile(join(root, 'ok.txt'), 'x');
    const refused: string[] = [];
    const seen: string[] = [];
    for await (const entry of walk(root, { onRefused: (path) => refused.push(path) })) seen.push(entry.path);
    assert.deepEqual(seen, ['ok.txt']);
    assert.deepEqual(refused.sort(), ['.Ferry', 'tab\there.txt']);
  });

  test('portable names: off syncs every name byte for byte; on keeps out and reports what Windows cannot hold', async () => {
    const keys = newFolder();
    const source = await makeDevice(cleanups, { name: 'source', keys });
    const plain = await makeDevice(cleanups, { name: 'plain', keys });
    const portable = await makeDevice(cleanups, { name: 'portable', keys, portableNames: true });
    for (const name of [...WINDOWS_ONLY_BAD, 'ok.txt']) await writeFile(join(source.root, name), `content of ${name}`);
    await source.scan();
    await connect(cleanups, source, plain);
    await connect(cleanups, source, portable);

    const expected = [...WINDOWS_ONLY_BAD, 'ok.txt'].sort();
    await until(async () => (await readdir(plain.root)).filter((n) => n !== '.ferry').sort().join('/') === expected.join('/'));
    await until(async () => (await readdir(portable.root)).includes('ok.txt'));
    await until(() => WINDOWS_ONLY_BAD.every((name) => portable.sync.failed.has(name)));
    assert.deepEqual((await readdir(portable.root)).filter((n) => n !== '.ferry'), ['ok.txt']);
    assert.match(portable.sync.failed.list().find((item) => item.path === 'a:b.txt')?.reason ?? '', /portable names/);
    assert.equal(plain.sync.failed.count, 0);
  });
});
