// A folder's grants dialog: time-limited invites with their expiry and status, revoke (after a confirm), and a form that issues one (invite, copy button, QR code).

import { api, ApiError, type FolderReport, type GrantReport, type IssuedGrantReport } from './api.js';
import { clear, field, formatTime, h, setText } from './dom.js';
import { copyText, openDialog, qrCanvas } from './dialogs.js';

const LEVELS: Record<GrantReport['level'], string> = { ro: 'read-only', rw: 'read-write' };
const UNITS: Array<{ name: string; label: string; ms: number }> = [
  { name: 'm', label: 'minutes', ms: 60_000 },
  { name: 'h', label: 'hours', ms: 3_600_000 },
  { name: 'd', label: 'days', ms: 86_400_000 },
  { name: 'w', label: 'weeks', ms: 604_800_000 },
];
const MAX_COUNT = 3650;
/** The list is fetched again this often while the dialog is open (revocations learned from peers). */
const RELOAD_EVERY_S = 15;

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "in 7 days", "in 3 hours", "5 minutes ago": the largest unit that fits, rounded. */
export function formatRelative(targetMs: number, nowMs = Date.now()): string {
  const diff = targetMs - nowMs;
  const abs = Math.abs(diff);
  const steps: Array<[Intl.RelativeTimeFormatUnit, number]> = [
    ['second', 1000],
    ['minute', 60_000],
    ['hour', 3_600_000],
    ['day', 86_400_000],
  ];
  let [unit, size] = steps[0]!;
  for (const [u, s] of steps) if (abs >= s * (u === 'day' ? 2 : 1)) [unit, size] = [u, s];
  if (unit === 'second' && abs < 1000) return diff >= 0 ? 'in a moment' : 'just now';
  return relative.format(Math.round(diff / size), unit);
}

/** The server's status, or 'expired' as soon as the expiry passes here (between two fetches). */
export function currentStatus(grant: GrantReport, nowMs = Date.now()): GrantReport['status'] {
  return grant.status === 'active' && nowMs >= grant.expiresAtMs ? 'expired' : grant.status;
}

/** Only a device holding the folder's own read-write key issues and revokes grants (a grantee cannot). */
export function canIssueGrants(folder: FolderReport): boolean {
  return folder.access === 'rw' && !folder.grant;
}

function grantee(grant: { device?: string }): string {
  return grant.device ? `device ${grant.device}` : 'whoever holds the invite';
}

interface Row {
  grant: GrantReport;
  status: HTMLElement;
  when: HTMLElement;
  revokedAt: HTMLElement;
  revoke: HTMLButtonElement | null;
}

export async function showGrants(folder: FolderReport): Promise<void> {
  const id = encodeURIComponent(folder.id);
  const issuer = canIssueGrants(folder);
  const message = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'grants-message' } });
  const table = h('table', { class: 'grants', attrs: { id: 'grants-table' } });
  let rows: Row[] = [];

  const say = (text: string, ok = false): void => {
    message.className = ok ? 'form-ok' : 'form-error';
    message.textContent = text;
  };

  const refresh = (): void => {
    const now = Date.now();
    for (const row of rows) {
      const status = currentStatus(row.grant, now);
      setText(row.status, status);
      row.status.className = `state ${status}`;
      setText(row.when, formatRelative(row.grant.expiresAtMs, now));
      if (row.grant.revokedAtMs) setText(row.revokedAt, formatRelative(row.grant.revokedAtMs, now));
      if (row.revoke && status !== 'active') {
        row.revoke.remove();
        row.revoke = null;
      }
    }
  };

  const revokeButton = (grant: GrantReport): HTMLButtonElement => {
    const button = h('button', { class: 'danger', attrs: { type: 'button', 'data-revoke': grant.id } }, 'Revoke');
    button.addEventListener('click', () => {
      if (!confirm(`Revoke the ${LEVELS[grant.level]} grant for ${grantee(grant)}? Every peer refuses it from now on; this cannot be undone.`)) return;
      button.disabled = true;
      api<{ id: string }>('POST', `/grants/${encodeURIComponent(grant.id)}/revoke`)
        .then(() => {
          say('Grant revoked: peers refuse it from now on.', true);
          return load();
        })
        .catch((err: ApiError) => {
          say(err.message);
          button.disabled = false;
        });
    });
    return button;
  };

  const render = (grants: GrantReport[]): void => {
    clear(table);
    rows = [];
    table.append(h('thead', null, h('tr', null, ...['Access', 'For', 'Expires', 'Status', ''].map((t) => h('th', null, t)))));
    const body = h('tbody');
    for (const grant of grants) {
      const status = h('span', { class: 'state' });
      const when = h('small', { class: 'hint relative' });
      const revokedAt = h('small', { class: 'hint revoked-at', attrs: grant.revokedAtMs ? { title: formatTime(grant.revokedAtMs) } : {} });
      const revoke = issuer && currentStatus(grant) === 'active' ? revokeButton(grant) : null;
      rows.push({ grant, status, when, revokedAt, revoke });
      body.append(
        h(
          'tr',
          { attrs: { 'data-grant': grant.id, 'data-expires': String(grant.expiresAtMs) } },
          h('td', null, LEVELS[grant.level], h('br'), h('code', { class: 'id', attrs: { title: 'Grant ID (ferry revoke takes it)' } }, grant.id)),
          h('td', { class: 'grantee' }, grant.device ? h('code', { class: 'device-id' }, grant.device) : 'whoever holds the invite'),
          h('td', null, h('span', { class: 'absolute' }, formatTime(grant.expiresAtMs)), h('br'), when),
          h('td', null, status, grant.revokedAtMs ? h('br') : null, grant.revokedAtMs ? revokedAt : null),
          h('td', null, revoke),
        ),
      );
    }
    if (grants.length === 0) body.append(h('tr', null, h('td', { attrs: { colspan: '5' }, class: 'empty' }, 'No grants yet.')));
    table.append(body);
    refresh();
  };

  const load = async (): Promise<void> => {
    const listing = await api<{ folderId: string; grants: GrantReport[] }>('GET', `/folders/${id}/grants`);
    render(listing.grants);
  };

  await load();
  const dialog = openDialog(
    'Grants',
    'grants-dialog',
    h('p', { class: 'dialog-path' }, folder.path),
    h(
      'p',
      { class: 'hint' },
      issuer
        ? 'A grant lets one device, or whoever holds its invite, into this folder until it expires; it never reveals the folder\'s keys, so revoking it really ends access.'
        : 'Grants known for this folder. Only a device with the folder\'s read-write key issues or revokes them.',
    ),
    message,
    h('div', { class: 'table-wrap' }, table),
    ...(issuer ? [issueForm(id, load)] : []),
  );
  let ticks = 0;
  const timer = setInterval(() => {
    refresh();
    if (++ticks % RELOAD_EVERY_S === 0) load().catch((err: ApiError) => say(err.message));
  }, 1000);
  dialog.addEventListener('close', () => clearInterval(timer));
}

