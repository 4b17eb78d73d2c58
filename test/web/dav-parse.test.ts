// WebDAV request parsing without a server: request paths (everything that could leave the folder is refused before
// the disk is touched), If headers (RFC 4918 §10.4), Timeout headers, and lock conflicts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpRefusal } from '../../src/web/http.js';
import { davSegments } from '../../src/web/dav/server.js';
import { LockTable, parseIfHeader, parseTimeout } from '../../src/web/dav/locks.js';
import { parseXmlBody } from '../../src/web/dav/xml.js';

test('request paths decode once, NFC, and refuse every way out of the folder', () => {
  assert.deepEqual(davSegments('/dav/abc/a%20b/c%CC%81.txt'), { segments: ['abc', 'a b', 'c\u0301'.normalize('NFC') + '.txt'], collection: false });
  assert.deepEqual(davSegments('/dav/abc/dir/'), { segments: ['abc', 'dir'], collection: true });
  assert.deepEqual(davSegments('/dav/'), { segments: [], collection: true });
  for (const bad of ['/dav/abc/../x', '/dav/abc/%2e%2e/x', '/dav/abc/..%2fx', '/dav/abc/a%5cb', '/dav/abc/a\\b', '/dav/abc/%252e%252e/x',
    '/dav/abc/%c0%ae%c0%ae/x', '/dav/abc/%e0%80%ae/x', '/dav/abc/a%00b', '/dav/abc//x', '/dav/abc/./x', '/dav/abc/%ff']) {
    assert.throws(() => davSegments(bad), (err: unknown) => err instanceof HttpRefusal && err.status === 400, bad);
  }
  assert.throws(() => davSegments('/davx/abc'), (err: unknown) => err instanceof HttpRefusal && err.status === 404);
});

test('If headers: untagged and tagged lists, Not, tokens and entity tags; malformed ones are refused', () => {
  assert.deepEqual(parseIfHeader('(<urn:uuid:1> ["e1"])'), [{ conditions: [{ not: false, token: 'urn:uuid:1' }, { not: false, etag: '"e1"' }] }]);
  assert.deepEqual(parseIfHeader('(Not <DAV:no-lock>) (<urn:uuid:2>)'), [
    { conditions: [{ not: true, token: 'DAV:no-lock' }] },
    { conditions: [{ not: false, token: 'urn:uuid:2' }] },
  ]);
  assert.deepEqual(parseIfHeader('<http://h/dav/f/a> (<urn:uuid:3>) <http://h/dav/f/b> (["x"])'), [
    { resource: 'http://h/dav/f/a', conditions: [{ not: false, token: 'urn:uuid:3' }] },
    { resource: 'http://h/dav/f/b', conditions: [{ not: false, etag: '"x"' }] },
  ]);
  for (const bad of ['', '()', '(<urn:x', '<http://h/a>', '(junk)', '(["x")']) assert.equal(parseIfHeader(bad), undefined, bad);
});

test('Timeout headers are capped at an hour; locks conflict as RFC 4918 says', () => {
  assert.equal(parseTimeout('Second-30'), 30);
  assert.equal(parseTimeout('Infinite, Second-4100000000'), 3600);
  assert.equal(parseTimeout('Second-99999999'), 3600);
  assert.equal(parseTimeout(undefined), 600);
  const locks = new LockTable();
  const base = { folderId: 'f', owner: '', user: 'a', timeoutS: 60 };
  const dir = locks.create({ ...base, root: 'dir', depth: 'infinity', scope: 'shared' })!;
  assert.ok(dir);
  assert.ok(locks.create({ ...base, root: 'dir/x', depth: '0', scope: 'shared' }), 'shared locks coexist');
  assert.equal(locks.create({ ...base, root: 'dir/y', depth: '0', scope: 'exclusive' }), undefined, 'an exclusive lock under a shared one conflicts');
  assert.equal(locks.create({ ...base, root: '', depth: 'infinity', scope: 'exclusive' }), undefined, 'a deep exclusive lock above conflicts');
  assert.deepEqual(locks.covering('f', 'dir/deep/file').map((l) => l.token), [dir.token]);
  locks.removeAt('f', 'dir');
  assert.deepEqual(locks.covering('f', 'dir/x'), []);
});

test('XML bodies: DOCTYPE and entities refused, malformed XML and empty prefixed namespaces too', () => {
  const status = (body: string): number => {
    try {
      parseXmlBody(Buffer.from(body));
      return 200;
    } catch (err) {
      return (err as HttpRefusal).status;
    }
  };
  assert.equal(status('<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'), 200);
  assert.equal(status('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'), 400);
  assert.equal(status('<x><!ENTITY a SYSTEM "file:///etc/passwd"></x>'), 400);
  assert.equal(status('<x>&undefined;</x>'), 400);
  assert.equal(status('<x><y></x>'), 400);
  assert.equal(status('<x xmlns:p=""><p:y/></x>'), 400);
  assert.equal(parseXmlBody(Buffer.alloc(0)), undefined);
});
