// Real third-party DHT nodes for the DHT tests: Debian's python3-libtorrent, sessions with only the DHT
// on, all introduced to each other, inside a network namespace of the test's own whose addresses sit
// on its loopback only (documentation ranges: nothing leaves it).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { waitFor } from '../helpers/daemon.js';
import { PYTHON3 } from '../helpers/needs.js';

export const LIBTORRENT_DHT_PORT = 6881;

/** One libtorrent session per argument (its addresses, comma-separated) on the DHT port; prints `ready`, runs until killed. */
const SESSIONS = `
import sys, time, libtorrent as lt
port = ${LIBTORRENT_DHT_PORT}
groups = [arg.split(',') for arg in sys.argv[1:]]
endpoint = lambda ip: ('[' + ip + ']' if ':' in ip else ip) + ':' + str(port)
sessions = [lt.session({'listen_interfaces': ','.join(endpoint(ip) for ip in ips), 'enable_dht': True, 'enable_lsd': False,
                        'enable_upnp': False, 'enable_natpmp': False, 'dht_bootstrap_nodes': '', 'alert_mask': 0,
                        # Every node here shares one loopback and one /64, and a daemon without an address of its own
                        # sends from the address it sends to: the internet's per-IP and per-subnet limits (one node a
                        # /64 in a bucket; 5 packets/s an IP, else ignored for 5 minutes) would cut them off at random.
                        'dht_restrict_routing_ips': False, 'dht_restrict_search_ips': False, 'dht_block_ratelimit': 1000}) for ips in groups]
for s in sessions:
    for ips in groups:
        for ip in ips:
            s.add_dht_node((ip, port))
print('ready', flush=True)
while True:
    time.sleep(1)
`;

export class LibtorrentDht {
  private nodes: ChildProcess | undefined;

  constructor(readonly ns: string) {}

  /** Makes the namespace with `addresses` on its loopback, starts one session per entry of `sessions` (its addresses) and waits until they run. */
  async start(addresses: string[], sessions: string[][]): Promise<void> {
    spawnSync('ip', ['netns', 'del', this.ns]);
    const added = spawnSync('ip', ['netns', 'add', this.ns], { encoding: 'utf8' });
    if (added.status !== 0) throw new Error(`ip netns add ${this.ns}: ${added.stderr}`);
    this.ip('link', 'set', 'lo', 'up');
    for (const address of addresses) {
      if (address.includes(':')) this.ip('-6', 'addr', 'add', `${address}/128`, 'dev', 'lo', 'nodad');
      else this.ip('addr', 'add', `${address}/32`, 'dev', 'lo');
    }
    const nodes = spawn('ip', ['netns', 'exec', this.ns, PYTHON3, '-c', SESSIONS, ...sessions.map((ips) => ips.join(','))], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.nodes = nodes;
    let out = '';
    nodes.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    nodes.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(async () => {
      if (nodes.exitCode !== null) throw new Error(`libtorrent nodes exited: ${out}`);
      return out.includes('ready');
    }, 'libtorrent DHT nodes', 30_000);
  }

  /** Stops the sessions and deletes the namespace. */
  async close(): Promise<void> {
    const nodes = this.nodes;
    if (nodes && nodes.exitCode === null) {
      nodes.kill('SIGTERM');
      await new Promise((r) => nodes.once('close', r));
    }
    spawnSync('ip', ['netns', 'del', this.ns]);
  }

  private ip(...args: string[]): void {
    const result = spawnSync('ip', ['-n', this.ns, ...args], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`ip -n ${this.ns} ${args.join(' ')}: ${result.stderr}`);
  }
}
