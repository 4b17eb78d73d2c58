// App passwords in the Settings view: list, add (the password is shown once), revoke. WebDAV clients sign in with them.

import { api, ApiError, type AppPasswordReport, type IssuedAppPassword, type StatusReport } from './api.js';
import { clear, field, formatTime, h } from './dom.js';

export class AppPasswordsCard {
  readonly element: HTMLElement;
  private readonly table = h('table', { class: 'archive', attrs: { id: 'app-passwords-table' } });
  private readonly error = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'app-passwords-error' } });
  private readonly issued = h('div', { class: 'issued-password', attrs: { role: 'status', id: 'app-password-issued' } });
  private readonly folder = h('select', { attrs: { id: 'app-password-folder', name: 'folder' } });

  constructor() {
    const name = h('input', { attrs: { type: 'text', id: 'app-password-name', name: 'name', required: true, maxlength: '64', pattern: '[A-Za-z0-9][A-Za-z0-9._-]*', placeholder: 'laptop', autocomplete: 'off' } });
    const readOnly = h('input', { attrs: { type: 'checkbox', id: 'app-password-ro', name: 'readOnly' } });
    const form = h(
      'form',
      { attrs: { id: 'app-password-form' } },
      field('Name (who uses it)', name).row,
      field('Folder', this.folder).row,
      h('label', { class: 'check' }, readOnly, h('span', null, 'Read-only')),
      h('button', { class: 'primary', attrs: { type: 'submit' } }, 'Add app password'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.error.textContent = '';
      clear(this.issued);
      const body = { name: name.value.trim(), readOnly: readOnly.checked, ...(this.folder.value ? { folder: this.folder.value } : {}) };
      api<IssuedAppPassword>('POST', '/app-passwords', body)
        .then((issued) => {
          form.reset();
          const url = `${location.origin}/dav/${issued.folder ?? 'FOLDER-ID'}/`;
          this.issued.append(
            h('p', null, 'User ', h('code', { attrs: { id: 'issued-user' } }, issued.user), ', password ', h('code', { attrs: { id: 'issued-password' } }, issued.password)),
            h('p', { class: 'hint' }, `Shown this once. A WebDAV client connects to ${url} with them.`),
          );
          return this.load();
        })
        .catch((err: ApiError) => (this.error.textContent = err.message));
    });
    this.element = h(
      'section',
      { class: 'card app-passwords', attrs: { id: 'app-passwords' } },
      h('h3', null, 'App passwords (WebDAV)'),
      h('p', { class: 'hint' }, 'Each WebDAV client (a file manager, rclone, a phone) signs in with its own password, never the admin password; revoke one to lock that client out.'),
      this.table,
      form,
      this.issued,
      this.error,
    );
  }

  async load(): Promise<void> {
    try {
      const [{ appPasswords }, status] = await Promise.all([
        api<{ appPasswords: AppPasswordReport[] }>('GET', '/app-passwords'),
        api<StatusReport>('GET', '/status'),
      ]);
      const chosen = this.folder.value;
      clear(this.folder);
      this.folder.append(h('option', { attrs: { value: '' } }, 'Every folder'));
      for (const f of status.folders) if (f.access !== 'enc') this.folder.append(h('option', { attrs: { value: f.id } }, f.path));
      this.folder.value = chosen;
      const pathOf = (id?: string): string => (id ? status.folders.find((f) => f.id === id)?.path ?? id : 'every folder');
      clear(this.table);
      this.table.append(h('thead', null, h('tr', null, h('th', null, 'Name'), h('th', null, 'Access'), h('th', null, 'Folder'), h('th', null, 'Created'), h('th', null, ''))));
      const body = h('tbody');
      for (const p of appPasswords) {
        const revoke = h('button', { class: 'danger', attrs: { type: 'button', 'data-revoke': p.name } }, 'Revoke');
        revoke.addEventListener('click', () => {
          if (!confirm(`Revoke the app password ${p.name}? Clients using it are locked out at once.`)) return;
          api('POST', `/app-passwords/${encodeURIComponent(p.name)}/revoke`)
            .then(() => this.load())
            .catch((err: ApiError) => (this.error.textContent = err.message));
        });
        body.append(h('tr', { attrs: { 'data-app-password': p.name } }, h('td', null, p.name), h('td', null, p.readOnly ? 'read-only' : 'read-write'),
          h('td', null, pathOf(p.folder)), h('td', null, formatTime(p.createdMs)), h('td', null, revoke)));
      }
      if (appPasswords.length === 0) body.append(h('tr', null, h('td', { attrs: { colspan: '5' }, class: 'empty' }, 'No app passwords yet.')));
      this.table.append(body);
    } catch (err) {
      this.error.textContent = (err as ApiError).message;
    }
  }
}