function issueForm(folderId: string, reload: () => Promise<void>): HTMLElement {
  const levelRadio = (value: GrantReport['level'], label: string, checked: boolean): HTMLElement =>
    h('label', { class: 'check' }, h('input', { attrs: { type: 'radio', name: 'grant-level', value, id: `grant-level-${value}`, checked } }), h('span', null, label));
  const count = h('input', { attrs: { type: 'number', min: '1', max: String(MAX_COUNT), step: '1', value: '7', required: true, id: 'grant-expires', inputmode: 'numeric', 'aria-label': 'Expires after' } });
  const unit = h('select', { attrs: { id: 'grant-unit', 'aria-label': 'unit' } }, ...UNITS.map((u) => h('option', { attrs: { value: u.name, selected: u.name === 'd' } }, u.label)));
  const device = h('input', { attrs: { type: 'text', id: 'grant-device', autocomplete: 'off', spellcheck: 'false', placeholder: 'empty: whoever holds the invite' } });
  const expiresField = field('Expires after', h('div', { class: 'expiry' }, count, unit));
  const deviceField = field('Only for device (optional)', device, 'Its device ID: ferry status --json on that device. Empty: anyone you give the invite to.');
  const error = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'grant-error' } });
  const result = h('div', { class: 'invite', attrs: { id: 'grant-invite' } });
  const submit = h('button', { class: 'primary', attrs: { type: 'submit' } }, 'Create invite');
  const form = h(
    'form',
    { class: 'grant-form', attrs: { id: 'grant-form', novalidate: true } },
    h('h3', null, 'New grant'),
    h('div', { class: 'levels', attrs: { role: 'radiogroup', 'aria-label': 'Access' } }, levelRadio('ro', 'Read-only', true), levelRadio('rw', 'Read-write', false)),
    expiresField.row,
    deviceField.row,
    error,
    submit,
    result,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    for (const el of [error, expiresField.message, deviceField.message]) el.textContent = '';
    const n = Number(count.value);
    if (count.value.trim() === '' || !Number.isInteger(n) || n < 1 || n > MAX_COUNT) {
      expiresField.message.textContent = `Enter a whole number from 1 to ${MAX_COUNT}.`;
      return;
    }
    const level = (form.querySelector('input[name="grant-level"]:checked') as HTMLInputElement | null)?.value === 'rw' ? 'rw' : 'ro';
    const deviceId = device.value.replace(/\s+/g, '');
    const expiresInMs = n * UNITS.find((u) => u.name === unit.value)!.ms;
    submit.disabled = true;
    api<IssuedGrantReport>('POST', `/folders/${folderId}/grants`, { level, expiresInMs, ...(deviceId ? { device: deviceId } : {}) })
      .then((issued) => {
        showInvite(result, issued);
        device.value = '';
        return reload();
      })
      .catch((err: ApiError) => {
        (/device/i.test(err.message) ? deviceField.message : error).textContent = err.message;
      })
      .finally(() => (submit.disabled = false));
  });
  return form;
}

function showInvite(result: HTMLElement, issued: IssuedGrantReport): void {
  clear(result);
  const input = h('input', { class: 'key', attrs: { type: 'text', readonly: true, value: issued.invite, 'aria-label': 'Invite', 'data-invite': issued.id, spellcheck: 'false' } });
  const status = h('span', { class: 'copied', attrs: { role: 'status' } });
  const copy = h('button', { attrs: { type: 'button', 'data-copy': 'invite' } }, 'Copy');
  copy.addEventListener('click', () => {
    copyText(issued.invite, input)
      .then(() => (status.textContent = 'Copied'))
      .catch((err: Error) => (status.textContent = err.message));
  });
  result.append(
    h(
      'div',
      { class: 'key-row' },
      h(
        'div',
        { class: 'key-text' },
        h('h3', null, 'Invite'),
        h('p', { class: 'hint' }, `${LEVELS[issued.level]} for ${grantee(issued)} until ${formatTime(issued.expiresAtMs)} (${formatRelative(issued.expiresAtMs)}). On the other device: Join a folder with this invite.`),
        h('div', { class: 'copy-line' }, input, copy),
        status,
      ),
      qrCanvas(issued.invite, 'QR code of the invite', 232),
    ),
  );
}
