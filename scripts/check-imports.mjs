// Checks that imports between src/ folders point one way, as the design's layering says:
// util, errors ← keys ← index ← scan, protocol ← sync, connections, discovery, nat ← relay, web ← daemon ← cli.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const LAYER = {
  'errors.ts': 0, 'version.ts': 0, util: 0, keys: 1, index: 2, scan: 3, protocol: 3, transport: 3,
  sync: 4, connections: 4, discovery: 4, nat: 4, relay: 5, web: 5, daemon: 6, cli: 7, 'main.ts': 8, 'main-sea.ts': 8,
};
const src = resolve('src');
const problems = [];

function concernOf(file) {
  return relative(src, file).split('/')[0];
}

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full);
    else if (name.endsWith('.ts')) check(full);
  }
}

function check(file) {
  const from = concernOf(file);
  const text = readFileSync(file, 'utf8');
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)) {
    const target = resolve(dirname(file), match[1]).replace(/\.js$/, '.ts');
    if (!target.startsWith(src)) continue;
    const to = concernOf(target);
    if (to === from) continue;
    if (!(from in LAYER) || !(to in LAYER)) {
      problems.push(`${relative('.', file)}: unknown concern '${!(from in LAYER) ? from : to}'`);
    } else if (LAYER[to] > LAYER[from] || (LAYER[to] === LAYER[from] && LAYER[to] !== 0)) {
      problems.push(`${relative('.', file)}: ${from} must not import ${to} (${match[1]})`);
    }
  }
}

walk(src);
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
