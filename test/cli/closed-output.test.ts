// `ferry … | head -1`: a reader that closes the pipe early ends the CLI quietly (exit 0), never with an EPIPE stack trace.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { MAIN } from '../helpers/daemon.js';

test('output to a closed pipe: exit 0 and nothing on stderr', async () => {
  const child = spawn(process.execPath, [MAIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Closed before the CLI has even loaded: its first write finds no reader.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(stderr, '');
  assert.equal(code, 0);
});
