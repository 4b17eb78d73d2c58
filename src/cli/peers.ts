// `ferry peers add|list|remove`: addresses to keep connected, so daemons meet without discovery, and the devices connected now.

import { parseHostPort } from '../util/address.js';
import { printable } from '../util/format.js';
import type { AddedPeerReport, PeerInfo } from '../web/daemon-api.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';

export const PEERS_ADD_USAGE = 'ferry peers add HOST:PORT [--folder FOLDER] [--home DIR]';
export const PEERS_LIST_USAGE = 'ferry peers list [--json] [--home DIR]';
export const PEERS_REMOVE_USAGE = 'ferry peers remove HOST:PORT|DEVICE [--home DIR]';

export async function peersAdd(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { folder: { type: 'string' } }, { min: 1, max: 1 }, PEERS_ADD_USAGE);
  parseHostPort(positionals[0]!, 'peer address');
  await new ControlClient(home).call('POST', '/peers', { address: positionals[0], folder: values.folder });
  io.out(`peer ${positionals[0]} added\n`);
  return 0;
}

interface PeersAnswer {
  peers: PeerInfo[];
  added?: AddedPeerReport[];
}

/** The added addresses with their state, then the devices connected now (found by any means). */
export async function peersList(argv: string[], io: Output): Promise<number> {
  const { values, home } = parseCommand(argv, { json: { type: 'boolean' } }, { min: 0, max: 0 }, PEERS_LIST_USAGE);
  const { peers, added = [] } = await new ControlClient(home).call<PeersAnswer>('GET', '/peers');
  if (values.json) {
    io.out(JSON.stringify({ added, connected: peers }) + '\n');
    return 0;
  }
  if (added.length === 0) io.out('no addresses added (ferry peers add HOST:PORT)\n');
  else io.out('added addresses:\n');
  for (const peer of added) {
    const state = peer.connected ? 'connected' : peer.lastError ? `not connected (${printable(peer.lastError)})` : 'not connected yet';
    io.out(`  ${peer.address}  ${state}${peer.deviceId ? `  device ${peer.deviceId}` : ''}\n`);
  }
  if (peers.length === 0) io.out('no device connected\n');
  else io.out('connected devices:\n');
  for (const peer of peers) {
    io.out(`  ${printable(peer.name) || '(no name)'}  ${peer.device}  ${peer.address} (${peer.direction === 'out' ? 'dialled' : 'incoming'}, found by ${peer.source}, ${peer.path} over IPv${peer.ip ?? 4})` +
      `  ${peer.folders.length} ${peer.folders.length === 1 ? 'folder' : 'folders'}\n`);
  }
  return 0;
}

export async function peersRemove(argv: string[], io: Output): Promise<number> {
  const { positionals, home } = parseCommand(argv, {}, { min: 1, max: 1 }, PEERS_REMOVE_USAGE);
  const { removed } = await new ControlClient(home).call<{ removed: string[] }>('DELETE', `/peers/${encodeURIComponent(positionals[0]!)}`);
  io.out(`removed ${removed.join(', ')}: ${removed.length === 1 ? 'it is' : 'they are'} no longer dialled (a link up now stays until it closes)\n`);
  return 0;
}
