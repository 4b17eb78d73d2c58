// The "This device" card: the device ID (copy, QR code) another device or a grant needs, an editable
// name, the sync address, the external addresses this device is seen at, the port mapping's state and the
// IPv6 pinhole's.

import { api, ApiError, type SettingsReport, type StatusReport } from './api.js';
import { copyText, qrCanvas } from './dialogs.js';
import { clear, h, setText } from './dom.js';

interface NatReport {
  state?: string;
  reachable?: string;
  method?: string | null;
  error?: string | null;
  pinhole?: { tcp?: { state?: string; external?: string | null; error?: string | null } };
}

const SOURCES: Record<string, string> = { upnp: 'UPnP', natpmp: 'NAT-PMP', stun: 'STUN', observed: 'seen by a peer', pinhole: 'IPv6 pinhole' };

export class DeviceCard {
  readonly element: HTMLElement;
  private readonly name = h('input', { attrs: { type: 'text', id: 'device-name', maxlength: '64', required: true, autocomplete: 'off', 'aria-label': 'Device name' } });
  private readonly nameNote = h('div', { class: 'form-ok', attrs: { role: 'status', id: 'device-name-note' } });
  private readonly id = h('input', { class: 'key', attrs: { type: 'text', readonly: true, id: 'device-id', 'aria-label': 'Device ID', spellcheck: 'false' } });
  private readonly copied = h('span', { class: 'copied', attrs: { role: 'status' } });
  private readonly qrSlot = h('div', { class: 'device-qr' });
  private readonly listen = h('dd', { attrs: { id: 'device-listen' } });
  private readonly external = h('dd', { attrs: { id: 'device-external' } });
  private readonly mapping = h('dd', { attrs: { id: 'device-mapping' } });
  private readonly pinhole = h('dd', { attrs: { id: 'device-pinhole' } });
  private shownId = '';
  private shownName = '';

  constructor() {
    const copy = h('button', { attrs: { type: 'button', id: 'device-id-copy' } }, 'Copy');
    copy.addEventListener('click', () => {
      copyText(this.id.value, this.id)
        .then(() => (this.copied.textContent = 'Copied'))
        .catch((err: Error) => (this.copied.textContent = err.message));
    });
    const save = h('button', { attrs: { type: 'submit' } }, 'Rename');
    const nameForm = h('form', { class: 'copy-line', attrs: { id: 'device-name-form' } }, this.name, save);
    nameForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.rename();
    });
    this.element = h(
      'section',
      { class: 'card this-device', attrs: { id: 'this-device', 'aria-label': 'This device' } },
      h('h3', null, 'This device'),
      h(
        'div',
        { class: 'key-row' },
        h(
          'div',
          { class: 'key-text' },
          h('label', { class: 'label', attrs: { for: 'device-name' } }, 'Name (shown to your other devices)'),
          nameForm,
          this.nameNote,
          h('label', { class: 'label', attrs: { for: 'device-id' } }, 'Device ID (a grant for one device asks for it)'),
          h('div', { class: 'copy-line' }, this.id, copy),
          this.copied,
          h('dl', { class: 'facts' }, h('dt', null, 'Sync address'), this.listen, h('dt', null, 'Seen from outside at'), this.external, h('dt', null, 'Port mapping'), this.mapping, h('dt', null, 'IPv6 pinhole'), this.pinhole),
        ),
        this.qrSlot,
      ),
    );
  }

  update(status: StatusReport): void {
    if (status.device.id !== this.shownId) {
      this.shownId = status.device.id;
      this.id.value = status.device.id;
      clear(this.qrSlot);
      this.qrSlot.append(qrCanvas(status.device.id, 'QR code of the device ID', 176));
    }
    // Never under the owner's fingers: the name changes only when it changed elsewhere and the box is not being edited.
    if (status.device.name !== this.shownName && document.activeElement !== this.name) {
      this.shownName = status.device.name;
      this.name.value = status.device.name;
    }
    setText(this.listen, status.listen ?? '–');
    const external = status.external ?? [];
    setText(this.external, external.length ? external.map((e) => `${e.address} (${SOURCES[e.source] ?? e.source})`).join(', ') : 'not known yet');
    const nat = status.services.nat as NatReport | undefined;
    setText(this.mapping, !nat ? 'off' : nat.method && nat.reachable ? `${nat.reachable} (${SOURCES[nat.method] ?? nat.method})` : `${nat.state ?? 'idle'}${nat.error ? `: ${nat.error}` : ''}`);
    const hole = nat?.pinhole?.tcp;
    setText(this.pinhole, !nat ? 'off' : !hole ? '–' : hole.external ? hole.external : `${hole.state ?? 'idle'}${hole.error ? `: ${hole.error}` : ''}`);
  }

  private rename(): void {
    const name = this.name.value.trim();
    this.nameNote.className = 'form-ok';
    this.nameNote.textContent = '';
    if (!name) {
      this.nameNote.className = 'form-error';
      this.nameNote.textContent = 'Give the device a name.';
      return;
    }
    api<SettingsReport>('PUT', '/settings', { deviceName: name })
      .then((report) => {
        this.shownName = report.running.deviceName;
        this.name.value = report.running.deviceName;
        this.nameNote.textContent = 'Renamed; peers see the new name when they next connect.';
      })
      .catch((err: ApiError) => {
        this.nameNote.className = 'form-error';
        this.nameNote.textContent = err.message;
      });
  }
}
