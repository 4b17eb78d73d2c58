// The peers view: connected devices with how they were found and their rates, named addresses, and an add form.

import { api, ApiError, type AddedPeerReport, type PeerInfo, type StatusReport } from './api.js';
import { clear, field, formatBytes, formatRate, h } from './dom.js';
import { DeviceCard } from './device.js';

const SOURCES: Record<string, string> = {
  known: 'address you added',
  incoming: 'connected to us',
  lan: 'local network',
  tracker: 'tracker',
  dht: 'DHT',
  pex: 'peer exchange',
};

/** How a link runs: its path (tcp, udp, udp punched, relay via NAME, turn HOST), then the IP version and the round-trip time when measured. */
function linkCell(p: PeerInfo): HTMLElement {
  const ip = p.ip === 6 ? 'IPv6' : p.ip === 4 ? 'IPv4' : '';
  const rtt = p.rttMs !== undefined ? `${p.rttMs < 10 ? p.rttMs.toFixed(1) : Math.round(p.rttMs)} ms` : '';
  const detail = [ip, rtt].filter(Boolean).join(' · ');
  return h('td', { class: 'link', attrs: { 'data-path': p.path, 'data-ip': String(p.ip) } }, p.path, detail ? h('br') : null, detail ? h('small', null, detail) : null);
}

export class PeersView {
  readonly element: HTMLElement;
  private readonly connected = h('div', { class: 'table-wrap' });
  private readonly known = h('div', { class: 'table-wrap' });
  private readonly error = h('div', { class: 'form-error', attrs: { role: 'alert' } });
  private refreshing = false;
  private readonly device = new DeviceCard();

  constructor() {
    const address = h('input', { attrs: { type: 'text', required: true, placeholder: '192.168.1.20:22100', id: 'peer-address', autocomplete: 'off' } });
    const { row, message } = field('Add a peer by address (HOST:PORT)', address);
    const form = h('form', { class: 'card add', attrs: { id: 'peer-form' } }, row, h('button', { class: 'primary', attrs: { type: 'submit' } }, 'Add'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      message.textContent = '';
      if (!/^(\[[^\]]+\]|[^:\s]+):\d{1,5}$/.test(address.value.trim())) {
        message.textContent = 'Write the address as HOST:PORT, e.g. 192.168.1.20:22100.';
        return;
      }
      api('POST', '/peers', { address: address.value.trim() })
        .then(() => {
          form.reset();
          this.show();
        })
        .catch((err: ApiError) => (message.textContent = err.message));
    });
    this.element = h(
      'section',
      { class: 'view' },
      h('div', { class: 'view-head' }, h('h2', null, 'Peers')),
      this.device.element,
      this.error,
      h('h3', null, 'Connected devices'),
      this.connected,
      h('h3', null, 'Addresses you added'),
      this.known,
      form,
    );
  }

  show(): void {
    if (this.refreshing) return;
    this.refreshing = true;
    api<{ peers: PeerInfo[]; known: StatusReport['knownPeers']; added?: AddedPeerReport[] }>('GET', '/peers')
      .then(({ peers, known, added }) => {
        this.error.textContent = '';
        this.render(peers, known, added);
      })
      .catch((err: ApiError) => (this.error.textContent = err.message))
      .finally(() => (this.refreshing = false));
  }

  /** Live status arrives every second: refresh this device and the rates with it. */
  update(status?: StatusReport): void {
    if (status) this.device.update(status);
    this.show();
  }

  private remove(address: string, button: HTMLButtonElement): void {
    button.disabled = true;
    api('DELETE', `/peers/${encodeURIComponent(address)}`)
      .then(() => this.show())
      .catch((err: ApiError) => {
        button.disabled = false;
        this.error.textContent = err.message;
      });
  }

  private render(peers: PeerInfo[], known: StatusReport['knownPeers'], added?: AddedPeerReport[]): void {
    clear(this.connected);
    if (peers.length === 0) this.connected.append(h('p', { class: 'empty' }, 'No device is connected.'));
    else {
      const rows = peers.map((p) =>
        h(
          'tr',
          null,
          h('td', null, h('strong', null, p.name), h('br'), h('code', { class: 'id' }, p.device.slice(0, 16) + '…')),
          h('td', null, p.address),
          linkCell(p),
          h('td', null, SOURCES[p.source] ?? p.source),
          h('td', { class: 'num' }, `↓ ${formatRate(p.inRateBps)}`, h('br'), `↑ ${formatRate(p.outRateBps)}`),
          h('td', { class: 'num' }, `${formatBytes(p.bytesIn)} in`, h('br'), `${formatBytes(p.bytesOut)} out`),
          h('td', { class: 'num' }, String(p.folders.length)),
        ),
      );
      this.connected.append(
        h(
          'table',
          { attrs: { id: 'peer-table' } },
          h('thead', null, h('tr', null, ...['Device', 'Address', 'Link', 'Found by', 'Rate', 'Total', 'Folders'].map((t) => h('th', null, t)))),
          h('tbody', null, ...rows),
        ),
      );
    }
    clear(this.known);
    // The addresses the owner added, each with a remove button (older daemons: every address dialled).
    if (added) {
      if (added.length === 0) this.known.append(h('p', { class: 'empty' }, 'None: devices on the LAN and through trackers are found without one.'));
      else {
        const rows = added.map((k) => {
          const remove = h('button', { class: 'danger', attrs: { type: 'button', 'aria-label': `Remove ${k.address}`, 'data-address': k.address } }, 'Remove');
          remove.addEventListener('click', () => this.remove(k.address, remove));
          const state = k.connected ? 'connected' : k.lastError ? `not connected: ${k.lastError}` : 'connecting…';
          return h('tr', null, h('td', null, k.address), h('td', null, state, k.deviceId ? h('br') : null, k.deviceId ? h('code', { class: 'id' }, k.deviceId.slice(0, 16) + '…') : null), h('td', null, remove));
        });
        this.known.append(
          h('table', { attrs: { id: 'added-table' } }, h('thead', null, h('tr', null, h('th', null, 'Address'), h('th', null, 'State'), h('th', null, ''))), h('tbody', null, ...rows)),
        );
      }
      return;
    }
    if (known.length === 0) this.known.append(h('p', { class: 'empty' }, 'None: devices on the LAN and through trackers are found without one.'));
    else {
      this.known.append(
        h(
          'table',
          null,
          h('thead', null, h('tr', null, h('th', null, 'Address'), h('th', null, 'State'))),
          h('tbody', null, ...known.map((k) => h('tr', null, h('td', null, k.address), h('td', null, k.connected ? 'connected' : k.lastError ? `not connected: ${k.lastError}` : 'connecting…')))),
        ),
      );
    }
  }
}
