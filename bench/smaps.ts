// Where a process's resident memory is, by kind of mapping, from /proc/PID/smaps (issue 29 item 4): glibc's main
// arena (`[heap]`), its other arenas (anonymous mappings aligned to 64 MiB), thread stacks (behind a guard page),
// V8's executable pages, every other anonymous mapping (V8's heap pages, malloc chunks above the mmap threshold,
// ArrayBuffers that large), and the file-backed pages (the node binary, shared libraries, LMDB's map).

import { readFile } from 'node:fs/promises';

/** KiB resident per kind of mapping. */
export type SmapsBreakdown = Record<string, number>;

interface Mapping {
  start: bigint;
  end: bigint;
  perm: string;
  name: string;
  rss: number;
  anon: number;
}

/** glibc's non-main arenas are heaps of HEAP_MAX_SIZE (64 MiB on 64-bit), aligned to it. */
const ARENA_ALIGN = 64n << 20n;

export function parseSmaps(text: string): Mapping[] {
  const maps: Mapping[] = [];
  let cur: Mapping | undefined;
  for (const line of text.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: BigInt('0x' + head[1]), end: BigInt('0x' + head[2]), perm: head[3], name: head[4].trim(), rss: 0, anon: 0 };
      maps.push(cur);
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (field && cur) {
      if (field[1] === 'Rss') cur.rss = Number(field[2]);
      else cur.anon = Number(field[2]);
    }
  }
  return maps;
}

export function classifySmaps(maps: Mapping[]): SmapsBreakdown {
  const out: SmapsBreakdown = {};
  const add = (kind: string, kib: number): void => {
    if (kib) out[kind] = (out[kind] ?? 0) + kib;
  };
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    if (m.name && !m.name.startsWith('[')) {
      const base = m.name.split('/').pop() ?? m.name;
      const kind = /^(node|libnode\.so.*|syncthing)$/.test(base) ? 'binary' : /\.so(\.|$)/.test(base) ? 'shared libs' : /\.mdb$/.test(base) ? 'lmdb map' : 'other files';
      add(`file ${kind}`, m.rss - m.anon);
      add('anon file-private (.data, relocations)', m.anon);
      continue;
    }
    if (m.name === '[heap]') add('anon malloc main arena [heap]', m.anon);
    else if (m.name === '[stack]') add('anon main thread stack', m.anon);
    else if (m.name) add(`anon ${m.name}`, m.anon);
    else {
      const prev = maps[i - 1];
      const size = m.end - m.start;
      const guarded = prev !== undefined && prev.end === m.start && prev.perm.startsWith('---') && prev.end - prev.start <= 65536n;
      if (m.start % ARENA_ALIGN === 0n && m.perm.startsWith('rw')) add('anon malloc arenas', m.anon);
      else if (guarded && size >= 1n << 20n && size <= 9n << 20n) add('anon thread stacks', m.anon);
      else if (m.perm.includes('x')) add('anon executable (JIT code)', m.anon);
      else add('anon other mappings (V8 heap pages, large malloc chunks)', m.anon);
    }
  }
  return out;
}

export async function smapsBreakdown(pid: number): Promise<SmapsBreakdown> {
  return classifySmaps(parseSmaps(await readFile(`/proc/${pid}/smaps`, 'utf8').catch(() => '')));
}

export function formatBreakdown(b: SmapsBreakdown): string {
  return Object.entries(b)
    .sort((x, y) => y[1] - x[1])
    .map(([kind, kib]) => `${kind} ${(kib / 1024).toFixed(1)}`)
    .join(', ');
}
