// The admin page: first-start password, login, then the folders, peers, settings and log views with live status.

import { api, ApiError, setCsrf, whenLoggedOut, type StatusReport } from './api.js';
import { clear, field, h } from './dom.js';
import { FoldersView } from './folders.js';
import { LogView } from './log.js';
import { PeersView } from './peers.js';
import { SettingsView } from './settings.js';

interface AuthState {
  setup: boolean;
  loggedIn: boolean;
  csrf?: string;
  /** First start from another machine: the setup code (`ferry admin setup-code`) is needed too. */
  codeRequired?: boolean;
}

export interface View {
  readonly element: HTMLElement;
  show(): void;
  update(status: StatusReport): void;
}

const root = document.getElementById('app')!;
let events: EventSource | null = null;

function message(text: string, kind: 'error' | 'info' = 'error'): HTMLElement {
  return h('p', { class: `message ${kind}`, attrs: { role: kind === 'error' ? 'alert' : 'status' } }, text);
}

async function start(): Promise<void> {
  let state: AuthState;
  try {
    state = await api<AuthState>('GET', '/auth/state');
  } catch (err) {
    clear(root);
    root.append(h('main', { class: 'card narrow' }, h('h1', null, 'Ferry'), message((err as Error).message)));
    return;
  }
  if (state.loggedIn && state.csrf) {
    setCsrf(state.csrf);
    showApp();
  } else showLogin(state.setup, state.codeRequired === true);
}

function showLogin(setup: boolean, codeRequired = false): void {
  events?.close();
  events = null;
  clear(root);
  const password = h('input', { attrs: { type: 'password', name: 'password', autocomplete: setup ? 'new-password' : 'current-password', required: true, id: 'password' } });
  const confirm = h('input', { attrs: { type: 'password', name: 'confirm', autocomplete: 'new-password', required: true, id: 'confirm' } });
  const code = h('input', { attrs: { type: 'text', name: 'code', autocomplete: 'off', spellcheck: 'false', required: true, id: 'setup-code', placeholder: 'XXXX-XXXX-XXXX-XXXX' } });
  const askCode = setup && codeRequired;
  const error = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'login-error' } });
  const submit = h('button', { class: 'primary', attrs: { type: 'submit' } }, setup ? 'Set password' : 'Log in');
  const form = h(
    'form',
    { class: 'card narrow', attrs: { id: setup ? 'setup-form' : 'login-form' } },
    h('h1', null, h('img', { attrs: { src: '/favicon.svg', alt: '', class: 'logo' } }), 'Ferry'),
    setup
      ? h('p', null, 'Welcome. Choose the admin password for this device: anyone who knows it can manage Ferry here.')
      : h('p', null, 'Log in to manage Ferry on this device.'),
    askCode
      ? h('p', null, 'This browser is not on the machine running Ferry, so the setup code is needed: run ',
        h('code', null, 'ferry admin setup-code'), ' on that machine, or find it in its log (or in the file admin-setup-code in Ferry\'s home).')
      : null,
    askCode ? field('Setup code', code).row : null,
    field(setup ? 'New password (at least 8 characters)' : 'Password', password).row,
    setup ? field('Password again', confirm).row : null,
    error,
    submit,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    error.textContent = '';
    if (setup && password.value !== confirm.value) {
      error.textContent = 'The two passwords differ.';
      return;
    }
    if (setup && password.value.length < 8) {
      error.textContent = 'The password needs at least 8 characters.';
      return;
    }
    submit.disabled = true;
    const body = askCode ? { password: password.value, code: code.value } : { password: password.value };
    api<{ csrf: string }>('POST', setup ? '/auth/setup' : '/auth/login', body)
      .then((answer) => {
        setCsrf(answer.csrf);
        showApp();
      })
      .catch((err: ApiError) => {
        error.textContent = err.code === 'WRONG_PASSWORD' ? 'Wrong password.' : err.message;
        if (err.code === 'SETUP_CODE') code.select();
        else password.select();
      })
      .finally(() => (submit.disabled = false));
  });
  root.append(h('main', { class: 'center' }, form));
  (askCode ? code : password).focus();
}

function showApp(): void {
  clear(root);
  const banner = h('div', { class: 'banner', attrs: { role: 'status', id: 'connection' } });
  const deviceName = h('span', { class: 'device' });
  const views: Record<string, View> = {
    folders: new FoldersView(),
    peers: new PeersView(),
    settings: new SettingsView(),
    log: new LogView(),
  };
  const labels: Record<string, string> = { folders: 'Folders', peers: 'Peers', settings: 'Settings', log: 'Log' };
  const main = h('main', { class: 'content' });
  const tabs = Object.keys(views).map((name) =>
    h('button', { class: 'tab', attrs: { type: 'button', 'data-view': name }, on: { click: () => select(name) } }, labels[name]!),
  );
  const logout = h('button', { class: 'link', attrs: { type: 'button', id: 'logout' } }, 'Log out');
  logout.addEventListener('click', () => {
    api('POST', '/auth/logout').finally(() => showLogin(false));
  });
  const header = h(
    'header',
    { class: 'top' },
    h('div', { class: 'brand' }, h('img', { attrs: { src: '/favicon.svg', alt: '', class: 'logo' } }), h('strong', null, 'Ferry'), deviceName),
    h('nav', { attrs: { 'aria-label': 'Views' } }, ...tabs),
    logout,
  );
  root.append(header, banner, main);

  let current = '';
  let last: StatusReport | null = null;
  function select(name: string): void {
    current = name;
    for (const tab of tabs) tab.classList.toggle('active', tab.dataset.view === name);
    clear(main);
    const view = views[name]!;
    main.append(view.element);
    view.show();
    if (last) view.update(last);
    if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  }
  select(views[location.hash.slice(1)] ? location.hash.slice(1) : 'folders');

  whenLoggedOut(() => showLogin(false));
  events?.close();
  events = new EventSource('/api/events');
  events.addEventListener('status', (event) => {
    banner.textContent = '';
    banner.classList.remove('visible');
    last = JSON.parse((event as MessageEvent<string>).data) as StatusReport;
    deviceName.textContent = last.device.name;
    views[current]!.update(last);
  });
  events.addEventListener('error', () => {
    banner.textContent = 'Connection to Ferry lost; retrying…';
    banner.classList.add('visible');
    // A stream refused for want of a session does not retry: find out and show the login.
    if (events?.readyState === EventSource.CLOSED) void start();
  });
}

void start();
