// The WebDAV share on a real daemon: app passwords by HTTP Basic, reads and writes as local edits (overwritten and
// deleted files in the archive), read-only and one-folder passwords, ENC folders refused, and hostile requests
// (traversal in every spelling, symlinks out, .ferry, Destination elsewhere, XML bombs, huge bodies, other clients'
// lock tokens) refused with 4xx and nothing written outside the folder.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import { ControlClient } from '../../src/cli/client.js';
import type { StatusReport } from '../../src/web/daemon-api.js';
import { DaemonProcess, ferry, removeDir, tempDir, waitFor } from '../helpers/daemon.js';
import { addAppPassword, davRequest, webOf, type DavTarget } from '../helpers/dav.js';

let root: string;
let daemon: DaemonProcess;
let dir: string;
let otherDir: string;
let outside: string;
let folderId: string;
let otherId: string;
let rw: DavTarget;
let web: string;

async function share(path: string): Promise<{ folderId: string; rw: string; enc: string }> {
  const result = await ferry(['share', path, '--json', '--home', daemon.home]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as { folderId: string; rw: string; enc: string };
}

async function localFiles(id: string): Promise<number> {
  const status = await new ControlClient(daemon.home).call<StatusReport>('GET', '/status');
  return status.folders.find((f) => f.id === id)?.localFiles ?? -1;
}

async function archived(folder: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string, rel: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await walk(join(at, entry.name), `${rel}${entry.name}/`);
      else out.push(`${rel}${entry.name}`);
    }
  };
  await walk(join(folder, '.ferry', 'archive'), '');
  return out;
}

before(async () => {
  root = await tempDir('dav');
  dir = join(root, 'photos');
  otherDir = join(root, 'music');
  outside = join(root, 'outside');
  await Promise.all([mkdir(dir), mkdir(otherDir), mkdir(outside)]);
  await writeFile(join(dir, 'hello.txt'), 'hello, world\n');
  await symlink(outside, join(dir, 'link-out'));
  daemon = new DaemonProcess(join(root, 'home'));
  await daemon.ready();
  folderId = (await share(dir)).folderId;
  otherId = (await share(otherDir)).folderId;
  web = await webOf(daemon);
  rw = { web, ...(await addAppPassword(daemon, 'laptop')) };
});

after(async () => {
  await daemon?.stop();
  await removeDir(root);
});

