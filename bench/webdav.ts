// `node build/bench/webdav.js`: one large file (BENCH_DAV_MIB, 1024) up and down over WebDAV on loopback with curl,
// against Ferry's share and nginx's dav module (Debian nginx, `dav_methods`) serving a directory on the same disk,
// and against cp; peak RSS of the server during each. Prints one JSON line per run and a table.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIB = Number(process.env.BENCH_DAV_MIB ?? 1024);
const MAIN = resolve(fileURLToPath(import.meta.url), '../../src/main.js');

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => ok(port));
    });
    server.on('error', fail);
  });
}

async function rssMiB(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    total += Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
  }
  return total;
}

/** Runs a command, sampling the servers' RSS every 50 ms; seconds taken and the peak RSS. */
async function timed(command: string, args: string[], pids: () => number[]): Promise<{ seconds: number; peakMiB: number }> {
  let peak = await rssMiB(pids());
  const sampler = setInterval(() => void rssMiB(pids()).then((r) => (peak = Math.max(peak, r))), 50);
  const started = process.hrtime.bigint();
  const code = await new Promise<number | null>((ok) => spawn(command, args, { stdio: 'inherit' }).on('close', ok));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  peak = Math.max(peak, await rssMiB(pids()));
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}`);
  return { seconds, peakMiB: peak };
}

function ferry(args: string[]): string {
  const result = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ferry ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function waitFor(probe: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !probe(); i++) await new Promise((r) => setTimeout(r, 100));
}

const root = join(tmpdir(), `ferry-bench-dav-${process.pid}`);
await mkdir(root, { recursive: true });
const children: ChildProcess[] = [];
try {
  const source = join(root, 'source.bin');
  const handle = await open(source, 'w');
  const chunk = randomBytes(1024 * 1024);
  for (let i = 0; i < MIB; i++) {
    chunk.writeUInt32LE(i, 0);
    await handle.write(chunk);
  }
  await handle.close();
  const rows: Array<{ target: string; direction: string; seconds: number; mibPerS: number; peakRssMiB: number }> = [];
  const add = (target: string, direction: string, run: { seconds: number; peakMiB: number }): void => {
    const row = { target, direction, seconds: +run.seconds.toFixed(2), mibPerS: +(MIB / run.seconds).toFixed(0), peakRssMiB: +run.peakMiB.toFixed(0) };
    rows.push(row);
    console.log(JSON.stringify(row));
  };

  // cp on the same disk: the floor.
  await mkdir(join(root, 'cp'));
  add('cp', 'up', await timed('cp', [source, join(root, 'cp', 'up.bin')], () => []));
  add('cp', 'down', await timed('cp', [join(root, 'cp', 'up.bin'), join(root, 'cp', 'down.bin')], () => []));

  // Ferry's share.
  const home = join(root, 'ferry-home');
  const share = join(root, 'ferry-share');
  await mkdir(share);
  const webPort = await freePort();
  const daemon = spawn(process.execPath, [MAIN, 'run', '--home', home, '--web', `127.0.0.1:${webPort}`, '--listen', '127.0.0.1:0', '--no-lan', '--no-nat',
    '--no-dht', '--no-trackers', '--no-stun'], { stdio: 'ignore' });
  children.push(daemon);
  await waitFor(() => spawnSync(process.execPath, [MAIN, 'status', '--home', home]).status === 0);
  const { folderId } = JSON.parse(ferry(['share', share, '--json', '--home', home])) as { folderId: string };
  const { user, password } = JSON.parse(ferry(['app-passwords', 'add', 'bench', '--json', '--home', home])) as { user: string; password: string };
  const url = `http://127.0.0.1:${webPort}/dav/${folderId}/big.bin`;
  const ferryPids = (): number[] => [daemon.pid!];
  add('ferry', 'up', await timed('curl', ['-sf', '-u', `${user}:${password}`, '-T', source, url], ferryPids));
  add('ferry', 'down', await timed('curl', ['-sf', '-u', `${user}:${password}`, '-o', join(root, 'ferry-down.bin'), url], ferryPids));

  // nginx's dav module on a directory of the same disk.
  const nginxRoot = join(root, 'nginx');
  await mkdir(join(nginxRoot, 'www'), { recursive: true });
  await mkdir(join(nginxRoot, 'tmp'));
  const nginxPort = await freePort();
  await writeFile(join(nginxRoot, 'nginx.conf'), `${process.getuid?.() === 0 ? "user root; " : ""}worker_processes 1; pid ${nginxRoot}/nginx.pid; error_log ${nginxRoot}/error.log;
events { worker_connections 64; }
http { access_log off; client_body_temp_path ${nginxRoot}/tmp; sendfile on;
  server { listen 127.0.0.1:${nginxPort}; root ${nginxRoot}/www; client_max_body_size 0;
    location / { dav_methods PUT DELETE MKCOL COPY MOVE; create_full_put_path on; } } }
`);
  const nginx = spawn('nginx', ['-c', join(nginxRoot, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  children.push(nginx);
  await waitFor(() => spawnSync('curl', ['-sf', '-o', '/dev/null', `http://127.0.0.1:${nginxPort}/`]).status !== 7);
  const nginxPids = (): number[] => {
    const listed = spawnSync('pgrep', ['-P', String(nginx.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
    return [nginx.pid!, ...listed];
  };
  const nginxUrl = `http://127.0.0.1:${nginxPort}/big.bin`;
  add('nginx dav', 'up', await timed('curl', ['-sf', '-T', source, nginxUrl], nginxPids));
  add('nginx dav', 'down', await timed('curl', ['-sf', '-o', join(root, 'nginx-down.bin'), nginxUrl], nginxPids));

  console.log(`\n${MIB} MiB on loopback (curl as the client)\n| target | direction | seconds | MiB/s | server peak RSS (MiB) |\n|---|---|---|---|---|`);
  for (const r of rows) console.log(`| ${r.target} | ${r.direction} | ${r.seconds} | ${r.mibPerS} | ${r.target === 'cp' ? '–' : r.peakRssMiB} |`);
} finally {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.on('close', r)))));
  await rm(root, { recursive: true, force: true });
}
