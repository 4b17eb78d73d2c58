// TCP on IPv6 (issue 19): with the default listen host 0.0.0.0 a daemon accepts TCP on IPv6 as well
// (`::`, IPv6-only, the same port). Two real daemons with UDP off, one told the other's address as
// [::1]:PORT only, connect over TCP on IPv6 and sync; status and `ferry peers` show which.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';

type Status = StatusJson & { listen: string; listening?: { tcp: string[]; udp: string[] } };
type Peer = { device: string; address: string; path: string; ip: number; direction: string };

describe('TCP over IPv6 on the default listen host', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;

  before(async () => {
    base = await tempDir('tcp6');
    // Later flags win: 0.0.0.0 (the default host) instead of the helper's 127.0.0.1. Nothing is sent
    // anywhere but [::1]: no LAN, DHT, trackers, STUN or port mapping.
    a = new DaemonProcess(join(base, 'home-a'), ['--listen', '0.0.0.0:0', '--no-udp']);
    b = new DaemonProcess(join(base, 'home-b'), ['--listen', '0.0.0.0:0', '--no-udp']);
    await Promise.all([a.ready(), b.ready()]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await removeDir(base);
  });

  test('status lists [::]:PORT for TCP; a peer added as [::1]:PORT connects over IPv6 TCP and the folder syncs', async () => {
    const statusA = (await a.status()) as Status;
    const port = Number(/:(\d+)$/.exec(statusA.listen)![1]);
    assert.deepEqual(statusA.listening, { tcp: [`0.0.0.0:${port}`, `[::]:${port}`], udp: [] });

    const dirA = join(base, 'a');
    const dirB = join(base, 'b');
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    await writeFile(join(dirA, 'hello.txt'), 'over tcp6\n');
    const shared = await ferry(['share', dirA, '--json', '--home', a.home]);
    assert.equal(shared.code, 0, shared.stderr);
    const { rw } = JSON.parse(shared.stdout) as { rw: string };
    assert.equal((await ferry(['join', rw, dirB, '--home', b.home])).code, 0);
    const added = await ferry(['peers', 'add', `[::1]:${port}`, '--home', b.home]);
    assert.equal(added.code, 0, added.stderr);

    await waitFor(async () => (await readFile(join(dirB, 'hello.txt'), 'utf8').catch(() => '')) === 'over tcp6\n', 'hello.txt over IPv6 TCP', 60_000);
    await writeFile(join(dirB, 'back.txt'), 'and back\n');
    await waitFor(async () => (await readFile(join(dirA, 'back.txt'), 'utf8').catch(() => '')) === 'and back\n', 'back.txt over IPv6 TCP', 60_000);

    const listB = await ferry(['peers', 'list', '--json', '--home', b.home]);
    assert.equal(listB.code, 0, listB.stderr);
    const peersB = (JSON.parse(listB.stdout) as { connected: Peer[] }).connected;
    assert.equal(peersB.length, 1, listB.stdout);
    assert.equal(peersB[0]!.address, `[::1]:${port}`);
    assert.equal(peersB[0]!.path, 'tcp');
    assert.equal(peersB[0]!.ip, 6);
    const text = await ferry(['peers', 'list', '--home', a.home]);
    assert.match(text.stdout, /incoming, found by incoming, tcp over IPv6\)/);
    const statusText = await ferry(['status', '--home', a.home]);
    assert.match(statusText.stdout, new RegExp(`tcp 0\\.0\\.0\\.0:${port}, \\[::\\]:${port}; udp off`));
  });
});
