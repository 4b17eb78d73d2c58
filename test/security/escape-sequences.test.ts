// A key holder whose device name and close reason carry terminal escape sequences: `ferry status` prints none of them (issue 25, low).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { dialTls } from '../../src/connections/dial.js';
import { FolderKeys, loadOrCreateDeviceIdentity } from '../../src/keys/index.js';
import { establishPeer } from '../../src/protocol/index.js';
import { parseAddress } from '../../src/util/address.js';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { listenAddress } from './hostile-peer.js';

const ESC_NAME = 'evil\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202eexe.txt';
const ESC_REASON = 'bye\u001b[31mRED\u001b]8;;http://x\u0007link\r\u001b[K';
/** C0 and C1 controls (BEL, ESC, CSI, CR) and bidirectional overrides. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('escape sequences from a peer', () => {
  let base: string;
  let daemon: DaemonProcess;

  before(async () => {
    base = await tempDir('sec-escape');
    daemon = new DaemonProcess(join(base, 'home'));
    await daemon.ready();
  });

  after(async () => {
    await daemon.stop();
    await removeDir(base);
  });

  test("the peer's device name and close reason reach `ferry status` without control characters", async () => {
    const dir = join(base, 'folder');
    await mkdir(dir);
    const shared = await ferry(['share', dir, '--json', '--home', daemon.home]);
    assert.equal(shared.code, 0, shared.stderr);
    const keys = FolderKeys.parse((JSON.parse(shared.stdout) as { ro: string }).ro);
    const identity = await loadOrCreateDeviceIdentity(join(base, 'evil'), { name: ESC_NAME });
    const address = await listenAddress(daemon);
    const socket = await dialTls(parseAddress(address), { ...identity }, { timeoutMs: 10_000 });
    const { connection } = await establishPeer(socket, { role: 'client', identity, softwareVersion: 'x\u001b[1mbold', folders: [keys] });
    await waitFor(async () => /evil/.test((await ferry(['status', '--home', daemon.home])).stdout), 'the peer listed in status');
    const connected = (await ferry(['status', '--home', daemon.home])).stdout;
    await connection.close('BYE', ESC_REASON);
    const closed = await waitFor(async () => {
      const text = (await ferry(['status', '--home', daemon.home])).stdout;
      return /last close/.test(text) ? text : undefined;
    }, 'the close listed in status');
    for (const text of [connected, closed]) assert.doesNotMatch(text, CONTROL, JSON.stringify(text));
    assert.match(closed, /bye/);
    // The daemon's log shows them escaped too.
    assert.doesNotMatch(daemon.log.split('\n').filter((line) => /evil|bye/.test(line)).join('\n'), CONTROL);
  });
});
