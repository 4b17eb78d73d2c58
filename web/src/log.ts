// The log view: the daemon's most recent log lines, as text.

import { api, ApiError } from './api.js';
import { h } from './dom.js';

export class LogView {
  readonly element: HTMLElement;
  private readonly pre = h('pre', { class: 'log', attrs: { id: 'log-lines' } });
  private readonly error = h('div', { class: 'form-error', attrs: { role: 'alert' } });

  constructor() {
    const refresh = h('button', { attrs: { type: 'button' }, on: { click: () => this.show() } }, 'Refresh');
    this.element = h('section', { class: 'view' }, h('div', { class: 'view-head' }, h('h2', null, 'Log'), refresh), this.error, this.pre);
  }

  show(): void {
    api<{ lines: string[] }>('GET', '/log?lines=300')
      .then(({ lines }) => {
        this.error.textContent = '';
        this.pre.textContent = lines.join('\n') || 'No log lines yet.';
        this.pre.scrollTop = this.pre.scrollHeight;
      })
      .catch((err: ApiError) => (this.error.textContent = err.message));
  }

  update(): void {}
}
