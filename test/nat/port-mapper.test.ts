// PortMapper with in-memory mapping clients: method order, renewal, re-mapping after a failed renewal, removal on close.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../../src/errors.js';
import { PortMapper } from '../../src/nat/port-mapper.js';
import type { MapRequest, Mapping, MappingClient, MappingMethod } from '../../src/nat/types.js';
import { waitFor } from '../helpers/daemon.js';

class FakeClient implements MappingClient {
  maps = 0;
  renewals = 0;
  unmapped: Mapping[] = [];
  failMap: Error | null = null;
  failRenew: Error | null = null;
  lifetimeS: number | null = null;
  /** When set, map() waits for this before answering. */
  gate: Promise<void> | null = null;

  constructor(readonly method: MappingMethod, private port = 40000) {}

  async map(request: MapRequest, signal?: AbortSignal): Promise<Mapping> {
    this.maps++;
    if (this.gate) await this.gate;
    if (this.failMap) throw this.failMap;
    if (signal?.aborted && !this.gate) throw new FerryError('ABORTED', 'aborted');
    return {
      method: this.method,
      protocol: request.protocol,
      internalPort: request.internalPort,
      internalClient: '192.168.1.2',
      externalAddress: '203.0.113.1',
      externalPort: this.port++,
      lifetimeS: this.lifetimeS ?? request.leaseS,
      gateway: 'fake',
    };
  }

  async renew(mapping: Mapping): Promise<Mapping> {
    this.renewals++;
    if (this.failRenew) throw this.failRenew;
    return { ...mapping };
  }

  async unmap(mapping: Mapping): Promise<void> {
    this.unmapped.push(mapping);
  }
}

const request = { protocol: 'TCP' as const, internalPort: 22100, description: 'test' };

test('the first method that works wins; the change is reported; close removes the mapping', async () => {
  const upnp = new FakeClient('upnp');
  const natpmp = new FakeClient('natpmp');
  upnp.failMap = new FerryError('TIMEOUT', 'no UPnP gateway answered');
  const changes: Array<[string | null, string]> = [];
  const mapper = new PortMapper({
    clients: [upnp, natpmp],
    request,
    onChange: (m, reason) => changes.push([m ? `${m.externalAddress}:${m.externalPort}` : null, reason]),
  });
  await mapper.open();
  await mapper.settled();
  assert.deepEqual(changes, [['203.0.113.1:40000', 'natpmp']]);
  const report = mapper.report();
  assert.equal(report.state, 'mapped');
  assert.equal(report.method, 'natpmp');
  assert.equal(report.external, '203.0.113.1:40000');
  assert.equal(report.lifetimeS, 3600);
  assert.ok(report.renewAt);
  await mapper.close();
  assert.equal(natpmp.unmapped.length, 1);
  assert.equal(upnp.unmapped.length, 0);
  assert.equal(mapper.report().state, 'closed');
});

test('nothing works: state failed with each method\'s reason, reported as no mapping, retried later', async () => {
  const upnp = new FakeClient('upnp');
  const natpmp = new FakeClient('natpmp');
  upnp.failMap = new FerryError('TIMEOUT', 'no UPnP gateway answered');
  natpmp.failMap = new FerryError('TIMEOUT', 'no IPv4 default gateway');
  const changes: Array<string | null> = [];
  const mapper = new PortMapper({ clients: [upnp, natpmp], request, retryMs: 50, onChange: (m) => changes.push(m?.method ?? null) });
  await mapper.open();
  await mapper.settled();
  const report = mapper.report();
  assert.equal(report.state, 'failed');
  assert.equal(report.external, null);
  assert.match(report.error!, /upnp: no UPnP gateway answered; natpmp: no IPv4 default gateway/);
  natpmp.failMap = null;
  await waitFor(async () => mapper.report().state === 'mapped', 'the retry to map');
  assert.deepEqual(changes, ['natpmp'], 'no mapping at the start is no change');
  await mapper.close();
});

test('a short lease is renewed before it ends; a failed renewal maps again', async () => {
  const upnp = new FakeClient('upnp');
  upnp.lifetimeS = 1;
  const mapper = new PortMapper({ clients: [upnp], request: { ...request, leaseS: 1 } });
  await mapper.open();
  await waitFor(async () => upnp.renewals >= 2, 'two renewals');
  assert.equal(upnp.maps, 1);
  upnp.failRenew = new FerryError('REQUEST_FAILED', 'router forgot us');
  await waitFor(async () => upnp.maps >= 2 && mapper.report().state === 'mapped', 'a fresh mapping');
  upnp.failRenew = null;
  assert.equal(mapper.report().external, '203.0.113.1:40001');
  await mapper.close();
  assert.deepEqual(upnp.unmapped.map((m) => m.externalPort), [40001]);
});

test('close during a pending map: the mapping that arrives late is removed too', async () => {
  const upnp = new FakeClient('upnp');
  let release!: () => void;
  upnp.gate = new Promise((r) => (release = r));
  const mapper = new PortMapper({ clients: [upnp], request });
  await mapper.open();
  await waitFor(async () => upnp.maps === 1, 'map to start');
  const closing = mapper.close();
  release();
  await closing;
  assert.equal(upnp.unmapped.length, 1);
  assert.equal(mapper.current(), null);
});
