// Hostile peer without any key or TLS: idle TCP sockets, reopened as they close, must not keep a legitimate peer out (issue 25, item 5).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAddress } from '../../src/util/address.js';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { listenAddress } from './hostile-peer.js';

const IDLE_SOCKETS = 32;

/** Keeps `count` idle TCP sockets open to `address` from `localAddress`, reopening each as it closes, until stop(). */
function idleFlood(address: string, localAddress: string, count: number): { stop(): void; opened(): number } {
  const { host, port } = parseAddress(address);
  let stopped = false;
  let opened = 0;
  const sockets = new Set<net.Socket>();
  const open = (): void => {
    if (stopped) return;
    const socket = net.connect({ host, port, localAddress });
    opened++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
    socket.once('close', () => {
      sockets.delete(socket);
      // Reopened at once, as in the report (a tick later, so a refused connect cannot spin the loop).
      setImmediate(open);
    });
  };
  for (let i = 0; i < count; i++) open();
  return {
    stop() {
      stopped = true;
      for (const socket of sockets) socket.destroy();
    },
    opened: () => opened,
  };
}

async function connected(daemon: DaemonProcess): Promise<boolean> {
  const status = (await daemon.status()) as unknown as { knownPeers: Array<{ connected: boolean }> };
  return status.knownPeers.some((peer) => peer.connected);
}

/** Two daemons holding one folder; `b` has not been told `a`'s address yet. */
async function pair(base: string): Promise<{ a: DaemonProcess; b: DaemonProcess; address: string }> {
  const a = new DaemonProcess(join(base, 'home-a'));
  const b = new DaemonProcess(join(base, 'home-b'));
  await Promise.all([a.ready(), b.ready()]);
  await mkdir(join(base, 'a'));
  await mkdir(join(base, 'b'));
  const shared = await ferry(['share', join(base, 'a'), '--json', '--home', a.home]);
  assert.equal(shared.code, 0, shared.stderr);
  const joined = await ferry(['join', (JSON.parse(shared.stdout) as { rw: string }).rw, join(base, 'b'), '--home', b.home]);
  assert.equal(joined.code, 0, joined.stderr);
  return { a, b, address: await listenAddress(a) };
}

describe('idle sockets from a keyless visitor', () => {
  let base: string;
  const daemons: DaemonProcess[] = [];

  before(async () => {
    base = await tempDir('sec-slots');
  });

  after(async () => {
    await Promise.all(daemons.map((daemon) => daemon.stop()));
    await removeDir(base);
  });

  for (const [what, source] of [
    ['from another address', '127.0.0.2'],
    ["from the peer's own address", '127.0.0.1'],
  ] as const) {
    test(`32 idle TCP sockets ${what}, reopened as they close, do not keep the peer out`, async () => {
      const dir = join(base, source);
      await mkdir(dir);
      const { a, b, address } = await pair(dir);
      daemons.push(a, b);
      const flood = idleFlood(address, source, IDLE_SOCKETS);
      try {
        // The daemon's table of pending handshakes is full before the peer dials.
        await waitFor(async () => /dropped the oldest pending handshake|too many handshakes in progress/.test(a.log), 'the idle sockets to fill the table');
        const added = await ferry(['peers', 'add', address, '--home', b.home]);
        assert.equal(added.code, 0, added.stderr);
        await waitFor(() => connected(b), 'the peer connected while the idle sockets are held', 15_000);
        assert.match(a.log, /INFO  ferry\/conn: dropped the oldest pending handshake/);
      } finally {
        flood.stop();
        await Promise.all([a.stop(), b.stop()]);
      }
    });
  }
});
