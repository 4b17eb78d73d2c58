// Peer address text: HOST:PORT parsing and canonical form.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isFerryError } from '../../src/errors.js';
import { normalizeAddress, parseAddress, socketAddress } from '../../src/connections/index.js';

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

  test('shows IPv4-mapped socket addresses as IPv4', () => {
    assert.equal(socketAddress('::ffff:10.0.0.2', 4000), '10.0.0.2:4000');
    assert.equal(socketAddress('::1', 4000), '[::1]:4000');
  });
});
