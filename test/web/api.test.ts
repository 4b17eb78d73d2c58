// The web listener's guard: sessions, CSRF tokens, the login rate limit, first-start setup, headers.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createApiRouter } from '../../src/web/api.js';
import { EventHub } from '../../src/web/events.js';
import { Client, FOLDER_ID, startWebAdmin, webFakeDaemon, type Running } from './helpers.js';

const PASSWORD = 'correct horse battery';

/** Every state-changing route the web listener serves: the shared API (read from its router) and the auth routes behind the guard. */
function stateChangingRoutes(): Array<{ method: string; path: string }> {
  const router = createApiRouter(webFakeDaemon(), new EventHub(() => webFakeDaemon().status()));
  const routes: Array<{ method: string; path: string }> = [];
  for (const layer of router.stack) {
    for (const method of layer.methods) {
      if (['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) routes.push({ method, path: String(layer.path).replace(':folder', FOLDER_ID) });
    }
  }
  routes.push({ method: 'POST', path: '/api/auth/logout' }, { method: 'POST', path: '/api/auth/password' });
  return routes;
}

function readRoutes(): string[] {
  const router = createApiRouter(webFakeDaemon(), new EventHub(() => webFakeDaemon().status()));
  return router.stack.filter((layer) => layer.methods.includes('GET')).map((layer) => String(layer.path).replace(':folder', FOLDER_ID));
}

describe('web admin API guard', () => {
  let web: Running;
  before(async () => {
    web = await startWebAdmin();
  });
  after(async () => {
    await web.close();
  });

  test('first start: state says setup; setup works once and opens a session', async () => {
    const client = new Client(web.address);
    assert.deepEqual((await client.send('GET', '/api/auth/state')).body, { setup: true, loggedIn: false, codeRequired: false });
    assert.equal((await client.send('POST', '/api/auth/login', { body: { password: PASSWORD }, csrf: null })).status, 409);
    const tooShort = await client.send('POST', '/api/auth/setup', { body: { password: 'short' }, csrf: null });
    assert.equal(tooShort.status, 400);
    assert.match(tooShort.body.error!.message, /at least 8/);
    const setup = await client.login(PASSWORD, '/api/auth/setup');
    assert.equal(setup.status, 200);
    const cookie = (setup.headers['set-cookie'] as string[]).find((c) => c.startsWith('ferry_session='))!;
    assert.match(cookie, /httponly/i);
    assert.match(cookie, /samesite=strict/i);
    assert.match(web.daemon.passwordHash!, /^\$argon2id\$/);
    const state = await client.send('GET', '/api/auth/state');
    assert.deepEqual(state.body, { setup: false, loggedIn: true, csrf: client.csrf });
    const again = await new Client(web.address).send('POST', '/api/auth/setup', { body: { password: 'another password' }, csrf: null });
    assert.equal(again.status, 409, 'a second setup must not replace the password');
  });

  test('every state-changing route without a session is 401, and the daemon is never called', async () => {
    const routes = stateChangingRoutes();
    assert.ok(routes.length >= 12, `found ${routes.length} routes`);
    const anonymous = new Client(web.address);
    const calls = web.daemon.calls.length;
    for (const route of routes) {
      const answer = await anonymous.send(route.method, route.path, { body: { path: '/tmp/x', key: 'A', address: '127.0.0.1:1', archivePath: 'x~20260101-000000-000', password: 'x'.repeat(10) }, csrf: null });
      assert.equal(answer.status, 401, `${route.method} ${route.path}`);
      assert.equal(answer.body.error?.code, 'LOGIN_REQUIRED');
    }
    // A forged cookie is no session either.
    anonymous.cookie = 'ferry_session=forged';
    assert.equal((await anonymous.send('POST', '/api/folders', { body: { path: '/tmp' } })).status, 401);
    assert.equal(web.daemon.calls.length, calls);
  });

  test('every read route without a session is 401 too', async () => {
    const anonymous = new Client(web.address);
    for (const path of readRoutes()) assert.equal((await anonymous.send('GET', path)).status, 401, path);
  });

  test('every state-changing route with a session but without the CSRF token (or a wrong one) is 403', async () => {
    const client = new Client(web.address);
    assert.equal((await client.login(PASSWORD)).status, 200);
    const calls = web.daemon.calls.length;
    for (const route of stateChangingRoutes()) {
      const missing = await client.send(route.method, route.path, { body: { path: '/tmp/x' }, csrf: null });
      assert.equal(missing.status, 403, `${route.method} ${route.path} without token`);
      assert.equal(missing.body.error?.code, 'CSRF');
      const wrong = await client.send(route.method, route.path, { body: { path: '/tmp/x' }, csrf: `${client.csrf.slice(1)}x` });
      assert.equal(wrong.status, 403, `${route.method} ${route.path} with a wrong token`);
    }
    assert.equal(web.daemon.calls.length, calls);
    // Another session's token does not fit this session.
    const other = new Client(web.address);
    await other.login(PASSWORD);
    assert.equal((await client.send('POST', '/api/folders', { body: { path: '/tmp' }, csrf: other.csrf })).status, 403);
  });

  test('session and CSRF happy paths reach the daemon; logout ends the session', async () => {
    const client = new Client(web.address);
    await client.login(PASSWORD);
    assert.equal((await client.send('GET', '/api/status')).status, 200);
    assert.equal((await client.send('POST', '/api/folders', { body: { path: '/data/photos' } })).status, 200);
    assert.equal((await client.send('POST', `/api/folders/${FOLDER_ID}/pause`)).status, 200);
    assert.equal((await client.send('PUT', '/api/settings', { body: { archiveDays: 3 } })).status, 200);
    assert.equal((await client.send('POST', `/api/folders/${FOLDER_ID}/archive/restore`, { body: { archivePath: 'a.txt~20260101-000000-000' } })).status, 200);
    assert.deepEqual(web.daemon.calls.slice(-4), [
      'share /data/photos',
      `pause ${FOLDER_ID}`,
      'settings {"archiveDays":3}',
      `restore ${FOLDER_ID} a.txt~20260101-000000-000`,
    ]);
    assert.equal((await client.send('POST', '/api/auth/logout')).status, 200);
    assert.equal((await client.send('GET', '/api/status')).status, 401);
  });

  test('a cross-origin request is refused even with a session and token', async () => {
    const client = new Client(web.address);
    await client.login(PASSWORD);
    const answer = await client.send('POST', '/api/folders', { body: { path: '/tmp' }, headers: { origin: 'http://evil.example' } });
    assert.equal(answer.status, 403);
    assert.equal(answer.body.error?.code, 'CROSS_ORIGIN');
    const same = await client.send('POST', `/api/folders/${FOLDER_ID}/rescan`, { headers: { origin: `http://127.0.0.1:${web.address.port}` } });
    assert.equal(same.status, 200);
  });

  test('login needs a JSON body (a plain form post from another site cannot log in)', async () => {
    const answer = await new Client(web.address).send('POST', '/api/auth/login', {
      raw: `password=${encodeURIComponent(PASSWORD)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      csrf: null,
    });
    assert.equal(answer.status, 415);
  });

  test('the 6th wrong password in a minute is 429, even when it is right; other addresses are not affected', async () => {
    const client = new Client(web.address);
    for (let i = 1; i <= 5; i++) {
      const answer = await client.login(`wrong password ${i}`);
      assert.equal(answer.status, 401, `attempt ${i}`);
      assert.equal(answer.body.error?.code, 'WRONG_PASSWORD');
    }
    const sixth = await client.login('wrong password 6');
    assert.equal(sixth.status, 429);
    assert.equal(sixth.body.error?.code, 'TOO_MANY_ATTEMPTS');
    assert.ok(Number(sixth.headers['retry-after']) > 0);
    assert.equal((await client.login(PASSWORD)).status, 429);
    // The same limiter guards the password change; a logged-in session elsewhere keeps working.
  });

  test('the page is served with a strict CSP; API answers are not cached', async () => {
    const page = await new Client(web.address).send('GET', '/');
    assert.equal(page.status, 200);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    assert.match(String(page.body.text), /<script src="\/app.js" defer><\/script>/);
    const js = await new Client(web.address).send('GET', '/app.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    assert.equal((await new Client(web.address).send('GET', '/nothing-here')).status, 404);
    assert.equal((await new Client(web.address).send('POST', '/')).status, 405);
    assert.equal((await new Client(web.address).send('GET', '/api/auth/state')).headers['cache-control'], 'no-store');
  });
});

describe('password change and sessions', () => {
  test('changing the password needs the current one and logs out every other session', async () => {
    const web = await startWebAdmin();
    try {
      const first = new Client(web.address);
      await first.login(PASSWORD, '/api/auth/setup');
      const second = new Client(web.address);
      await second.login(PASSWORD);
      const wrong = await first.send('POST', '/api/auth/password', { body: { current: 'not it at all', password: 'brand new password' } });
      assert.equal(wrong.status, 403);
      const changed = await first.send('POST', '/api/auth/password', { body: { current: PASSWORD, password: 'brand new password' } });
      assert.equal(changed.status, 200);
      first.csrf = changed.body.csrf as string;
      assert.equal((await first.send('GET', '/api/status')).status, 200, 'the changing session gets a new session');
      assert.equal((await second.send('GET', '/api/status')).status, 401, 'other sessions end');
      assert.equal((await new Client(web.address).login(PASSWORD)).status, 401);
      assert.equal((await new Client(web.address).login('brand new password')).status, 200);
    } finally {
      await web.close();
    }
  });
});
