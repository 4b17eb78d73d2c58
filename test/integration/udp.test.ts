// Two real daemons that speak only UDP (`--no-tcp`): µTP on the sync port carries TLS and the
// Ferry handshake, the folder syncs, and status shows the path and round-trip time.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';

type PeerStatus = { device: string; connected: boolean; path?: string; rttMs?: number };
type Status = StatusJson & { listen: string };

const sha = (buf: Buffer): string => createHash('sha256').update(buf).digest('hex');

describe('two daemons over UDP only', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;

  before(async () => {
    base = await tempDir('udp2');
    a = new DaemonProcess(join(base, 'home-a'), ['--no-tcp']);
    b = new DaemonProcess(join(base, 'home-b'), ['--no-tcp']);
    await Promise.all([a.ready(), b.ready()]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('a folder syncs both ways over µTP; status shows path udp and a round-trip time', async () => {
    const dirA = join(base, 'a');
    const dirB = join(base, 'b');
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    const big = randomBytes(24 * 1024 * 1024 + 5);
    await writeFile(join(dirA, 'big.bin'), big);
    await writeFile(join(dirA, 'hello.txt'), 'over udp\n');
    const shared = await ferry(['share', dirA, '--json', '--home', a.home]);
    assert.equal(shared.code, 0, shared.stderr);
    const { rw } = JSON.parse(shared.stdout) as { rw: string };
    assert.equal((await ferry(['join', rw, dirB, '--home', b.home])).code, 0);
    const { listen } = (await a.status()) as Status;
    const added = await ferry(['peers', 'add', listen, '--home', b.home]);
    assert.equal(added.code, 0, added.stderr);

    await waitFor(async () => (await readFile(join(dirB, 'hello.txt'), 'utf8').catch(() => '')) === 'over udp\n', 'hello.txt over UDP', 60_000);
    await waitFor(async () => {
      const got = await readFile(join(dirB, 'big.bin')).catch(() => null);
      return got !== null && got.length === big.length && sha(got) === sha(big);
    }, 'big.bin over UDP', 120_000);
    await writeFile(join(dirB, 'back.txt'), 'and back\n');
    await waitFor(async () => (await readFile(join(dirA, 'back.txt'), 'utf8').catch(() => '')) === 'and back\n', 'back.txt over UDP', 60_000);

    const statusB = (await b.status()) as Status;
    const peer = (statusB.folders[0]!.peers as PeerStatus[]).find((p) => p.connected);
    assert.ok(peer, JSON.stringify(statusB.folders[0]!.peers));
    assert.equal(peer.path, 'udp');
    assert.equal(typeof peer.rttMs, 'number');
    assert.match(a.log + b.log, /peer connected/);
  });
});
