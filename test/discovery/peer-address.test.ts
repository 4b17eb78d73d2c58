// Discovered address text: the same canonical form as the connection manager's, zones included.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPeerAddress, normalizePeerAddress, parsePeerAddress } from '../../src/discovery/peer-address.js';
import { normalizeAddress } from '../../src/connections/index.js';

test('a LAN announcement heard over IPv6 link-local keeps its zone, as the dialler expects it', () => {
  // What lan.ts builds from an IPv6 datagram's rinfo (Node gives `fe80::…%iface`).
  const heard = formatPeerAddress({ host: 'fe80::fc:ff:fe00:1%eth0', port: 22100 });
  assert.equal(heard, '[fe80::fc:ff:fe00:1%eth0]:22100');
  assert.deepEqual(parsePeerAddress(heard), { host: 'fe80::fc:ff:fe00:1%eth0', port: 22100 });
  for (const text of [heard, '[FE80::1%Wi-Fi]:5', '[::1]:5', 'NAS.local:22000', '10.0.0.1:1']) {
    assert.equal(normalizePeerAddress(text), normalizeAddress(text), text);
  }
});

test('zones off link-local and hostile zones are refused', () => {
  for (const bad of ['[2001:db8::1%eth0]:1', '[::1%lo]:1', '[fe80::1%]:1', '[fe80::1%a b]:1', '[fe80::1%a/b]:1', `[fe80::1%${'x'.repeat(16)}]:1`, 'x%y:1']) {
    assert.equal(parsePeerAddress(bad), null, bad);
  }
});
