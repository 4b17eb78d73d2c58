// Real daemons through an encrypted (ENC) peer: A — ENC — B sync, nothing readable on the ENC disk, tampered ciphertext.

import assert from 'node:assert/strict';
import { lstat, mkdir, open, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';
import { describeTree } from '../helpers/tree.js';

async function share(daemon: DaemonProcess, dir: string): Promise<{ rw: string; ro: string; enc: string }> {
  const result = await ferry(['share', dir, '--json', '--home', daemon.home]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

async function join_(daemon: DaemonProcess, key: string, dir: string): Promise<void> {
  const result = await ferry(['join', key, dir, '--home', daemon.home]);
  assert.equal(result.code, 0, result.stderr);
}

async function connect(from: DaemonProcess, to: DaemonProcess): Promise<void> {
  const { listen } = (await to.status()) as StatusJson & { listen: string };
  const result = await ferry(['peers', 'add', listen, '--home', from.home]);
  assert.equal(result.code, 0, result.stderr);
}

/** Every file under `root` (following no links): path, and content (or link target). */
async function everything(root: string): Promise<{ path: string; content: Buffer }[]> {
  const out: { path: string; content: Buffer }[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      const info = await lstat(full);
      if (info.isSymbolicLink()) out.push({ path: full, content: Buffer.from(await readlink(full)) });
      else if (info.isDirectory()) {
        out.push({ path: full, content: Buffer.alloc(0) });
        await walk(full);
      } else if (info.isFile()) out.push({ path: full, content: await readFile(full) });
    }
  };
  await walk(root);
  return out;
}

const SECRET_TEXT = 'TOPSECRET-the-launch-code-is-0451';
const MARKER = 'ferrymarker-plaintext-';
/** Names and strings that must never appear on the ENC device. */
const KNOWN = ['TOPSECRET', 'launch-code', MARKER, 'secret-plans', 'hello-enc', 'link-secret', 'empty-secretdir', 'from-b-note', 'b-wrote-this'];

describe('an encrypted (ENC) peer between two devices', () => {
  let base: string;
  let a: DaemonProcess;
  let e: DaemonProcess;
  let b: DaemonProcess;
  let c: DaemonProcess | undefined;
  let dirA: string;
  let dirE: string;
  let dirB: string;
  let keys: { rw: string; ro: string; enc: string };

  const logs = (): string => [a, e, b, c].filter(Boolean).map((d) => d!.log.split('\n').slice(-25).join('\n')).join('\n---\n');

  async function converge(daemons: DaemonProcess[], dirs: string[], what: string): Promise<void> {
    let last = '';
    try {
      await waitFor(async () => {
        const trees = await Promise.all(dirs.map((d) => describeTree(d)));
        last = trees.map((t) => JSON.stringify(t)).join('\n');
        if (!trees.every((t) => JSON.stringify(t) === JSON.stringify(trees[0]))) return false;
        const statuses = await Promise.all(daemons.map((d) => d.status()));
        return statuses.every((s) => s.folders.every((f) => f.needFiles === 0 && f.state === 'idle'));
      }, what, 40_000);
    } catch (err) {
      throw new Error(`${(err as Error).message}\ntrees:\n${last}\n${logs()}`);
    }
  }

  /**
   * Waits until both are idle and the ENC device holds as many entries as `source`, and that is `files` when given
   * (a file just written may not be scanned yet: "as many as now" would hold at once). Resolves with the count.
   */
  async function encHolds(source: DaemonProcess, what: string, files?: number): Promise<number> {
    return waitFor(async () => {
      const [from, enc] = (await Promise.all([source.status(), e.status()])).map((s) => s.folders[0]!);
      const held = from!.state === 'idle' && enc!.state === 'idle' && enc!.needFiles === 0 && enc!.localFiles === from!.localFiles && enc!.localFiles > 0;
      return held && (files === undefined || from!.localFiles === files) ? from!.localFiles : false;
    }, what, 40_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
  }

  before(async () => {
    base = await tempDir('enc');
    a = new DaemonProcess(join(base, 'home-a'));
    e = new DaemonProcess(join(base, 'home-e'));
    await Promise.all([a.ready(), e.ready()]);
    dirA = join(base, 'a');
    dirE = join(base, 'e');
    dirB = join(base, 'b');
    await mkdir(join(dirA, 'secret-plans', 'empty-secretdir'), { recursive: true });
    await writeFile(join(dirA, 'secret-plans', 'hello-enc.txt'), `${SECRET_TEXT}\n`);
    // Many identical blocks: deduplicated as ciphertext too.
    await writeFile(join(dirA, 'secret-plans', 'big.bin'), Buffer.from(MARKER.repeat(200_000)));
    await writeFile(join(dirA, 'empty.txt'), '');
    await symlink('secret-plans/hello-enc.txt', join(dirA, 'link-secret'));
    keys = await share(a, dirA);
    await join_(e, keys.enc, dirE);
    await connect(a, e);
  });

  after(async () => {
    await Promise.all([a?.stop(), e?.stop(), b?.stop(), c?.stop()]);
    await removeDir(base);
  });

  test('A → ENC → B and back, A and B never running at the same time', async () => {
    const entriesOfA = await encHolds(a, 'the ENC device to take A\'s folder');
    const treeA = JSON.stringify(await describeTree(dirA));
    await a.stop();

    b = new DaemonProcess(join(base, 'home-b'));
    await b.ready();
    await join_(b, keys.rw, dirB);
    await connect(b, e);
    await waitFor(async () => JSON.stringify(await describeTree(dirB)) === treeA, 'B to get A\'s files from the ENC device', 40_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    assert.equal(await readFile(join(dirB, 'secret-plans', 'hello-enc.txt'), 'utf8'), `${SECRET_TEXT}\n`);
    assert.equal(await readlink(join(dirB, 'link-secret')), 'secret-plans/hello-enc.txt');

    await writeFile(join(dirB, 'from-b-note.txt'), 'b-wrote-this');
    await encHolds(b, 'the ENC device to take B\'s new file', entriesOfA + 1);
    await b.stop();

    // A comes back (the ENC device kept running): B's file reaches it through the ENC device.
    a = new DaemonProcess(join(base, 'home-a'));
    await a.ready();
    await waitFor(async () => (await readFile(join(dirA, 'from-b-note.txt'), 'utf8').catch(() => '')) === 'b-wrote-this', 'A to get B\'s file', 40_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${logs()}`);
      },
    );
    assert.equal(JSON.stringify(await describeTree(dirA)), JSON.stringify(await describeTree(dirB)));
  });

  test('on the ENC device no file name and no content of the folder appears', async () => {
    const files = [...(await everything(dirE)), ...(await everything(e.home))];
    assert.ok(files.length > 5, 'the ENC device holds the folder');
    for (const { path, content } of files) {
      for (const known of KNOWN) {
        assert.ok(!path.includes(known), `${path} names ${known}`);
        assert.ok(!content.includes(known), `${path} contains ${known}`);
      }
    }
    // The tree keeps its shape: a directory with two entries (hello, big) and an empty directory inside.
    const top = (await readdir(dirE)).filter((n) => n !== '.ferry');
    assert.equal(top.length, 4, top.join(' ')); // secret-plans/, empty.txt, link-secret, from-b-note.txt
    assert.ok(top.every((n) => /^[a-z2-7]+$/.test(n)), top.join(' '));
  });

  test('ciphertext tampered on the ENC device is not taken; the file comes from elsewhere', async () => {
    // Find the ciphertext of hello-enc.txt by its size (plaintext + 16-byte tag) and flip a byte.
    const size = Buffer.byteLength(`${SECRET_TEXT}\n`) + 16;
    const candidates: string[] = [];
    for (const { path } of await everything(dirE)) {
      if (!path.includes(`${join(dirE, '.ferry')}`) && (await lstat(path)).isFile() && (await stat(path)).size === size) candidates.push(path);
    }
    assert.equal(candidates.length, 1, candidates.join(' '));
    const handle = await open(candidates[0]!, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 5);
    byte[0] = byte[0]! ^ 0xff;
    await handle.write(byte, 0, 1, 5);
    await handle.close();

    // C (read-only) reaches only the ENC device first (A is down): everything arrives except the tampered file.
    await a.stop();
    c = new DaemonProcess(join(base, 'home-c'));
    await c.ready();
    const dirC = join(base, 'c');
    await join_(c, keys.ro, dirC);
    await connect(c, e);
    await waitFor(async () => {
      const tree = await describeTree(dirC);
      return tree['secret-plans/big.bin'] !== undefined && tree['from-b-note.txt'] !== undefined && /no connected peer could supply/.test(c!.log);
    }, 'C to sync all but the tampered file', 40_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    assert.equal((await describeTree(dirC))['secret-plans/hello-enc.txt'], undefined, 'the tampered block was not installed');

    // Another source appears: the file comes from it, intact.
    a = new DaemonProcess(join(base, 'home-a'));
    await a.ready();
    await connect(c, a);
    await converge([a, c], [dirA, dirC], 'C to fetch the tampered file from A');
    assert.equal(await readFile(join(dirC, 'secret-plans', 'hello-enc.txt'), 'utf8'), `${SECRET_TEXT}\n`);
  });
});