describe('WebDAV share', { timeout: 120_000 }, () => {
  test('needs an app password by HTTP Basic; a wrong one is refused; a revoked one stops working', async () => {
    const none = await davRequest(rw, 'PROPFIND', `/dav/${folderId}/`, { auth: false, headers: { Depth: '0' } });
    assert.equal(none.status, 401);
    assert.match(String(none.headers['www-authenticate']), /^Basic realm="Ferry WebDAV"/);
    const wrong = await davRequest(rw, 'PROPFIND', `/dav/${folderId}/`, { auth: { user: 'laptop', password: 'nope' }, headers: { Depth: '0' } });
    assert.equal(wrong.status, 401);
    const temp = await addAppPassword(daemon, 'temp');
    const ok = await davRequest({ web, ...temp }, 'PROPFIND', `/dav/${folderId}/`, { headers: { Depth: '0' } });
    assert.equal(ok.status, 207);
    const listed = await ferry(['app-passwords', 'list', '--json', '--home', daemon.home]);
    assert.deepEqual((JSON.parse(listed.stdout) as Array<{ name: string }>).map((p) => p.name).sort(), ['laptop', 'temp']);
    assert.ok(!listed.stdout.includes(temp.password) && !listed.stdout.includes('argon2'));
    const revoked = await ferry(['app-passwords', 'revoke', 'temp', '--home', daemon.home]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const after = await davRequest({ web, ...temp }, 'PROPFIND', `/dav/${folderId}/`, { headers: { Depth: '0' } });
    assert.equal(after.status, 401);
    // The admin page's API is not opened by an app password.
    const api = await davRequest(rw, 'GET', '/api/status');
    assert.equal(api.status, 401);
  });

  test('PUT, GET with ranges, PROPFIND, overwrite and DELETE are local edits; replaced and deleted files go to the archive', async () => {
    const before = await localFiles(folderId);
    const put = await davRequest(rw, 'PUT', `/dav/${folderId}/docs%20new/a%C3%A9.txt`, { body: '0123456789' });
    assert.equal(put.status, 409, 'no parent collection yet');
    assert.equal((await davRequest(rw, 'MKCOL', `/dav/${folderId}/docs%20new/`)).status, 201);
    assert.equal((await davRequest(rw, 'PUT', `/dav/${folderId}/docs%20new/a%C3%A9.txt`, { body: '0123456789' })).status, 201);
    assert.equal(await readFile(join(dir, 'docs new', 'aé.txt'), 'utf8'), '0123456789');
    await waitFor(async () => (await localFiles(folderId)) === before + 1, 'the new file to be indexed');

    const range = await davRequest(rw, 'GET', `/dav/${folderId}/docs%20new/a%C3%A9.txt`, { headers: { Range: 'bytes=2-5' } });
    assert.equal(range.status, 206);
    assert.equal(range.text, '2345');
    assert.equal(range.headers['content-range'], 'bytes 2-5/10');
    const etag = String(range.headers.etag);
    const tail = await davRequest(rw, 'GET', `/dav/${folderId}/docs%20new/a%C3%A9.txt`, { headers: { Range: 'bytes=-3' } });
    assert.equal(tail.text, '789');
    assert.equal((await davRequest(rw, 'GET', `/dav/${folderId}/docs%20new/a%C3%A9.txt`, { headers: { Range: 'bytes=50-' } })).status, 416);

    const listing = await davRequest(rw, 'PROPFIND', `/dav/${folderId}/`, { headers: { Depth: '1' } });
    assert.equal(listing.status, 207);
    assert.match(listing.text, /<D:href>\/dav\/[0-9a-f]{40}\/docs%20new\/<\/D:href>/);
    assert.match(listing.text, /hello\.txt/);
    assert.ok(!listing.text.includes('.ferry<') && !listing.text.includes('.ferry/'), 'Ferry\'s own directory is not listed');
    assert.ok(!listing.text.includes('link-out'), 'symlinks are not listed');

    // Overwrite only if the ETag still matches; the old version is archived.
    const stale = await davRequest(rw, 'PUT', `/dav/${folderId}/docs%20new/a%C3%A9.txt`, { body: 'x', headers: { 'If-Match': '"nope"' } });
    assert.equal(stale.status, 412);
    const over = await davRequest(rw, 'PUT', `/dav/${folderId}/docs%20new/a%C3%A9.txt`, { body: 'replaced', headers: { 'If-Match': etag } });
    assert.equal(over.status, 204);
    assert.equal(await readFile(join(dir, 'docs new', 'aé.txt'), 'utf8'), 'replaced');
    assert.ok((await archived(dir)).some((p) => p.startsWith('docs new/aé.txt~')), 'the replaced version is in the archive');

    assert.equal((await davRequest(rw, 'DELETE', `/dav/${folderId}/docs%20new/`)).status, 204);
    assert.deepEqual((await readdir(dir)).sort(), ['.ferry', 'hello.txt', 'link-out']);
    assert.equal((await archived(dir)).filter((p) => p.startsWith('docs new/aé.txt~')).length, 2, 'both versions are kept');
    await waitFor(async () => (await localFiles(folderId)) === before, 'the deletion to be indexed');
    // The folder name works as an alias of its ID.
    assert.equal((await davRequest(rw, 'GET', '/dav/photos/hello.txt')).text, 'hello, world\n');
  });

  test('read-only and one-folder app passwords are held to their limits; RO holders and ENC folders too', async () => {
    const ro = { web, ...(await addAppPassword(daemon, 'viewer', '--read-only')) };
    assert.equal((await davRequest(ro, 'GET', `/dav/${folderId}/hello.txt`)).status, 200);
    for (const [method, path, headers] of [
      ['PUT', `/dav/${folderId}/ro.txt`, {}],
      ['DELETE', `/dav/${folderId}/hello.txt`, {}],
      ['MKCOL', `/dav/${folderId}/ro/`, {}],
      ['MOVE', `/dav/${folderId}/hello.txt`, { Destination: `http://${web}/dav/${folderId}/moved.txt` }],
      ['PROPPATCH', `/dav/${folderId}/hello.txt`, {}],
      ['LOCK', `/dav/${folderId}/hello.txt`, {}],
    ] as const) {
      const answer = await davRequest(ro, method, path, { headers, body: method === 'PUT' ? 'x' : undefined });
      assert.equal(answer.status, 403, `${method} with a read-only app password`);
    }
    const one = { web, ...(await addAppPassword(daemon, 'music-only', '--folder', otherId)) };
    assert.equal((await davRequest(one, 'PROPFIND', `/dav/${otherId}/`, { headers: { Depth: '0' } })).status, 207);
    assert.equal((await davRequest(one, 'GET', `/dav/${folderId}/hello.txt`)).status, 403);
    const top = await davRequest(one, 'PROPFIND', '/dav/', { headers: { Depth: '1' } });
    assert.ok(top.text.includes(otherId) && !top.text.includes(folderId), 'the folder list shows only the folder it opens');
    assert.deepEqual(await readdir(dir).then((names) => names.sort()), ['.ferry', 'hello.txt', 'link-out']);

    // A folder this device holds by its ENC key only: refused with a clear message.
    const encHome = new DaemonProcess(join(root, 'home-enc'));
    await encHome.ready();
    const source = join(root, 'enc-src');
    await mkdir(source);
    const shared = await share(source);
    const encDir = join(root, 'enc-copy');
    const joined = await ferry(['join', shared.enc, encDir, '--home', encHome.home]);
    assert.equal(joined.code, 0, joined.stderr);
    const encApp = { web: await webOf(encHome), ...(await addAppPassword(encHome, 'any')) };
    const enc = await davRequest(encApp, 'PROPFIND', `/dav/${shared.folderId}/`, { headers: { Depth: '1' } });
    assert.equal(enc.status, 403);
    assert.match(enc.text, /encrypted/);
    await encHome.stop();
  });

  test('traversal in every spelling, symlinks out and .ferry are refused, and nothing is written outside', async () => {
    const hostile = [
      `/dav/${folderId}/../outside/x.txt`,
      `/dav/${folderId}/%2e%2e/outside/x.txt`,
      `/dav/${folderId}/%2E%2E%2Foutside%2Fx.txt`,
      `/dav/${folderId}/%252e%252e/outside/x.txt`,
      `/dav/${folderId}/..%5coutside%5cx.txt`,
      `/dav/${folderId}/..\\outside\\x.txt`,
      `/dav/${folderId}/%c0%ae%c0%ae/outside/x.txt`,
      `/dav/${folderId}/%e0%80%ae%e0%80%ae/outside/x.txt`,
      `/dav/${folderId}/x%00.txt`,
      `/dav/${folderId}/link-out/x.txt`,
      `/dav/${folderId}/link-out`,
      `/dav/${folderId}/.ferry/archive/x.txt`,
      `/dav/${folderId}/.ferry`,
      `/dav/${folderId}/sub/#frag`,
      `/dav/${folderId}//x.txt`,
      `/dav/..%2f${otherId}/x.txt`,
    ];
    for (const path of hostile) {
      for (const method of ['PUT', 'MKCOL', 'GET', 'DELETE', 'PROPFIND']) {
        const answer = await davRequest(rw, method, path, { body: method === 'PUT' ? 'pwned' : undefined, headers: { Depth: '0' } });
        assert.ok(answer.status >= 400 && answer.status < 500, `${method} ${path}: ${answer.status}`);
      }
    }
    assert.deepEqual(await readdir(outside), []);
    assert.deepEqual((await readdir(dir)).sort(), ['.ferry', 'hello.txt', 'link-out']);
    assert.deepEqual(await readdir(otherDir).then((n) => n.filter((x) => x !== '.ferry')), []);
  });

  test('Destination in another folder or on another host, and Depth: infinity, are refused', async () => {
    const to = async (destination: string, method = 'COPY'): Promise<number> =>
      (await davRequest(rw, method, `/dav/${folderId}/hello.txt`, { headers: { Destination: destination } })).status;
    assert.equal(await to(`http://${web}/dav/${otherId}/hello.txt`), 403);
    assert.equal(await to(`http://${web}/dav/${otherId}/hello.txt`, 'MOVE'), 403);
    assert.equal(await to(`http://evil.example:80/dav/${folderId}/copy.txt`), 403);
    for (const escape of ['../outside/x.txt', '%2e%2e/outside/x.txt', '..%2foutside%2fx.txt', '%252e%252e/x.txt', '..%5cx.txt']) {
      const status = await to(`http://${web}/dav/${folderId}/${escape}`);
      assert.ok(status === 400 || status === 403, `Destination …/${escape}: ${status}`);
    }
    assert.equal(await to(`http://${web}/dav/${folderId}/.ferry/x.txt`), 403);
    assert.equal(await to(`/dav/${folderId}/copy.txt`), 201, 'a relative Destination in the same folder works');
    assert.equal((await davRequest(rw, 'DELETE', `/dav/${folderId}/copy.txt`)).status, 204);
    assert.deepEqual(await readdir(outside), []);
    assert.deepEqual(await readdir(otherDir).then((n) => n.filter((x) => x !== '.ferry')), []);
    for (const depth of ['infinity', undefined]) {
      const answer = await davRequest(rw, 'PROPFIND', `/dav/${folderId}/`, { headers: depth ? { Depth: depth } : {} });
      assert.equal(answer.status, 403);
      assert.match(answer.text, /propfind-finite-depth/);
    }
  });

  test('XML bombs, external entities and huge bodies are refused before parsing', async () => {
    const bomb = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
      '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><D:propfind xmlns:D="DAV:"><D:prop><x>&lol3;</x></D:prop></D:propfind>';
    assert.equal((await davRequest(rw, 'PROPFIND', `/dav/${folderId}/`, { headers: { Depth: '0' }, body: bomb })).status, 400);
    const external = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>' +
      '<D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype><D:owner>&x;</D:owner></D:lockinfo>';
    const lock = await davRequest(rw, 'LOCK', `/dav/${folderId}/hello.txt`, { body: external });
    assert.equal(lock.status, 400);
    assert.ok(!lock.text.includes('root:'));
    const patch = `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="urn:x">&undefined;</x></D:prop></D:set></D:propertyupdate>`;
    assert.equal((await davRequest(rw, 'PROPPATCH', `/dav/${folderId}/hello.txt`, { body: patch })).status, 400);
    const huge = `<D:propfind xmlns:D="DAV:"><D:prop>${'<x/>'.repeat(300_000)}</D:prop></D:propfind>`;
    assert.equal((await davRequest(rw, 'PROPFIND', `/dav/${folderId}/`, { headers: { Depth: '0' }, body: huge })).status, 413);
  });

  test('an upload cut off midway leaves nothing: no file, no temp file', async () => {
    const [host, port] = [web.slice(0, web.lastIndexOf(':')), Number(web.slice(web.lastIndexOf(':') + 1))];
    const auth = `Basic ${Buffer.from(`${rw.user}:${rw.password}`).toString('base64')}`;
    const socket = connect(port, host);
    await once(socket, 'connect');
    socket.write(`PUT /dav/${folderId}/cut.bin HTTP/1.1\r\nHost: ${web}\r\nAuthorization: ${auth}\r\nContent-Length: ${1024 * 1024}\r\n\r\n`);
    socket.write(Buffer.alloc(256 * 1024, 7));
    // The temp file appears beside the target while the body streams in…
    await waitFor(async () => (await readdir(dir)).some((n) => n.startsWith('.ferry-tmp-dav-')), 'the upload\'s temp file');
    socket.destroy();
    // …and goes when the client does; the target never appears.
    await waitFor(async () => !(await readdir(dir)).some((n) => n.startsWith('.ferry-tmp-')), 'the temp file to be removed');
    assert.deepEqual((await readdir(dir)).sort(), ['.ferry', 'hello.txt', 'link-out']);
  });

  test('the page\'s session opens the share too, with its CSRF token on changes, never from another origin', async () => {
    const setup = await fetch(`http://${web}/api/auth/setup`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'admin password 1' }),
    });
    assert.equal(setup.status, 200);
    const cookie = String(setup.headers.get('set-cookie')).split(';')[0]!;
    const { csrf } = (await setup.json()) as { csrf: string };
    const session = { web, user: '', password: '' };
    const put = (headers: Record<string, string>): Promise<number> =>
      davRequest(session, 'PUT', `/dav/${folderId}/by-page.txt`, { auth: false, body: 'page\n', headers: { Cookie: cookie, ...headers } }).then((a) => a.status);
    assert.equal(await put({}), 403, 'no CSRF token');
    assert.equal(await put({ 'x-csrf-token': csrf, Origin: 'http://evil.example' }), 403, 'another origin');
    assert.equal(await put({ 'x-csrf-token': csrf }), 201);
    assert.equal((await davRequest(session, 'GET', `/dav/${folderId}/by-page.txt`, { auth: false, headers: { Cookie: cookie } })).text, 'page\n');
    const listing = await fetch(`http://${web}/api/files/${folderId}?path=`, { headers: { Cookie: cookie } });
    const page = (await listing.json()) as { entries: Array<{ name: string; dir: boolean }>; writable: boolean };
    assert.deepEqual(page.entries.map((e) => e.name), ['by-page.txt', 'hello.txt']);
    assert.equal(page.writable, true);
    assert.equal((await fetch(`http://${web}/api/files/${folderId}?path=..`, { headers: { Cookie: cookie } })).status, 400);
    assert.equal((await fetch(`http://${web}/api/files/${folderId}?path=.ferry`, { headers: { Cookie: cookie } })).status, 403);
    assert.equal((await davRequest(session, 'DELETE', `/dav/${folderId}/by-page.txt`, { auth: false, headers: { Cookie: cookie, 'x-csrf-token': csrf } })).status, 204);
  });

  test('a lock token taken by another app password opens nothing', async () => {
    const other = { web, ...(await addAppPassword(daemon, 'desktop')) };
    const info = '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>' +
      '<D:owner>laptop</D:owner></D:lockinfo>';
    const lock = await davRequest(rw, 'LOCK', `/dav/${folderId}/hello.txt`, { body: info, headers: { Timeout: 'Second-60' } });
    assert.equal(lock.status, 200);
    const token = /^<(.+)>$/.exec(String(lock.headers['lock-token']))![1]!;
    const stolen = await davRequest(other, 'PUT', `/dav/${folderId}/hello.txt`, { body: 'stolen', headers: { If: `(<${token}>)` } });
    assert.equal(stolen.status, 423);
    const without = await davRequest(other, 'DELETE', `/dav/${folderId}/hello.txt`);
    assert.equal(without.status, 423);
    assert.equal((await davRequest(other, 'UNLOCK', `/dav/${folderId}/hello.txt`, { headers: { 'Lock-Token': `<${token}>` } })).status, 403);
    assert.equal(await readFile(join(dir, 'hello.txt'), 'utf8'), 'hello, world\n');
    const own = await davRequest(rw, 'PUT', `/dav/${folderId}/hello.txt`, { body: 'mine\n', headers: { If: `(<${token}>)` } });
    assert.equal(own.status, 204);
    assert.equal((await davRequest(rw, 'UNLOCK', `/dav/${folderId}/hello.txt`, { headers: { 'Lock-Token': `<${token}>` } })).status, 204);
    assert.equal(await readFile(join(dir, 'hello.txt'), 'utf8'), 'mine\n');
  });
  test('dead properties outlive a restart, and follow a MOVE', async () => {
    const patch = '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:ferry:test"><D:set><D:prop>' +
      '<Z:colour xml:lang="en">teal &amp; <Z:b>bold</Z:b></Z:colour></D:prop></D:set></D:propertyupdate>';
    assert.equal((await davRequest(rw, 'PROPPATCH', `/dav/${folderId}/hello.txt`, { body: patch })).status, 207);
    assert.equal((await davRequest(rw, 'MOVE', `/dav/${folderId}/hello.txt`, { headers: { Destination: `/dav/${folderId}/renamed.txt` } })).status, 201);
    await daemon.stop();
    daemon = new DaemonProcess(daemon.home);
    await daemon.ready();
    web = await webOf(daemon);
    rw = { ...rw, web };
    const find = '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><Z:colour xmlns:Z="urn:ferry:test"/></D:prop></D:propfind>';
    const answer = await davRequest(rw, 'PROPFIND', `/dav/${folderId}/renamed.txt`, { headers: { Depth: '0' }, body: find });
    assert.equal(answer.status, 207);
    assert.match(answer.text, /colour[^>]*xml:lang="en"[^>]*>teal &amp; <[^>]*b[^>]*>bold</);
    assert.match(answer.text, /200 OK/);
    assert.equal((await davRequest(rw, 'MOVE', `/dav/${folderId}/renamed.txt`, { headers: { Destination: `/dav/${folderId}/hello.txt` } })).status, 201);
  });

  // Last: it leaves this address limited for a minute.
  test('wrong app passwords are limited like the login: 429 with Retry-After, while a verified client goes on', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      statuses.push((await davRequest(rw, 'PROPFIND', `/dav/${folderId}/`, { auth: { user: 'laptop', password: `guess-${i}` }, headers: { Depth: '0' } })).status);
    }
    assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.deepEqual(statuses.slice(5), [429, 429]);
    const limited = await davRequest(rw, 'PROPFIND', `/dav/${folderId}/`, { auth: { user: 'laptop', password: 'guess-again' }, headers: { Depth: '0' } });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers['retry-after']) > 0);
    // The client whose password was verified before is not locked out by someone guessing.
    assert.equal((await davRequest(rw, 'PROPFIND', `/dav/${folderId}/`, { headers: { Depth: '0' } })).status, 207);
  });
});
