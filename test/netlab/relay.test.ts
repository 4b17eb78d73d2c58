// Relaying through a public Ferry device (root only), in test/netlab/inet.sh's internet: two home
// routers with SYMMETRIC NATs (masquerade random,fully-random: no punch can work) and no port
// mapping, trackers and DHT off, and a public folder peer C holding only the ENC key of folder F1.
// A and B learn of each other from C's peer exchange, every direct dial fails, and A and B connect
// through C (path `relay via C`), TLS and handshake end to end; the relay is tried after the direct
// attempts' head start or as soon as they failed, not after a fixed 30 s wait: folder F2, which C does not have,
// syncs A → B over that link, and C counts the bytes. With `--no-relay` on C they never connect,
// and A's status says why.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join as joinPath } from 'node:path';
import { describe, test } from 'node:test';
import { waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { INET_SYNC_PORT, inetSuite, FerryNode, relayTrio, type StatusJson } from './discovery-lab.js';

const PREFIX = 'frelay';
const LAB_SETTINGS = {
  NETLAB_INET_HOSTS: '1', NETLAB_INET_R1_UPNP: '0', NETLAB_INET_R2_UPNP: '0', NETLAB_INET_R1_NAT: 'symmetric', NETLAB_INET_R2_NAT: 'symmetric',
};
const SYNC_PORT = INET_SYNC_PORT;

interface RelayJson {
  relay: boolean;
  relaying: number;
  relayedBytes: number;
  refusedBy?: Record<string, number>;
  devices: Array<{ device: string; connected: boolean; vias: string[]; lastError?: string; failures: number; trigger?: string; triggerAfterMs?: number }>;
}
type Status = Omit<StatusJson, 'folders' | 'device'> & {
  device: { id: string; name: string };
  services: StatusJson['services'] & { relay?: RelayJson };
  knownPeers?: Array<{ address: string; connected: boolean; lastError?: string }>;
  folders: Array<{ id: string; peers: Array<{ device: string; connected: boolean; path?: string; rttMs?: number }> }>;
};

describe('two devices behind symmetric NATs, relayed by a public folder peer', { skip: needs.netlab(['nft', 'nftables'], ['stund', 'stun-server']) }, () => {
  const suite = inetSuite(PREFIX, LAB_SETTINGS);

  const status = async (of: FerryNode): Promise<Status> => (await of.status()) as unknown as Status;
  const cAddress = (): string => `${suite.lab.NETLAB_INET_PUBLIC_ADDR}:${SYNC_PORT}`;
  const connectedToC = async (of: FerryNode): Promise<boolean> => (await status(of)).knownPeers?.some((k) => k.address === cAddress() && k.connected) ?? false;
  const link = async (of: FerryNode, folderId: string, device: string) =>
    (await status(of)).folders.find((f) => f.id === folderId)?.peers.find((p) => p.device === device && p.connected);

  /** The relay trio (discovery-lab.ts relayTrio), once A and B are connected to C. */
  async function trio(name: string, argsC: string[]) {
    const made = await relayTrio(suite, name, { argsC });
    await waitFor(async () => (await connectedToC(made.a)) && (await connectedToC(made.b)), 'A and B to connect to C', 60_000);
    return made;
  }

  test('A and B connect through C (path "relay via C"), and a folder C does not hold syncs A → B over the relayed link', async (t) => {
    const { a, b, c, dirs, f2, idA, idB } = await trio('on', []);
    const bothAtC = Date.now();
    const atB = await waitFor(async () => (await link(b, f2.folderId, idA)) ?? false, 'A and B to connect through C', 120_000);
    const connectMs = Date.now() - bothAtC;
    const cName = (await status(c)).device.name;
    assert.equal(atB.path, `relay via ${cName}`, JSON.stringify(atB));
    // One end may adopt the link a moment after the other: A's side is waited for too.
    const atA = await waitFor(async () => (await link(a, f2.folderId, idB)) ?? false, 'A to have the relayed link to B too');
    assert.equal(atA.path, `relay via ${cName}`, JSON.stringify(atA));
    assert.ok(atA.rttMs !== undefined && atA.rttMs >= 0, JSON.stringify(atA));
    const relayC = (await status(c)).services.relay!;
    assert.ok(relayC.relaying >= 1, JSON.stringify(relayC));
    // The end that opened the relayed stream says why it did then: the direct attempts' head start
    // ran out (the punches into symmetric NATs were still sending SYNs) or they had failed; with the
    // old rule it waited 30 s from hearing of the device (or for the 20 s TCP timeouts).
    const opened = (await Promise.all([[a, idB], [b, idA]].map(async ([of, other]) => (await status(of as FerryNode)).services.relay?.devices.find((d) => d.device === other && d.trigger))))
      .filter((d) => d !== undefined);
    assert.ok(opened.length >= 1, 'no end says why it relayed');
    for (const d of opened) {
      assert.ok(['head start', 'punch failed', 'direct dials failed'].includes(d.trigger!), JSON.stringify(d));
      assert.ok(d.triggerAfterMs! < 30_000, JSON.stringify(d));
    }
    assert.match(a.log + b.log, /reaching a device through a relay .*after="?(head start|punch failed)/);
    // F2 exists on A and B only: its content can reach B over the A–B link alone, which runs through C.
    const payload = randomBytes(2 * 1024 * 1024);
    const before = relayC.relayedBytes;
    const syncStart = Date.now();
    await writeFile(joinPath(dirs.a2, 'payload.bin'), payload);
    await waitFor(async () => (await readFile(joinPath(dirs.b2, 'payload.bin')).catch(() => Buffer.alloc(0))).equals(payload), 'payload.bin to sync A → B through the relay', 120_000);
    const syncMs = Date.now() - syncStart;
    const after = (await status(c)).services.relay!;
    assert.ok(after.relayedBytes - before >= payload.length, `C relayed ${after.relayedBytes - before} bytes for a ${payload.length}-byte file`);
    t.diagnostic(`A–B relayed link ${connectMs} ms after both were connected to C (relay tried ${opened.map((d) => `${d.triggerAfterMs} ms after hearing of the device: ${d.trigger}`).join('; ')}); 2 MiB synced in ${syncMs} ms; C relayed ${after.relayedBytes} bytes in all`);
    await Promise.all([a.stop(), b.stop(), c.stop()]);
  });

  test('with --no-relay on C, A and B never connect, and status says why', async () => {
    const { a, b, c, f1, idA, idB } = await trio('off', ['--no-relay']);
    const refused = await waitFor(
      async () => (await status(a)).services.relay?.devices.find((d) => d.device === idB && /RELAY_OFF/.test(d.lastError ?? '')) ?? false,
      "A's relay attempt through C to be refused",
      120_000,
    );
    assert.match(refused.lastError!, /relay refused: RELAY_OFF: this device does not relay/);
    assert.equal(refused.connected, false);
    const relayC = (await status(c)).services.relay!;
    assert.equal(relayC.relay, false);
    assert.ok((relayC.refusedBy?.RELAY_OFF ?? 0) >= 1, JSON.stringify(relayC));
    assert.equal(relayC.relayedBytes, 0);
    assert.equal(await link(a, f1.folderId, idB), undefined);
    assert.equal(await link(b, f1.folderId, idA), undefined);
    await Promise.all([a.stop(), b.stop(), c.stop()]);
  });
});
