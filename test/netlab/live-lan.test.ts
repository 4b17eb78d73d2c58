// Live settings on a real bridged LAN (netlab lan.sh, root only): LAN discovery switched off through the API
// closes the running daemon's LAN socket (no announcer left), and switched on again its neighbour hears it anew,
// with no restart.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join as joinPath } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/cli/client.js';
import { LAN_PORT } from '../../src/discovery/lan.js';
import type { SettingsReport } from '../../src/web/daemon-api.js';
import { removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { FerryNode, labDown, labUp, type LabEnv } from './discovery-lab.js';

const PREFIX = 'fdlivelan';

interface LanReport {
  enabled?: false;
  port?: number;
  devices?: Array<{ deviceId: string; address: string; lastSeenMs: number }>;
}

describe('live LAN setting', { skip: needs.netlab(['ss', 'iproute2']) }, () => {
  let lab: LabEnv;
  let base: string;
  const nodes: FerryNode[] = [];

  before(async () => {
    labDown('lan.sh', PREFIX); // a lab left by a killed run
    lab = labUp('lan.sh', PREFIX, ['2']);
    base = await tempDir('live-lan');
  });

  after(async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    labDown('lan.sh', PREFIX);
    await removeDir(base);
  });

  /** Whether something in the namespace listens on the LAN discovery port. */
  const lanSocketOpen = (ns: string): boolean =>
    execFileSync('ip', ['netns', 'exec', ns, 'ss', '-Hlun', `sport = :${LAN_PORT}`], { encoding: 'utf8' }).trim() !== '';

  const lanOf = async (node: FerryNode): Promise<LanReport> => (await node.status()).services.discovery.lan as LanReport;

  test('LAN discovery switched off and on again through the API stops and restarts the announcer', async () => {
    for (const i of [1, 2]) {
      nodes.push(new FerryNode(joinPath(base, `home-${i}`), {
        ns: lab[`NETLAB_LAN_H${i}_NS`]!,
        listen: `${lab[`NETLAB_LAN_H${i}_ADDR`]}:22100`,
        args: ['--no-dht', '--no-trackers'],
      }));
    }
    await Promise.all(nodes.map((node) => node.ready()));
    const [a, b] = nodes as [FerryNode, FerryNode];
    const nsA = lab.NETLAB_LAN_H1_NS!;
    const idA = (await a.status()).device.id;
    await waitFor(async () => (await lanOf(b)).devices?.some((d) => d.deviceId === idA), 'b to hear a on the LAN', 60_000);
    assert.equal(lanSocketOpen(nsA), true);

    const control = new ControlClient(a.home);
    const off = await control.call<SettingsReport>('PUT', '/settings', { lan: false });
    assert.deepEqual([off.running.lan, off.restartRequired], [false, false]);
    assert.deepEqual(await lanOf(a), { enabled: false });
    await waitFor(async () => !lanSocketOpen(nsA), 'the LAN socket of a to close');

    const onAtMs = Date.now();
    const on = await control.call<SettingsReport>('PUT', '/settings', { lan: true });
    assert.equal(on.running.lan, true);
    await waitFor(async () => lanSocketOpen(nsA), 'the LAN socket of a to open again');
    await waitFor(
      async () => (await lanOf(b)).devices?.some((d) => d.deviceId === idA && d.lastSeenMs >= onAtMs),
      'b to hear a again',
      60_000,
    );
  });
});
