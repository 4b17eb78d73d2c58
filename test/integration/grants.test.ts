// Real daemons on loopback: invites that expire (connection closed at expiry, refused after), RW grantees, revocation relayed by a third peer.

import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';

interface Issued {
  id: string;
  folderId: string;
  level: string;
  expiresAtMs: number;
  device?: string;
  invite: string;
}

interface FullStatus {
  device: { id: string };
  listen: string;
  knownPeers: Array<{ address: string; connected: boolean; lastError?: string }>;
  folders: Array<{
    access: string;
    grant?: { id: string; expiresAtMs: number; status: string };
    peers: Array<{ device: string; connected: boolean }>;
  }>;
}

async function status(daemon: DaemonProcess): Promise<FullStatus> {
  return (await daemon.status()) as unknown as FullStatus;
}

async function run(daemon: DaemonProcess, args: string[]): Promise<string> {
  const result = await ferry([...args, '--home', daemon.home]);
  assert.equal(result.code, 0, `ferry ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function connect(from: DaemonProcess, to: DaemonProcess): Promise<string> {
  const { listen } = await status(to);
  await run(from, ['peers', 'add', listen]);
  return listen;
}

async function readOr(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

function connectedTo(s: FullStatus, device: string): boolean {
  return s.folders.some((f) => f.peers.some((p) => p.device === device && p.connected));
}

describe('grants between real daemons', () => {
  let base: string;
  const daemons: DaemonProcess[] = [];
  const start = async (name: string): Promise<DaemonProcess> => {
    const daemon = new DaemonProcess(join(base, `home-${name}`));
    daemons.push(daemon);
    await daemon.ready();
    return daemon;
  };

  before(async () => {
    base = await tempDir('grants');
  });
  after(async () => {
    if (process.env.FERRY_TEST_LOGS) for (const d of daemons) console.log(`--- ${d.home}\n${d.log}`);
    await Promise.all(daemons.map((d) => d.stop()));
    await removeDir(base);
  });

  test('an invite that expires: synced before, connection closed at expiry, refused after', async () => {
    const [a, c] = await Promise.all([start('exp-a'), start('exp-c')]);
    const dirA = join(base, 'exp-a');
    const dirC = join(base, 'exp-c');
    await mkdir(dirA, { recursive: true });
    await writeFile(join(dirA, 'hello.txt'), 'hello grantee\n');
    await run(a, ['share', dirA, '--json']);
    const cId = (await status(c)).device.id;
    const issued = JSON.parse(await run(a, ['grant', dirA, '--ro', '--expires', '45s', '--device', cId, '--json'])) as Issued;
    assert.equal(issued.level, 'ro');
    assert.equal(issued.device, cId);
    assert.match(issued.invite, /^G[A-Z2-7]+$/);

    assert.match(await run(c, ['join', issued.invite, dirC]), /\(ro\)/);
    const joined = (await status(c)).folders[0]!;
    assert.equal(joined.access, 'ro');
    assert.deepEqual({ id: joined.grant?.id, expiresAtMs: joined.grant?.expiresAtMs, status: joined.grant?.status }, {
      id: issued.id,
      expiresAtMs: issued.expiresAtMs,
      status: 'active',
    });
    // The grantee's keys: only the ENC key is printable (it holds neither S nor R).
    const keys = JSON.parse(await run(c, ['keys', dirC, '--json'])) as { rw?: string; ro?: string; enc: string };
    assert.equal(keys.rw, undefined);
    assert.equal(keys.ro, undefined);
    assert.match(keys.enc, /^E/);

    await connect(c, a);
    await waitFor(async () => (await readOr(join(dirC, 'hello.txt'))) === 'hello grantee\n', 'the grantee to receive the folder', 35_000);
    assert.ok(connectedTo(await status(a), cId), 'A is connected to the grantee before expiry');

    // At expiry A closes the connection itself (the log says why), and the grantee is refused from then on.
    await waitFor(async () => !connectedTo(await status(a), cId) && a.log.includes('closing a connection: its grant expired'), 'A to close the connection at expiry', 60_000);
    assert.ok(Date.now() >= issued.expiresAtMs, 'closed no earlier than the expiry');
    await waitFor(async () => (await status(c)).knownPeers.some((k) => /GRANT_EXPIRED|expired/.test(k.lastError ?? '')), 'the grantee to be refused after expiry', 40_000);
    assert.equal(connectedTo(await status(a), cId), false);

    const listed = JSON.parse(await run(a, ['grants', dirA, '--json'])) as { grants: Array<{ id: string; status: string }> };
    assert.deepEqual(listed.grants.map((g) => [g.id, g.status]), [[issued.id, 'expired']]);
    assert.equal((await status(c)).folders[0]!.grant?.status, 'expired');
  });

  test('an RW grantee syncs through a third peer; a revocation reaches that peer and every peer refuses the grant', async () => {
    const [a, b, c] = await Promise.all([start('rev-a'), start('rev-b'), start('rev-c')]);
    const dirA = join(base, 'rev-a');
    const dirB = join(base, 'rev-b');
    const dirC = join(base, 'rev-c');
    await mkdir(dirA, { recursive: true });
    await writeFile(join(dirA, 'from-a.txt'), 'written by A\n');
    const shared = JSON.parse(await run(a, ['share', dirA, '--json'])) as { rw: string; folderId: string };
    await run(b, ['join', shared.rw, dirB]);
    await connect(b, a);

    const cId = (await status(c)).device.id;
    const issued = JSON.parse(await run(a, ['grant', shared.folderId, '--rw', '--expires', '1h', '--device', cId, '--json'])) as Issued;
    await run(c, ['join', issued.invite, dirC]);
    // C is told only of B (A may learn of C by peer exchange).
    const bAddress = await connect(c, b);
    await waitFor(async () => (await readOr(join(dirC, 'from-a.txt'))) === 'written by A\n', 'the grantee to receive A\'s file through B');

    // The grantee's own change is signed under its grant, accepted by B, and reaches A through B.
    await writeFile(join(dirC, 'from-c.txt'), 'written by the grantee\n');
    await waitFor(async () => (await readOr(join(dirA, 'from-c.txt'))) === 'written by the grantee\n', 'A to receive the grantee\'s file through B');
    const onB = JSON.parse(await run(b, ['grants', dirB, '--json'])) as { grants: Array<{ id: string; status: string }> };
    assert.deepEqual(onB.grants.map((g) => [g.id, g.status]), [[issued.id, 'active']]);

    // A revokes; B hears it from A and is connected to the grantee no more, who is refused from then
    // on. Peer exchange may have introduced A and C meanwhile: then C, told by A, may close its
    // connection to B before B does, so what is checked is that B learned the revocation from A.
    const aId = (await status(a)).device.id;
    const learnedFromA = new RegExp(`learned grants from a peer .*device=${aId} grants=0 revocations=1`);
    assert.match(await run(a, ['revoke', issued.id]), /revoked/);
    await waitFor(async () => !connectedTo(await status(b), cId) && learnedFromA.test(b.log), 'B to learn the revocation from A and drop the grantee');
    await waitFor(async () => (await status(c)).knownPeers.some((k) => k.address === bAddress && /GRANT_REVOKED|revoked/.test(k.lastError ?? '')), 'B to refuse the grantee');
    const revokedOnB = JSON.parse(await run(b, ['grants', dirB, '--json'])) as { grants: Array<{ id: string; status: string }> };
    assert.deepEqual(revokedOnB.grants.map((g) => [g.id, g.status]), [[issued.id, 'revoked']]);

    // A refuses it too, should the grantee find A.
    const aAddress = await connect(c, a);
    await waitFor(async () => (await status(c)).knownPeers.some((k) => k.address === aAddress && /GRANT_REVOKED|revoked/.test(k.lastError ?? '')), 'A to refuse the grantee');
    assert.equal(connectedTo(await status(a), cId), false);
    assert.equal(connectedTo(await status(b), cId), false);

    // Only the folder's RW key revokes; an unknown ID is a clear error.
    const unknown = await ferry(['revoke', '0'.repeat(32), '--home', a.home]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no grant/);
  });
});
