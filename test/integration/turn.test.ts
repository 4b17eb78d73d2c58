// Two real daemons relayed by Debian's coturn on loopback (no root needed; the netlab test
// test/netlab/turn.test.ts does the same across symmetric NATs with a tracker): each allocates
// with `--turn`, B is given A's relayed address and dials it through its own allocation, the
// folder syncs, and both sides show path `turn 127.0.0.1`. UDP on the sync port is off, so only
// the relay can carry µTP. A wrong password is reported in status, and the daemon runs on; the
// password shows nowhere.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ControlClient } from '../../src/cli/client.js';
import type { SettingsReport } from '../../src/web/daemon-api.js';
import { Coturn } from '../helpers/coturn.js';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor, type StatusJson } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';

type TurnReport = { servers: Array<{ server: string; state: string; relayed: string | null; error: string | null }> };
type Status = StatusJson & { services: { turn?: TurnReport }; external?: Array<{ address: string; source: string }> };
type PeerStatus = { connected: boolean; path?: string; rttMs?: number };

const PORT = 34793;
const PASSWORD = 'pa55-not-to-be-seen';

describe("two daemons relayed by coturn on loopback", { skip: needs.command('turnserver', 'coturn') }, () => {
  const coturn = new Coturn({ ip: '127.0.0.1', port: PORT, minPort: 49410, maxPort: 49450, users: { alice: PASSWORD, bob: PASSWORD }, allowLoopback: true });
  let base: string;
  const daemons: DaemonProcess[] = [];

  before(async () => {
    await coturn.start();
    base = await tempDir('turn');
  });

  after(async () => {
    await Promise.allSettled(daemons.map((d) => d.stop()));
    await coturn.stop();
    await removeDir(base);
  });

  function daemon(name: string, args: string[]): DaemonProcess {
    const created = new DaemonProcess(join(base, `home-${name}`), args);
    daemons.push(created);
    return created;
  }

  const turn = (user: string, password = PASSWORD): string => `turn://${user}:${password}@127.0.0.1:${PORT}`;
  const status = async (of: DaemonProcess): Promise<Status> => (await of.status()) as Status;

  test('B dials A\'s relayed address through its own allocation; the folder syncs over `turn 127.0.0.1`', async () => {
    const a = daemon('a', ['--no-udp', '--turn', turn('alice')]);
    const b = daemon('b', ['--no-udp', '--turn', turn('bob')]);
    await Promise.all([a.ready(), b.ready()]);
    const dirA = join(base, 'a');
    const dirB = join(base, 'b');
    await mkdir(dirA, { recursive: true });
    await mkdir(dirB, { recursive: true });
    await writeFile(join(dirA, 'hello.txt'), 'through coturn\n');
    const shared = await ferry(['share', dirA, '--json', '--home', a.home]);
    assert.equal(shared.code, 0, shared.stderr);
    assert.equal((await ferry(['join', (JSON.parse(shared.stdout) as { rw: string }).rw, dirB, '--home', b.home])).code, 0);
    const relayA = await waitFor(async () => (await status(a)).services.turn?.servers[0]?.relayed ?? false, "A's allocation");
    await waitFor(async () => (await status(b)).services.turn?.servers[0]?.state === 'allocated', "B's allocation");
    const added = await ferry(['peers', 'add', relayA, '--home', b.home]);
    assert.equal(added.code, 0, added.stderr);
    await waitFor(async () => (await readFile(join(dirB, 'hello.txt'), 'utf8').catch(() => '')) === 'through coturn\n', 'hello.txt through the relay', 60_000);
    for (const side of [a, b]) {
      const peer = ((await status(side)).folders[0]!.peers as PeerStatus[]).find((p) => p.connected);
      assert.equal(peer?.path, 'turn 127.0.0.1', JSON.stringify((await status(side)).folders[0]!.peers));
      assert.equal(typeof peer?.rttMs, 'number');
    }
    const statusA = await status(a);
    assert.deepEqual(statusA.services.turn!.servers.map((s) => [s.server, s.state]), [[`127.0.0.1:${PORT}`, 'allocated']]);
    assert.ok(statusA.external?.some((e) => e.source === 'turn' && e.address === relayA), JSON.stringify(statusA.external));
    assert.ok(!JSON.stringify(statusA).includes(PASSWORD) && !a.log.includes(PASSWORD) && !b.log.includes(PASSWORD));
    const text = await ferry(['status', '--home', a.home]);
    assert.ok(text.stdout.includes(`turn 127.0.0.1:${PORT}  allocated, relayed at ${relayA}`), text.stdout);
    await Promise.all([a.stop(), b.stop()]);
  });

  test('a wrong password: status says the server refused the credentials, the daemon runs on, the password shows nowhere', async () => {
    const c = daemon('c', ['--turn', turn('alice', 'Wrong-Guess-42')]);
    await c.ready();
    const server = await waitFor(async () => {
      const found = (await status(c)).services.turn?.servers[0];
      return found?.state === 'failed' ? found : false;
    }, 'the allocation to fail');
    assert.match(server.error ?? '', /refused the credentials/);
    const text = JSON.stringify(await status(c));
    assert.ok(!text.includes('Wrong-Guess-42') && !c.log.includes('Wrong-Guess-42'));
    await c.stop();
  });

  test('turnServers saved through the settings API allocate at once; reports mask the password, and the mask sent back keeps it', async () => {
    const e = daemon('e', []);
    await e.ready();
    const api = new ControlClient(e.home);
    const saved = await api.call<SettingsReport>('PUT', '/settings', { turnServers: [turn('alice')] });
    assert.deepEqual(saved.running.turnServers, [`turn://alice:********@127.0.0.1:${PORT}`]);
    assert.ok(!JSON.stringify(saved).includes(PASSWORD));
    const allocated = async (): Promise<string> =>
      waitFor(async () => {
        const found = (await status(e)).services.turn?.servers[0];
        return found?.state === 'allocated' ? found.relayed! : false;
      }, 'the allocation from the saved setting');
    const first = await allocated();
    // The page sends the settings back as it got them: the masked password stays the stored one.
    const again = await api.call<SettingsReport>('PUT', '/settings', { turnServers: saved.settings.turnServers, uploadKBps: 100 });
    assert.deepEqual(again.settings.turnServers, [`turn://alice:********@127.0.0.1:${PORT}`]);
    assert.ok(await allocated(), first);
    assert.ok(!JSON.stringify(await api.call<SettingsReport>('GET', '/settings')).includes(PASSWORD) && !e.log.includes(PASSWORD));
    await e.stop();
  });

  test('a malformed --turn URL is a usage error that does not repeat the password', async () => {
    const result = await ferry(['run', '--home', join(base, 'home-d'), '--turn', 'turn://alice:Secret-99@']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /turn:\/\/USER:PASSWORD@HOST/);
    assert.ok(!result.stderr.includes('Secret-99'), result.stderr);
  });
});
