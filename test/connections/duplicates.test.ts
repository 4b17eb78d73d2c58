// The one-connection-per-pair rule: both ends of two links to each other keep the same one.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { prefersCandidate, type LinkFacts } from '../../src/connections/index.js';

const deviceId = fc.stringMatching(/^[A-Z2-7]{52}$/);

/** A link as each end sees it: the dialler sees 'out', the other 'in'; each end numbers links in its own order. */
interface Wire {
  dialler: 'x' | 'y';
  orderAtX: number;
  orderAtY: number;
}

function viewFrom(side: 'x' | 'y', wire: Wire): LinkFacts {
  return { direction: wire.dialler === side ? 'out' : 'in', order: side === 'x' ? wire.orderAtX : wire.orderAtY };
}

describe('prefersCandidate', () => {
  test('both ends keep the same link when they dialled each other (any arrival order)', () => {
    fc.assert(
      fc.property(deviceId, deviceId, fc.nat(), fc.nat(), fc.nat(), fc.nat(), (x, y, ox1, ox2, oy1, oy2) => {
        fc.pre(x !== y);
        const first: Wire = { dialler: 'x', orderAtX: ox1, orderAtY: oy1 };
        const second: Wire = { dialler: 'y', orderAtX: ox2, orderAtY: oy2 };
        const other = (wire: Wire): Wire => (wire === first ? second : first);
        const keptAt = (side: 'x' | 'y', existing: Wire): Wire => {
          const [local, remote] = side === 'x' ? [x, y] : [y, x];
          return prefersCandidate(local, remote, viewFrom(side, existing), viewFrom(side, other(existing))) ? other(existing) : existing;
        };
        // Each end may have finished the two handshakes in either order.
        for (const existingAtX of [first, second]) {
          for (const existingAtY of [first, second]) {
            const kept = keptAt('x', existingAtX);
            assert.equal(keptAt('y', existingAtY), kept);
            // The kept one was dialled by the smaller device ID.
            assert.equal(kept.dialler === 'x' ? x : y, x < y ? x : y);
          }
        }
      }),
    );
  });

  test('with the same direction the newer link wins', () => {
    fc.assert(
      fc.property(deviceId, deviceId, fc.constantFrom('in' as const, 'out' as const), fc.nat(), fc.nat(), (x, y, direction, a, b) => {
        fc.pre(x !== y && a !== b);
        assert.equal(prefersCandidate(x, y, { direction, order: a }, { direction, order: b }), b > a);
      }),
    );
  });

  test('a direct link replaces a relayed one and is never replaced by one, whatever the directions and order', () => {
    fc.assert(
      fc.property(deviceId, deviceId, fc.constantFrom('in' as const, 'out' as const), fc.constantFrom('in' as const, 'out' as const), fc.nat(), fc.nat(), (x, y, d1, d2, a, b) => {
        fc.pre(x !== y);
        assert.equal(prefersCandidate(x, y, { direction: d1, order: a, relayed: true }, { direction: d2, order: b }), true);
        assert.equal(prefersCandidate(x, y, { direction: d1, order: a }, { direction: d2, order: b, relayed: true }), false);
      }),
    );
  });
});
