// Three real daemons on loopback where two have no transport in common: A speaks TCP only
// (`--no-udp`), B UDP only (`--no-tcp`), C both. A and B learn of each other from C's peer
// exchange, every direct dial fails, and they connect through C (path `relay via C`), TLS and
// handshake end to end: a folder C does not hold syncs A → B over that link. No root needed (the
// netlab test test/netlab/relay.test.ts does the same behind symmetric NATs).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';

type PeerStatus = { device: string; connected: boolean; path?: string; rttMs?: number };
type Status = Omit<StatusJson, 'folders'> & {
  listen: string;
  folders: Array<{ id: string; peers: PeerStatus[] }>;
  services: { relay?: { relaying: number; relayedBytes: number } };
};

describe('two daemons with no transport in common, relayed by a third', () => {
  let base: string;
  let a: DaemonProcess;
  let b: DaemonProcess;
  let c: DaemonProcess;

  before(async () => {
    base = await tempDir('relay3');
    a = new DaemonProcess(join(base, 'home-a'), ['--no-udp']);
    b = new DaemonProcess(join(base, 'home-b'), ['--no-tcp']);
    c = new DaemonProcess(join(base, 'home-c'));
    await Promise.all([a.ready(), b.ready(), c.ready()]);
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    await removeDir(base);
  });

  test('A (TCP only) and B (UDP only) connect through C with path "relay via C", and a folder C lacks syncs A → B', async () => {
    const status = async (of: DaemonProcess): Promise<Status> => (await of.status()) as unknown as Status;
    const cli = async (of: DaemonProcess, args: string[]): Promise<string> => {
      const result = await ferry([...args, '--home', of.home]);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout;
    };
    const dirs = Object.fromEntries(['a1', 'a2', 'b1', 'b2', 'c1'].map((d) => [d, join(base, d)])) as Record<'a1' | 'a2' | 'b1' | 'b2' | 'c1', string>;
    for (const dir of Object.values(dirs)) await mkdir(dir, { recursive: true });
    const f1 = JSON.parse(await cli(a, ['share', dirs.a1, '--json'])) as { rw: string; enc: string; folderId: string };
    const f2 = JSON.parse(await cli(a, ['share', dirs.a2, '--json'])) as { rw: string; folderId: string };
    await cli(c, ['join', f1.enc, dirs.c1]);
    await cli(b, ['join', f1.rw, dirs.b1]);
    await cli(b, ['join', f2.rw, dirs.b2]);
    const statusC = await status(c);
    await cli(a, ['peers', 'add', statusC.listen]);
    await cli(b, ['peers', 'add', statusC.listen]);
    const [idA, idB] = await Promise.all([a, b].map(async (d) => (await status(d)).device.id));
    const link = async (of: DaemonProcess, device: string) => (await status(of)).folders.find((f) => f.id === f2.folderId)?.peers.find((p) => p.device === device && p.connected);

    const atB = await waitFor(async () => (await link(b, idA!)) ?? false, 'A and B to connect through C', 90_000);
    assert.equal(atB.path, `relay via ${statusC.device.name}`);
    // One end may adopt the link a moment after the other: A's side is waited for too.
    const atA = await waitFor(async () => (await link(a, idB!)) ?? false, 'A to have the link to B too');
    assert.equal(atA.path, `relay via ${statusC.device.name}`);
    const payload = randomBytes(1024 * 1024 + 3);
    await writeFile(join(dirs.a2, 'payload.bin'), payload);
    await waitFor(async () => (await readFile(join(dirs.b2, 'payload.bin')).catch(() => Buffer.alloc(0))).equals(payload), 'payload.bin to reach B', 60_000);
    const relay = (await status(c)).services.relay!;
    assert.ok(relay.relaying >= 1 && relay.relayedBytes >= payload.length, JSON.stringify(relay));
  });
});
