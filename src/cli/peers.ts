// `ferry peers add HOST:PORT`: an address to keep connected, so daemons meet without discovery.

import { parseHostPort } from '../daemon/settings.js';
import { parseCommand, type Output } from './args.js';
import { ControlClient } from './client.js';

export const PEERS_ADD_USAGE = 'ferry peers add HOST:PORT [--folder FOLDER] [--home DIR]';

export async function peersAdd(argv: string[], io: Output): Promise<number> {
  const { values, positionals, home } = parseCommand(argv, { folder: { type: 'string' } }, { min: 1, max: 1 }, PEERS_ADD_USAGE);
  parseHostPort(positionals[0]!, 'peer address');
  await new ControlClient(home).call('POST', '/peers', { address: positionals[0], folder: values.folder });
  io.out(`peer ${positionals[0]} added\n`);
  return 0;
}
