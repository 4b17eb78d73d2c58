// Peer address text: HOST:PORT parsing and canonical form, zones on link-local IPv6.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { formatAddress, normalizeAddress, parseAddress, socketAddress } from '../../src/connections/index.js';

describe('peer addresses', () => {
  test('parses host names, IPv4 and bracketed IPv6', () => {
    assert.deepEqual(parseAddress('nas.local:22000'), { host: 'nas.local', port: 22000 });
    assert.deepEqual(parseAddress('192.168.1.20:1'), { host: '192.168.1.20', port: 1 });
    assert.deepEqual(parseAddress('[FE80::1]:65535'), { host: 'fe80::1', port: 65535 });
    assert.equal(normalizeAddress(' NAS.local:22000 '), 'nas.local:22000');
    assert.equal(normalizeAddress('[::1]:5'), '[::1]:5');
  });

  test('rejects malformed addresses with USAGE', () => {
    for (const bad of ['', 'host', 'host:', ':22', 'host:0', 'host:65536', 'fe80::1:22', '[nothex]:1', 'a b:1', 'host:22x']) {
      assert.throws(() => parseAddress(bad), (err) => isFerryError(err, 'USAGE'), bad);
    }
  });

  test('keeps the zone of a link-local IPv6 address, its case untouched', () => {
    assert.deepEqual(parseAddress('[FE80::1%eth0]:22100'), { host: 'fe80::1%eth0', port: 22100 });
    assert.deepEqual(parseAddress('[febf::1%Wi-Fi.2]:1'), { host: 'febf::1%Wi-Fi.2', port: 1 });
    assert.deepEqual(parseAddress('[fe80::1%3]:5'), { host: 'fe80::1%3', port: 5 });
    assert.equal(normalizeAddress(' [FE80::A%enp0s31f6]:22100 '), '[fe80::a%enp0s31f6]:22100');
    assert.equal(formatAddress({ host: 'fe80::1%eth0', port: 7 }), '[fe80::1%eth0]:7');
    assert.deepEqual(parseAddress(formatAddress({ host: 'fe80::1%eth0', port: 7 })), { host: 'fe80::1%eth0', port: 7 });
    assert.equal(socketAddress('fe80::1%eth0', 4000), '[fe80::1%eth0]:4000');
  });

  test('refuses zones off link-local and hostile zone strings', () => {
    const offLink = ['[::1%lo]:1', '[2001:db8::1%eth0]:1', '[fec0::1%eth0]:1', '[fe7f::1%eth0]:1', '[::ffff:10.0.0.1%eth0]:1', '[::%eth0]:1'];
    const hostile = [
      '[fe80::1%]:1', '[fe80::1%eth0%eth1]:1', '[fe80::1%eth 0]:1', '[fe80::1%../etc]:1', '[fe80::1%a/b]:1',
      '[fe80::1%-x]:1', '[fe80::1%.]:1', '[fe80::1%eth0\n]:1', '[fe80::1%\u0000]:1', '[fe80::1%é]:1',
      `[fe80::1%${'a'.repeat(16)}]:1`, '[fe80::1%eth0]]:1', 'fe80::1%eth0:1', 'host%eth0:1', '[fe80::1%eth0]:0',
    ];
    for (const bad of [...offLink, ...hostile]) {
      assert.throws(() => parseAddress(bad), (err) => isFerryError(err, 'USAGE'), bad);
    }
    assert.deepEqual(parseAddress(`[fe80::1%${'a'.repeat(15)}]:1`).host, `fe80::1%${'a'.repeat(15)}`);
  });

  test('shows IPv4-mapped socket addresses as IPv4', () => {
    assert.equal(socketAddress('::ffff:10.0.0.2', 4000), '10.0.0.2:4000');
    assert.equal(socketAddress('::1', 4000), '[::1]:4000');
  });
});
