// The folders view: share and join forms, and one card per folder with live progress, state and actions.

import { api, ApiError, type FolderReport, type JoinCheckReport, type StatusReport } from './api.js';
import { field, formatBytes, formatRate, h, setText } from './dom.js';
import { showArchive, showKeys } from './dialogs.js';
import { showConflicts } from './conflicts.js';
import { showFiles } from './files.js';
import { showSelection } from './selection.js';
import { showVersions } from './versions.js';
import { formatRelative, showGrants } from './grants.js';

const ACCESS: Record<string, string> = { rw: 'read-write', ro: 'read-only', enc: 'encrypted' };

interface Card {
  root: HTMLElement;
  state: HTMLElement;
  bar: HTMLProgressElement;
  percent: HTMLElement;
  detail: HTMLElement;
  error: HTMLElement;
  /** Each peer's completion, as its index tells this device. */
  peers: HTMLElement;
  failed: HTMLElement;
  /** A held mass delete: what, and the two ways out. */
  held: HTMLElement;
  pause: HTMLButtonElement;
  /** "N conflicts": opens the conflicts dialog; hidden when there are none. */
  conflicts: HTMLButtonElement;
}

/** Failed items shown on a card (the status JSON lists up to 100). */
const FAILED_SHOWN = 10;

/** "40 s", "12 min", "3.5 h". */
function timeLeft(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.ceil(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Share of the folder's bytes this device has (100 % when there is nothing to fetch). */
export function progressPercent(folder: FolderReport): number {
  if (folder.needBytes <= 0 && folder.needFiles <= 0) return 100;
  if (folder.globalBytes <= 0) return 0;
  // Bytes already in the temp files of files being fetched count: a large file's progress shows.
  const need = Math.max(0, folder.needBytes - (folder.partialBytes ?? 0));
  return Math.max(0, Math.min(99, Math.floor(((folder.globalBytes - need) * 100) / folder.globalBytes)));
}

export class FoldersView {
  readonly element: HTMLElement;
  private readonly list = h('div', { class: 'folders', attrs: { id: 'folder-list' } });
  private readonly empty = h('p', { class: 'empty' }, 'No folders yet: share one of this device\'s folders, or join one shared elsewhere with its key.');
  private readonly message = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'folders-error' } });
  private readonly cards = new Map<string, Card>();

  constructor() {
    this.element = h(
      'section',
      { class: 'view' },
      h('div', { class: 'view-head' }, h('h2', null, 'Folders')),
      h('div', { class: 'add-forms' }, this.shareForm(), this.joinForm()),
      this.message,
      this.empty,
      this.list,
    );
  }

  show(): void {}

  private shareForm(): HTMLElement {
    const path = h('input', { attrs: { type: 'text', name: 'path', required: true, placeholder: '/volume1/photos', id: 'share-path', autocomplete: 'off' } });
    const { row, message } = field('Share a folder of this device', path);
    const form = h('form', { class: 'card add', attrs: { id: 'share-form' } }, row, h('button', { class: 'primary', attrs: { type: 'submit' } }, 'Share'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      message.textContent = '';
      api<{ folderId: string }>('POST', '/folders', { path: path.value.trim() })
        .then((keys) => {
          form.reset();
          void showKeys(keys.folderId);
        })
        .catch((err: ApiError) => (message.textContent = err.message));
    });
    return form;
  }

  private joinForm(): HTMLElement {
    const key = h('input', { attrs: { type: 'text', name: 'key', required: true, placeholder: 'A…, B… or E… key', id: 'join-key', autocomplete: 'off', spellcheck: 'false' } });
    const path = h('input', { attrs: { type: 'text', name: 'path', required: true, placeholder: '/volume1/photos', id: 'join-path', autocomplete: 'off' } });
    const keyField = field('Join a folder with its key', key);
    const pathField = field('into this folder (created if missing)', path);
    // The confirm step: shown when the directory already holds files, with what a merge does to them.
    const warning = h('div', { class: 'join-warning', attrs: { role: 'alert', id: 'join-warning' } });
    warning.hidden = true;
    const submit = h('button', { class: 'primary', attrs: { type: 'submit' } }, 'Join');
    const form = h('form', { class: 'card add', attrs: { id: 'join-form' } }, keyField.row, pathField.row, warning, submit);
    let confirmedFor = '';
    const reset = (): void => {
      warning.hidden = true;
      warning.replaceChildren();
      confirmedFor = '';
      setText(submit, 'Join');
    };
    path.addEventListener('input', reset);
    const join = (merge: boolean): Promise<unknown> =>
      api('POST', '/folders/join', { key: key.value.trim(), path: path.value.trim(), merge }).then(() => {
        form.reset();
        reset();
      });
    const warn = (check: JoinCheckReport): void => {
      const files = `${check.truncated ? 'at least ' : ''}${check.files} ${check.files === 1 ? 'file' : 'files'} (${formatBytes(check.bytes)})`;
      const cancel = h('button', { class: 'join-cancel', attrs: { type: 'button' } }, 'Cancel');
      cancel.addEventListener('click', reset);
      warning.replaceChildren(
        h('strong', null, `${check.path} already holds ${files}.`),
        h('div', null, 'Joining merges them into the shared folder: files the other devices do not have are sent to them; where a file differs from theirs, the newer version keeps the name and the other is kept as a conflict copy on every device (you can resolve conflicts on the folder card).'),
        h('div', { class: 'actions' }, cancel),
      );
      warning.hidden = false;
      confirmedFor = path.value.trim();
      setText(submit, 'Merge and join');
    };
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      keyField.message.textContent = '';
      pathField.message.textContent = '';
      const target = path.value.trim();
      const step = confirmedFor === target
        ? join(true)
        : api<JoinCheckReport>('POST', '/folders/join/check', { path: target }).then((check) => (check.files > 0 ? warn(check) : join(false)));
      step.catch((err: ApiError) => {
        if (err.code === 'FOLDER_NOT_EMPTY') {
          void api<JoinCheckReport>('POST', '/folders/join/check', { path: target }).then(warn);
          return;
        }
        (err.code.startsWith('KEY_') ? keyField : pathField).message.textContent = err.message;
      });
    });
    return form;
  }

  private action(label: string, run: () => Promise<unknown>, className = ''): HTMLButtonElement {
    const button = h('button', { class: className, attrs: { type: 'button' } }, label);
    button.addEventListener('click', () => {
      this.message.textContent = '';
      button.disabled = true;
      run()
        .catch((err: ApiError) => (this.message.textContent = err.message))
        .finally(() => (button.disabled = false));
    });
    return button;
  }

  private card(folder: FolderReport): Card {
    const id = encodeURIComponent(folder.id);
    const state = h('span', { class: 'state' });
    const bar = h('progress', { attrs: { max: '100', value: '0' } });
    const percent = h('span', { class: 'percent' });
    const detail = h('div', { class: 'detail' });
    const error = h('div', { class: 'folder-error', attrs: { role: 'alert' } });
    const failed = h('div', { class: 'folder-failed' });
    const peers = h('ul', { class: 'folder-peers' });
    const held = h('div', { class: 'folder-held', attrs: { role: 'alert', id: `held-${folder.id}` } });
    const pause = this.action('Pause', () => api('POST', `/folders/${id}/${pause.dataset.paused === 'yes' ? 'resume' : 'pause'}`));
    const conflicts = this.action('Conflicts', () => showConflicts(folder.id, folder.path, folder.access), 'badge conflicts');
    conflicts.hidden = true;
    const actions = h(
      'div',
      { class: 'actions' },
      this.action('Keys', () => showKeys(folder.id), 'keys'),
      folder.access === 'enc' ? null : this.action('Grants', () => showGrants(folder), 'grants'),
      folder.access === 'enc' ? null : this.action('Files', () => showFiles(folder.id, folder.path), 'files'),
      folder.access === 'enc' ? null : this.action('Archive', () => showArchive(folder.id, folder.path), 'archive'),
      folder.access === 'enc' ? null : this.action('Versions', () => showVersions(folder.id, folder.path), 'versions'),
      this.action('Selective sync', () => showSelection(folder.id, folder.path, folder.access), 'selection'),
      pause,
      this.action('Rescan', () => api('POST', `/folders/${id}/rescan`)),
      this.action(
        'Remove',
        async () => {
          if (confirm(`Stop syncing ${folder.path}? Its files stay on disk.`)) await api('DELETE', `/folders/${id}`);
        },
        'danger',
      ),
    );
    const root = h(
      'article',
      { class: 'card folder', attrs: { 'data-folder': folder.id } },
      h('div', { class: 'folder-head' }, h('h3', { class: 'path' }, folder.path), h('span', { class: `badge ${folder.access}` }, ACCESS[folder.access] ?? folder.access), state, conflicts),
      h('div', { class: 'progress' }, bar, percent),
      detail,
      peers,
      held,
      error,
      failed,
      actions,
    );
    return { root, state, bar, percent, detail, error, peers, failed, held, pause, conflicts };
  }

  /** The folder's failed items: a count and the newest few, each path with its reason (text only, never markup). */
  private showFailed(element: HTMLElement, folder: FolderReport): void {
    const items = (folder.failed ?? []).slice(0, FAILED_SHOWN);
    const key = `${folder.failedItems}:${items.map((item) => `${item.path}\u0000${item.reason}`).join('\u0001')}`;
    if (element.dataset.key === key) return;
    element.dataset.key = key;
    element.replaceChildren();
    if (!folder.failedItems) return;
    const more = folder.failedItems - items.length;
    element.append(
      h('div', { class: 'failed-head' }, `${folder.failedItems} ${folder.failedItems === 1 ? 'item' : 'items'} not synced:`),
      h('ul', { class: 'failed-list' }, ...items.map((item) => h('li', null, h('code', null, item.path), ` — ${item.reason}${item.source === 'local' ? '' : ` (from ${item.source.slice(0, 7)})`}`))),
      ...(more > 0 ? [h('div', { class: 'failed-more' }, `and ${more} more (ferry status --json lists them)`)] : []),
    );
  }

  /** One line per peer: "peer NAME: 42 % · 12 files to fetch (3 MiB)" or "up to date" (text only, never markup). */
  private showPeers(element: HTMLElement, folder: FolderReport): void {
    const lines = folder.peers.map((peer) => {
      const who = peer.name || peer.device.slice(0, 7);
      const files = peer.needFiles ?? 0;
      const need = files > 0 ? `${files} ${files === 1 ? 'file' : 'files'} to fetch (${formatBytes(peer.needBytes ?? 0)})` : 'up to date';
      if (peer.completion === undefined) return `peer ${who}: working out its completion…`;
      return `peer ${who}: ${peer.completion} % · ${need}${peer.connected ? '' : ' · not connected'}`;
    });
    const key = lines.join('\n');
    if (element.dataset.key === key) return;
    element.dataset.key = key;
    element.replaceChildren(...lines.map((line) => h('li', null, line)));
  }

  /** A held mass delete: how many, by whom, a few paths, and "delete here too" / "restore everywhere". */
  private showHeld(element: HTMLElement, folder: FolderReport): void {
    const held = folder.heldDeletions;
    const key = held ? `${held.files}:${held.sinceMs}` : '';
    if (element.dataset.key === key) return;
    element.dataset.key = key;
    element.replaceChildren();
    element.hidden = !held;
    if (!held) return;
    const id = encodeURIComponent(folder.id);
    const apply = this.action('Delete them here too', async () => {
      if (confirm(`Delete ${held.files} files here too? They go to this folder's archive.`)) await api('POST', `/folders/${id}/deletions/apply`);
    }, 'danger apply-deletions');
    const restore = this.action('Keep them and restore everywhere', () => api('POST', `/folders/${id}/deletions/restore`), 'primary restore-deletions');
    element.append(
      h('strong', null, `${held.files} files were deleted on another device (${held.devices.join(', ')}): not applied here yet.`),
      h('div', null, `Held because that is ${held.reason}. For example:`),
      h('ul', { class: 'failed-list' }, ...held.examples.map((path) => h('li', null, h('code', null, path)))),
      h('div', { class: 'actions' }, restore, apply),
    );
  }

  update(status: StatusReport): void {
    const seen = new Set<string>();
    for (const folder of status.folders) {
      seen.add(folder.id);
      let card = this.cards.get(folder.id);
      if (!card) {
        card = this.card(folder);
        this.cards.set(folder.id, card);
        this.list.append(card.root);
      }
      const percent = progressPercent(folder);
      setText(card.state, folder.state);
      card.state.className = `state ${folder.state}`;
      card.bar.value = percent;
      setText(card.percent, `${percent} %`);
      const connected = folder.peers.filter((p) => p.connected).length;
      const parts = [
        `${folder.localFiles} of ${folder.globalFiles} files`,
        `${formatBytes(folder.localBytes)}`,
        folder.needFiles ? `${folder.needFiles} to fetch (${formatBytes(folder.needBytes)})` : 'up to date',
        `${connected} ${connected === 1 ? 'peer' : 'peers'} connected`,
      ];
      if (folder.inRateBps) {
        const left = Math.max(0, folder.needBytes - (folder.partialBytes ?? 0));
        parts.push(`receiving ${formatRate(folder.inRateBps)}${left > 0 ? `, about ${timeLeft(left / folder.inRateBps)} left` : ''}`);
      }
      if (folder.filesInProgress) {
        parts.push(`${folder.filesInProgress} ${folder.filesInProgress === 1 ? 'file' : 'files'} in progress (${formatBytes(folder.partialBytes ?? 0)} of them here)`);
      }
      if (folder.localChanges) parts.push(`${folder.localChanges} local changes not synced (read-only)`);
      if (folder.grant) parts.push(`joined by a grant: ${folder.grant.status === 'active' ? `expires ${formatRelative(folder.grant.expiresAtMs)}` : folder.grant.status}`);
      setText(card.detail, parts.join(' · '));
      setText(card.error, folder.error ?? (folder.stalledReason ? `stalled: ${folder.stalledReason}` : ''));
      this.showPeers(card.peers, folder);
      this.showFailed(card.failed, folder);
      this.showHeld(card.held, folder);
      const conflicts = folder.conflicts ?? 0;
      card.conflicts.hidden = conflicts === 0;
      setText(card.conflicts, `${conflicts} ${conflicts === 1 ? 'conflict' : 'conflicts'}`);
      const paused = folder.state === 'paused';
      card.pause.dataset.paused = paused ? 'yes' : 'no';
      setText(card.pause, paused ? 'Resume' : 'Pause');
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.root.remove();
        this.cards.delete(id);
      }
    }
    this.empty.hidden = status.folders.length > 0;
  }
}
