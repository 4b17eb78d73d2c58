// The per-folder address book: deduplicated, bounded, aged out, and it tells the dialler.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AddressBook } from '../../src/discovery/address-book.js';

function book(max = 3, ttlMs = 1000) {
  const added: string[] = [];
  const dropped: string[] = [];
  const b = new AddressBook({ maxPerFolder: max, ttlMs, onAdded: (a, s) => added.push(`${a} ${s}`), onDropped: (a) => dropped.push(a) });
  return { b, added, dropped };
}

test('an address is dialled once, however many folders and sources name it', () => {
  const { b, added, dropped } = book();
  assert.equal(b.add('f1', '10.0.0.1:22100', 'tracker', undefined, 1), true);
  assert.equal(b.add('f1', '10.0.0.1:22100', 'dht', undefined, 2), true);
  assert.equal(b.add('f2', '10.0.0.1:22100', 'pex', 'DEV', 3), true);
  assert.deepEqual(added, ['10.0.0.1:22100 tracker']);
  assert.deepEqual(b.entries('f1').map((e) => [e.source, e.lastSeenMs]), [['tracker', 2]]);
  b.removeFolder('f1');
  assert.deepEqual(dropped, []);
  b.removeFolder('f2');
  assert.deepEqual(dropped, ['10.0.0.1:22100']);
});

test('malformed addresses are refused; IPv6 is canonical', () => {
  const { b } = book();
  assert.equal(b.add('f', 'nonsense', 'pex'), false);
  assert.equal(b.add('f', '1.2.3.4:0', 'pex'), false);
  assert.equal(b.add('f', '[FE80::1]:5', 'pex'), true);
  assert.deepEqual(b.entries('f').map((e) => e.address), ['[fe80::1]:5']);
});

test('a full book evicts the least recently seen; old entries age out unless kept', () => {
  const { b, dropped } = book(3, 1000);
  for (let i = 1; i <= 3; i++) b.add('f', `10.0.0.${i}:1`, 'tracker', undefined, i);
  b.add('f', '10.0.0.1:1', 'tracker', undefined, 10);
  b.add('f', '10.0.0.4:1', 'tracker', undefined, 11);
  assert.deepEqual(dropped, ['10.0.0.2:1']);
  assert.equal(b.size, 3);
  for (let i = 0; i < 1000; i++) b.add('f', `10.1.${i >> 8}.${i & 255}:1`, 'dht', undefined, 100 + i);
  assert.equal(b.size, 3);
  b.learnDevice('10.1.3.231:1', 'KEEP');
  b.prune(5000, (e) => e.deviceId === 'KEEP');
  assert.deepEqual(b.entries('f').map((e) => e.address), ['10.1.3.231:1']);
});
