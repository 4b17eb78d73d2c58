// The settings view: device, addresses, discovery, rate limits and archive days with validation messages; the password change.

import { AppPasswordsCard } from './app-passwords.js';
import { api, ApiError, setCsrf, type EditableSettings, type SettingsReport } from './api.js';
import { field, h } from './dom.js';

type Name = keyof EditableSettings;

interface Input {
  name: Name;
  input: HTMLInputElement | HTMLTextAreaElement;
  message: HTMLElement;
  row: HTMLElement;
  /** "set by --no-lan at start" when a `ferry run` flag decides the value for this run. */
  flag?: HTMLElement;
}

export class SettingsView {
  readonly element: HTMLElement;
  private readonly inputs: Input[] = [];
  private readonly note = h('div', { class: 'form-ok', attrs: { role: 'status', id: 'settings-note' } });
  private readonly error = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'settings-error' } });
  private readonly appPasswords = new AppPasswordsCard();

  constructor() {
    const text = (name: Name, label: string, hint?: string, attrs: Record<string, string | boolean> = {}): HTMLElement => {
      const input = h('input', { attrs: { type: 'text', name, id: `setting-${name}`, autocomplete: 'off', ...attrs } });
      const { row, message } = field(label, input, hint);
      this.inputs.push({ name, input, message, row });
      return row;
    };
    const number = (name: Name, label: string, max: number, hint?: string): HTMLElement =>
      text(name, label, hint, { type: 'number', min: '0', max: String(max), step: '1', required: true, inputmode: 'numeric' });
    const toggle = (name: Name, label: string): HTMLElement => {
      const input = h('input', { attrs: { type: 'checkbox', name, id: `setting-${name}` } });
      const message = h('div', { class: 'field-error' });
      const row = h('label', { class: 'check' }, input, h('span', null, label), message);
      this.inputs.push({ name, input, message, row });
      return row;
    };
    const trackers = h('textarea', { attrs: { name: 'trackerUrls', id: 'setting-trackerUrls', rows: '3', spellcheck: 'false', placeholder: 'udp://tracker.example.org:6969/announce' } });
    const trackersField = field('Tracker URLs (one per line)', trackers);
    this.inputs.push({ name: 'trackerUrls', input: trackers, message: trackersField.message, row: trackersField.row });
    const webHosts = h('textarea', { attrs: { name: 'webHosts', id: 'setting-webHosts', rows: '2', spellcheck: 'false', placeholder: 'nas.example.lan' } });
    const webHostsField = field('Other names of this page (one per line; this machine\'s own names and addresses always work)', webHosts);
    this.inputs.push({ name: 'webHosts', input: webHosts, message: webHostsField.message, row: webHostsField.row });

    const form = h(
      'form',
      { class: 'card settings', attrs: { id: 'settings-form', novalidate: true } },
      h('fieldset', null, h('legend', null, 'Device'), text('deviceName', 'Device name', 'Shown to your other devices.', { required: true, maxlength: '64' })),
      h(
        'fieldset',
        null,
        h('legend', null, 'Addresses'),
        text('listen', 'Sync address (HOST:PORT)', 'Where peers connect, e.g. 0.0.0.0:22100.', { required: true }),
        text('web', 'Web admin address (HOST:PORT)', 'This page, e.g. 0.0.0.0:8888.', { required: true }),
        webHostsField.row,
      ),
      h(
        'fieldset',
        null,
        h('legend', null, 'Finding peers'),
        toggle('lan', 'Local network broadcast'),
        toggle('nat', 'Port mapping on the router (UPnP, NAT-PMP)'),
        toggle('dht', 'BitTorrent DHT'),
        toggle('trackers', 'BitTorrent trackers'),
        trackersField.row,
        toggle('relay', 'Relay for two peers of a shared folder that cannot reach each other (they stay end-to-end encrypted)'),
      ),
      h(
        'fieldset',
        null,
        h('legend', null, 'Transfers and archive'),
        number('uploadKBps', 'Upload limit (KiB/s, 0 = none)', 10_000_000),
        number('downloadKBps', 'Download limit (KiB/s, 0 = none)', 10_000_000),
        number('relayRateBps', 'Relaying for peers, at most (bytes/s in all, 0 = none)', 10_240_000_000),
        number('archiveDays', 'Keep archived files (days)', 3650, 'Deleted and overwritten files are kept this long.'),
        number('massDeleteFiles', 'Ask before applying a peer\'s deletion of more than (files)', 1_000_000_000,
          'A deletion by another device of more files than this, or of more than half of a folder, waits for you on the folder\'s card.'),
      ),
      this.error,
      this.note,
      h('button', { class: 'primary', attrs: { type: 'submit' } }, 'Save settings'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.save();
    });
    this.element = h('section', { class: 'view' }, h('div', { class: 'view-head' }, h('h2', null, 'Settings')), form, this.passwordForm(), this.appPasswords.element);
  }

  show(): void {
    void this.appPasswords.load();
    api<SettingsReport>('GET', '/settings')
      .then((report) => this.fill(report))
      .catch((err: ApiError) => (this.error.textContent = err.message));
  }

  update(): void {}

  private fill(report: SettingsReport): void {
    for (const entry of this.inputs) {
      const { name, input } = entry;
      // A flag given at start decides this run's value: show what runs, and keep the box out of the form.
      const flag = report.overriddenBy?.[name] ?? (report.overridden.includes(name) ? `a command-line flag` : undefined);
      const value = flag ? report.running[name] : report.settings[name];
      if (input instanceof HTMLInputElement && input.type === 'checkbox') input.checked = Boolean(value);
      else input.value = Array.isArray(value) ? value.join('\n') : String(value);
      input.disabled = flag !== undefined;
      entry.flag?.remove();
      entry.flag = undefined;
      if (flag) {
        entry.flag = h('small', { class: 'hint flag', attrs: { id: `setting-${name}-flag` } }, `Set by ${flag} at start (this run); the saved value is used without it.`);
        entry.row.append(entry.flag);
      }
    }
    this.explain(report, false);
  }

  private explain(report: SettingsReport, saved: boolean): void {
    const notes: string[] = [];
    if (saved) notes.push('Saved and applied.');
    const restart = report.restartFor ?? [];
    if (restart.length) {
      const what = restart.map((name) => (name === 'listen' ? 'sync address' : name === 'web' ? 'web admin address' : name)).join(' and ');
      notes.push(`The new ${what} is used from the next start of Ferry.`);
    }
    this.note.textContent = notes.join(' ');
  }

  private collect(): Record<string, unknown> | null {
    const values: Record<string, unknown> = {};
    let valid = true;
    for (const { name, input, message } of this.inputs) {
      message.textContent = '';
      // Set by a flag for this run: the stored value stays as it is.
      if (input.disabled) continue;
      if (input instanceof HTMLInputElement && input.type === 'checkbox') values[name] = input.checked;
      else if (name === 'trackerUrls' || name === 'webHosts') values[name] = input.value.split('\n').map((s) => s.trim()).filter(Boolean);
      else if (input instanceof HTMLInputElement && input.type === 'number') {
        const n = Number(input.value);
        if (input.value.trim() === '' || !Number.isInteger(n) || n < Number(input.min) || n > Number(input.max)) {
          message.textContent = `Enter a whole number from ${input.min} to ${input.max}.`;
          valid = false;
        }
        values[name] = n;
      } else {
        values[name] = input.value.trim();
        if (input.required && !input.value.trim()) {
          message.textContent = 'Required.';
          valid = false;
        } else if ((name === 'listen' || name === 'web') && !/^(\[[^\]]+\]|[^:\s]*):\d{1,5}$/.test(input.value.trim())) {
          message.textContent = 'Write it as HOST:PORT, e.g. 0.0.0.0:8888.';
          valid = false;
        }
      }
    }
    return valid ? values : null;
  }

  private save(): void {
    this.error.textContent = '';
    this.note.textContent = '';
    const values = this.collect();
    if (!values) {
      this.error.textContent = 'Some settings need fixing (see the messages above).';
      return;
    }
    api<SettingsReport>('PUT', '/settings', values)
      .then((report) => this.explain(report, true))
      .catch((err: ApiError) => {
        // The daemon's message starts with the setting's name: show it beside that field.
        const target = this.inputs.find(({ name }) => err.message.startsWith(`${name} `));
        if (target) target.message.textContent = err.message.slice(target.name.length + 1).replace(/^./, (c) => c.toUpperCase()) + '.';
        this.error.textContent = target ? 'Some settings need fixing (see the messages above).' : err.message;
      });
  }

  private passwordForm(): HTMLElement {
    const current = h('input', { attrs: { type: 'password', autocomplete: 'current-password', required: true, id: 'current-password' } });
    const next = h('input', { attrs: { type: 'password', autocomplete: 'new-password', required: true, minlength: '8', id: 'new-password' } });
    const again = h('input', { attrs: { type: 'password', autocomplete: 'new-password', required: true, id: 'new-password-again' } });
    const message = h('div', { class: 'form-error', attrs: { role: 'alert' } });
    const form = h(
      'form',
      { class: 'card settings', attrs: { id: 'password-form' } },
      h('fieldset', null, h('legend', null, 'Admin password'), field('Current password', current).row, field('New password (at least 8 characters)', next).row, field('New password again', again).row),
      message,
      h('button', { attrs: { type: 'submit' } }, 'Change password'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      message.className = 'form-error';
      message.textContent = '';
      if (next.value !== again.value) {
        message.textContent = 'The new passwords differ.';
        return;
      }
      api<{ csrf: string }>('POST', '/auth/password', { current: current.value, password: next.value })
        .then(({ csrf }) => {
          setCsrf(csrf);
          form.reset();
          message.className = 'form-ok';
          message.textContent = 'Password changed; other sessions were logged out.';
        })
        .catch((err: ApiError) => (message.textContent = err.message));
    });
    return form;
  }
}
