// The hostile browser against the login (issue 25 item 6): parallel wrong passwords cost no more argon2 checks
// than sequential ones (one in flight per address, a small global cap, failures counted before the check).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, startWebAdmin, type Running } from '../web/helpers.js';

const PASSWORD = 'correct horse battery';

describe('login under a flood of parallel guesses', () => {
  let web: Running;
  before(async () => {
    web = await startWebAdmin();
    assert.equal((await new Client(web.address).login(PASSWORD, '/api/auth/setup')).status, 200);
  });
  after(async () => {
    await web.close();
  });

  test('60 parallel wrong passwords from one address: at most 5 argon2 checks, the rest refused', async () => {
    const before = web.admin.auth.checks;
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => new Client(web.address).login(`wrong password ${i}`)));
    const checks = web.admin.auth.checks - before;
    assert.ok(checks <= 5, `${checks} argon2 checks for 60 parallel guesses`);
    assert.ok(answers.every((a) => a.status === 401 || a.status === 429), answers.map((a) => a.status).join(','));
    assert.equal(answers.filter((a) => a.status === 401).length, checks);
    assert.ok(checks >= 1);
    assert.ok(answers.filter((a) => a.status === 429).every((a) => ['LOGIN_BUSY', 'TOO_MANY_ATTEMPTS'].includes(a.body.error!.code)));
  });

  test('60 parallel wrong passwords from 60 addresses: at most 2 checks at once; the owner elsewhere still logs in', async () => {
    web.admin.auth.peakChecks = 0;
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => new Client({ ...web.address, localAddress: `127.0.${1 + Math.floor(i / 200)}.${2 + (i % 200)}` }).login(`wrong ${i} password`)),
    );
    assert.ok(web.admin.auth.peakChecks <= 2, `${web.admin.auth.peakChecks} checks at once`);
    assert.ok(answers.every((a) => a.status === 401 || a.status === 429));
    const refused = answers.filter((a) => a.status === 429);
    assert.ok(refused.every((a) => a.body.error?.code === 'LOGIN_BUSY' && a.headers['retry-after'] === '1'));
    const owner = new Client({ ...web.address, localAddress: '127.0.9.9' });
    assert.equal((await owner.login(PASSWORD)).status, 200);
    assert.equal((await owner.send('GET', '/api/status')).status, 200);
  });
});
