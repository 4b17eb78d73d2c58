// HandshakeSlots: when a source's slots are full, the item that got least far goes first.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HandshakeSlots } from '../../src/connections/handshake-slots.js';

test('a full source evicts a silent item before an older one that is talking, and a talking one before one past TLS', () => {
  const spoken = new Set<string>();
  const dropped: string[] = [];
  const slots = new HandshakeSlots<string>({ maxPerSource: 3, hasSpoken: (item) => spoken.has(item), onDrop: (item) => dropped.push(item) });
  try {
    slots.admit('peer', '10.0.0.1');
    spoken.add('peer');
    slots.admit('idle-1', '10.0.0.1');
    slots.admit('idle-2', '10.0.0.1');
    slots.admit('idle-3', '10.0.0.1');
    assert.deepEqual(dropped, ['idle-1'], 'the oldest silent item, not the older peer');
    spoken.add('idle-2');
    spoken.add('idle-3');
    slots.secured('idle-3');
    slots.admit('idle-4', '10.0.0.1');
    assert.deepEqual(dropped, ['idle-1', 'peer'], 'talking items by age; the one past TLS stays');
    assert.equal(slots.has('idle-3'), true);
  } finally {
    slots.clear();
  }
});
