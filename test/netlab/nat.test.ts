// Port mapping against a real router: Debian's miniupnpd (UPnP IGD + NAT-PMP) in the lab's NAT topology (root only).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { needs } from '../helpers/needs.js';
import { hasForward, mapPort, NETLAB, natDown, natUp, NsDaemon, routerRules, type LabEnv, type NsProcess } from './nat-lab.js';

const execFileAsync = promisify(execFile);
const PREFIX = 'fnat';

interface MappingEvent {
  event: 'change';
  mapping: { method: string; externalAddress: string; externalPort: number; internalClient: string; internalPort: number } | null;
}

function mappingOf(p: NsProcess): MappingEvent['mapping'] | undefined {
  const changes = p.events().filter((e): e is MappingEvent & Record<string, unknown> => e.event === 'change');
  return changes.at(-1)?.mapping ?? undefined;
}

function waitMapped(p: NsProcess, what: string): Promise<NonNullable<MappingEvent['mapping']>> {
  return waitFor(async () => {
    if (!p.running) throw new Error(`${what} exited:\n${p.out}`);
    return mappingOf(p) ?? undefined;
  }, `${what} to map its port`);
}

function renewals(p: NsProcess): number {
  return p.out.split('\n').filter((l) => l.includes('port mapping renewed')).length;
}

/** What a TCP client on the remote host reads from EXTERNAL:PORT. */
async function greetingFrom(lab: LabEnv, port: number): Promise<string> {
  const { stdout } = await execFileAsync('ip', [
    'netns', 'exec', lab.NETLAB_NAT_REMOTE_NS!, process.execPath, `${NETLAB}/probes/tcp.js`, 'connect', lab.NETLAB_NAT_EXTERNAL_ADDR!, String(port), '--timeout', '5000',
  ]);
  return stdout;
}

const NO_LAB = needs.netlab(['ss', 'iproute2'], ['nft', 'nftables'], ['miniupnpd', 'miniupnpd-nftables'], ['stund', 'stun-server']);

