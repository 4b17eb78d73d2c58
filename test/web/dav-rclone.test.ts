// rclone (Debian package rclone) as a WebDAV client nobody here wrote: a tree copied up into a Ferry folder and down
// again, `rclone check --download` both ways (bytes compared), and the uploaded tree reaching a second Ferry device by
// sync, byte for byte.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DaemonProcess, removeDir, shareBetween, tempDir, waitFor } from '../helpers/daemon.js';
import { addAppPassword, webOf } from '../helpers/dav.js';
import { needs } from '../helpers/needs.js';
import { describeTree } from '../helpers/tree.js';

const NO_RCLONE = needs.command('rclone');
const SYNC_WAIT_MS = 90_000;

let root: string;
const daemons: DaemonProcess[] = [];

before(async () => {
  root = await tempDir('dav-rclone');
});

after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await removeDir(root);
});

function rclone(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('rclone', args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

async function makeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'photos', '2024 trip'), { recursive: true });
  await mkdir(join(dir, 'docs', 'deep', 'deeper'), { recursive: true });
  await mkdir(join(dir, 'empty-dir'), { recursive: true });
  await writeFile(join(dir, 'photos', '2024 trip', 'big.bin'), randomBytes(6 * 1024 * 1024 + 123));
  await writeFile(join(dir, 'photos', 'café – ü.txt'), 'unicode name\n');
  await writeFile(join(dir, 'docs', 'deep', 'deeper', 'note.md'), '# note\n');
  await writeFile(join(dir, 'docs', 'empty.txt'), '');
  for (let i = 0; i < 20; i++) await writeFile(join(dir, 'docs', `small-${i}.txt`), randomBytes(100 + i * 37));
}

test('rclone copies a tree up and down, rclone check agrees both ways, and the tree syncs to another device', { skip: NO_RCLONE, timeout: 300_000 }, async () => {
  const dirA = join(root, 'a');
  const dirB = join(root, 'b');
  const local = join(root, 'local');
  const back = join(root, 'back');
  await Promise.all([mkdir(dirA), mkdir(local), mkdir(back)]);
  await makeTree(local);
  const a = new DaemonProcess(join(root, 'home-a'));
  const b = new DaemonProcess(join(root, 'home-b'));
  daemons.push(a, b);
  await Promise.all([a.ready(), b.ready()]);
  const { folderId } = await shareBetween(a, dirA, b, dirB);
  const { user, password } = await addAppPassword(a, 'rclone');
  const obscured = await rclone(['obscure', password], {});
  assert.equal(obscured.code, 0, obscured.output);
  const env = {
    RCLONE_CONFIG: join(root, 'rclone.conf'),
    RCLONE_CONFIG_FERRY_TYPE: 'webdav',
    RCLONE_CONFIG_FERRY_URL: `http://${await webOf(a)}/dav/${folderId}`,
    RCLONE_CONFIG_FERRY_VENDOR: 'other',
    RCLONE_CONFIG_FERRY_USER: user,
    RCLONE_CONFIG_FERRY_PASS: obscured.output.trim(),
  };
  const step = async (...args: string[]): Promise<void> => {
    const result = await rclone([...args, '--low-level-retries', '3', '--retries', '1'], env);
    assert.equal(result.code, 0, `rclone ${args.join(' ')}:\n${result.output}`);
  };
  await step('copy', local, 'ferry:up', '--create-empty-src-dirs');
  await step('check', local, 'ferry:up', '--download');
  await step('copy', 'ferry:up', back, '--create-empty-src-dirs');
  await step('check', back, 'ferry:up', '--download');
  const expected = await describeTree(local);
  assert.deepEqual(await describeTree(join(dirA, 'up')), expected, 'the folder holds what was uploaded');
  assert.deepEqual(await describeTree(back), expected, 'the download is what was uploaded');

  // The upload is an ordinary local edit on A: it reaches B by sync, byte for byte.
  const expectedFiles = Object.values(expected).filter((e) => e.type === 'file').length;
  await waitFor(async () => {
    const tree = await describeTree(join(dirB, 'up')).catch(() => undefined);
    return tree !== undefined && Object.values(tree).filter((e) => e.type === 'file').length === expectedFiles && JSON.stringify(tree) === JSON.stringify(expected);
  }, 'the uploaded tree on the second device', SYNC_WAIT_MS);
  assert.deepEqual(await describeTree(join(dirB, 'up')), expected);
});