describe('port mapping on miniupnpd', { skip: NO_LAB }, () => {
  let lab: LabEnv;
  const started: NsProcess[] = [];
  const start = <T extends NsProcess>(p: T): T => {
    started.push(p);
    return p;
  };

  before(() => {
    natDown(PREFIX); // a lab left by a killed run
    lab = natUp(PREFIX, 2);
  });

  after(async () => {
    await Promise.all(started.map((p) => p.stop('SIGKILL')));
    natDown(PREFIX);
  });

  test('UPnP and NAT-PMP each map a port the remote host reaches, renew a short lease, and remove it on close', async () => {
    const leaseS = 3;
    const upnp = start(mapPort(lab.NETLAB_NAT_HOME1_NS!, 'upnp', 4100, leaseS));
    const natpmp = start(mapPort(lab.NETLAB_NAT_HOME2_NS!, 'natpmp', 4200, leaseS));
    // A control mapping with the same lease that nobody renews: the router must drop it.
    await execFileAsync('ip', ['netns', 'exec', lab.NETLAB_NAT_HOME1_NS!, process.execPath, `${NETLAB}/probes/igd.js`, 'add', '42000', '4999', 'TCP', String(leaseS)]);

    const byUpnp = await waitMapped(upnp, 'UPnP mapper');
    const byNatpmp = await waitMapped(natpmp, 'NAT-PMP mapper');
    assert.deepEqual(
      { method: byUpnp.method, address: byUpnp.externalAddress, port: byUpnp.externalPort, client: byUpnp.internalClient },
      { method: 'upnp', address: lab.NETLAB_NAT_EXTERNAL_ADDR, port: 4100, client: lab.NETLAB_NAT_HOME1_ADDR },
    );
    assert.deepEqual(
      { method: byNatpmp.method, address: byNatpmp.externalAddress, port: byNatpmp.externalPort, client: byNatpmp.internalClient },
      { method: 'natpmp', address: lab.NETLAB_NAT_EXTERNAL_ADDR, port: 4200, client: lab.NETLAB_NAT_HOME2_ADDR },
    );
    assert.ok(await hasForward(lab, 4100, `${lab.NETLAB_NAT_HOME1_ADDR}:4100`), (await routerRules(lab)).join('\n'));
    assert.ok(await hasForward(lab, 4200, `${lab.NETLAB_NAT_HOME2_ADDR}:4200`), (await routerRules(lab)).join('\n'));
    assert.match(await greetingFrom(lab, 4100), /hello from/);
    assert.match(await greetingFrom(lab, 4200), /hello from/);

    // Past the lease several times over: the unrenewed control mapping is gone, ours stay.
    await waitFor(async () => renewals(upnp) >= 3 && renewals(natpmp) >= 3, 'three renewals each', 30_000);
    await waitFor(async () => !(await hasForward(lab, 42000, `${lab.NETLAB_NAT_HOME1_ADDR}:4999`)), 'the router to expire the control mapping', 30_000);
    assert.ok(await hasForward(lab, 4100, `${lab.NETLAB_NAT_HOME1_ADDR}:4100`), `UPnP mapping expired:\n${upnp.out}`);
    assert.ok(await hasForward(lab, 4200, `${lab.NETLAB_NAT_HOME2_ADDR}:4200`), `NAT-PMP mapping expired:\n${natpmp.out}`);

    await Promise.all([upnp.stop(), natpmp.stop()]);
    assert.match(upnp.out, /port mapping removed method=upnp/);
    assert.match(natpmp.out, /port mapping removed method=natpmp/);
    assert.deepEqual(await routerRules(lab), []);
  });

  test('UPnP: a port taken by another host → the next one', async () => {
    const first = start(mapPort(lab.NETLAB_NAT_HOME1_NS!, 'upnp', 4300, 60));
    assert.equal((await waitMapped(first, 'first mapper')).externalPort, 4300);
    const second = start(mapPort(lab.NETLAB_NAT_HOME2_NS!, 'upnp', 4300, 60));
    const mapping = await waitMapped(second, 'second mapper');
    assert.equal(mapping.externalPort, 4301, second.out);
    assert.ok(await hasForward(lab, 4301, `${lab.NETLAB_NAT_HOME2_ADDR}:4300`));
    assert.ok(await hasForward(lab, 4300, `${lab.NETLAB_NAT_HOME1_ADDR}:4300`));
    await Promise.all([first.stop(), second.stop()]);
    assert.deepEqual(await routerRules(lab), []);
  });

  test('a daemon on the remote host syncs with the daemon behind the router through the mapping', async () => {
    const base = await tempDir('natsync');
    try {
      const home = start(new NsDaemon(lab.NETLAB_NAT_HOME1_NS!, join(base, 'home-h'), '0.0.0.0:22100'));
      // The remote keeps port mapping on: no router answers there.
      const remote = start(new NsDaemon(lab.NETLAB_NAT_REMOTE_NS!, join(base, 'home-r'), '0.0.0.0:22100'));
      await Promise.all([home.ready(), remote.ready()]);
      const external = `${lab.NETLAB_NAT_EXTERNAL_ADDR}:22100`;

      const nat = await waitFor(async () => {
        const s = (await home.status()).services.nat;
        return s?.state === 'mapped' ? s : undefined;
      }, 'the home daemon to map its port');
      assert.equal(nat.reachable, external);
      assert.equal(nat.method, 'upnp');
      assert.ok(await hasForward(lab, 22100, `${lab.NETLAB_NAT_HOME1_ADDR}:22100`));
      const human = await ferry(['status', '--home', home.home]);
      assert.match(human.stdout, new RegExp(`external  ${external.replace(/\./g, '\\.')} \\(upnp\\)`));

      const remoteNat = await waitFor(async () => {
        const s = (await remote.status()).services.nat;
        return s?.state === 'failed' ? s : undefined;
      }, 'the remote daemon to give up on port mapping');
      assert.equal(remoteNat.reachable, 'no port mapping');
      assert.match((await ferry(['status', '--home', remote.home])).stdout, /external  no port mapping/);

      const dirH = join(base, 'h');
      const dirR = join(base, 'r');
      await mkdir(dirH);
      await mkdir(dirR);
      await writeFile(join(dirH, 'from-home.txt'), 'behind the router\n');
      const shared = await ferry(['share', dirH, '--json', '--home', home.home]);
      assert.equal(shared.code, 0, shared.stderr);
      const joined = await ferry(['join', (JSON.parse(shared.stdout) as { rw: string }).rw, dirR, '--home', remote.home]);
      assert.equal(joined.code, 0, joined.stderr);
      const added = await ferry(['peers', 'add', external, '--home', remote.home]);
      assert.equal(added.code, 0, added.stderr);

      await waitFor(async () => (await readFile(join(dirR, 'from-home.txt'), 'utf8').catch(() => '')) === 'behind the router\n', 'the file to reach the remote', 30_000);
      await writeFile(join(dirR, 'from-remote.txt'), 'from outside\n');
      await waitFor(async () => (await readFile(join(dirH, 'from-remote.txt'), 'utf8').catch(() => '')) === 'from outside\n', 'the file to reach home', 30_000);

      assert.equal(await home.stop(), 0, home.out);
      assert.match(home.out, /port mapping removed method=upnp/);
      assert.deepEqual(await routerRules(lab), []);
      assert.equal(await remote.stop(), 0, remote.out);
    } finally {
      await removeDir(base);
    }
  });
});

describe('port mapping on miniupnpd describing itself as IGD v1', { skip: NO_LAB }, () => {
  const prefix = 'fnat1';
  let lab: LabEnv;
  let mapper: NsProcess | null = null;

  before(() => {
    natDown(prefix);
    lab = natUp(prefix, 1, { NETLAB_IGD_V1: '1' });
  });

  after(async () => {
    await mapper?.stop('SIGKILL');
    natDown(prefix);
  });

  test('InternetGatewayDevice:1 with WANIPConnection:1 maps and unmaps', async () => {
    assert.equal(lab.NETLAB_NAT_IGD_VERSION, '1');
    mapper = mapPort(lab.NETLAB_NAT_HOME_NS!, 'upnp', 4400, 60);
    const mapping = await waitMapped(mapper, 'UPnP mapper');
    assert.equal(mapping.externalPort, 4400);
    assert.match(mapper.out, /service=urn:schemas-upnp-org:service:WANIPConnection:1/);
    assert.ok(await hasForward(lab, 4400, `${lab.NETLAB_NAT_HOME_ADDR}:4400`));
    await mapper.stop();
    assert.deepEqual(await routerRules(lab), []);
  });
});
