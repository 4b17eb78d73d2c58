// Dialogs: a folder's keys (copy buttons, QR codes) and its archive (browse, restore, purge).

import QRCode from 'qrcode';
import { api, ApiError, type ArchiveListing, type KeysReport } from './api.js';
import { clear, formatBytes, formatTime, h } from './dom.js';

export function openDialog(title: string, id: string, ...body: HTMLElement[]): HTMLDialogElement {
  document.getElementById(id)?.remove();
  const close = h('button', { class: 'close', attrs: { type: 'button', 'aria-label': 'Close' } }, '×');
  const dialog = h('dialog', { attrs: { id, 'aria-label': title } }, h('div', { class: 'dialog-head' }, h('h2', null, title), close), ...body);
  close.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** Copies text; falls back to a selection copy where the Clipboard API needs HTTPS (a NAS on http://). */
export async function copyText(text: string, input: HTMLInputElement): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    input.select();
    if (!document.execCommand('copy')) throw new Error('copy failed: select the key and copy it by hand');
  }
}

/** A QR code of `text` on a canvas (removed again if the text does not fit in one). */
export function qrCanvas(text: string, label: string, width = 176): HTMLCanvasElement {
  const canvas = h('canvas', { class: 'qr', attrs: { 'aria-label': label, role: 'img' } });
  QRCode.toCanvas(canvas, text, { width, margin: 1, errorCorrectionLevel: 'M' }).catch(() => canvas.remove());
  return canvas;
}

const KEY_KINDS: Array<{ name: 'rw' | 'ro' | 'enc'; label: string; hint: string }> = [
  { name: 'rw', label: 'Read-write', hint: 'Full control: give it only to your own devices.' },
  { name: 'ro', label: 'Read-only', hint: 'Receives the folder; its changes are never accepted.' },
  { name: 'enc', label: 'Encrypted', hint: 'Stores and serves the folder without reading names or content.' },
];

export async function showKeys(folderId: string): Promise<void> {
  const keys = await api<KeysReport>('GET', `/folders/${encodeURIComponent(folderId)}/keys`);
  const rows = KEY_KINDS.filter((kind) => keys[kind.name]).map((kind) => {
    const text = keys[kind.name]!;
    const input = h('input', { class: 'key', attrs: { type: 'text', readonly: true, value: text, 'aria-label': `${kind.label} key`, 'data-key': kind.name, spellcheck: 'false' } });
    const status = h('span', { class: 'copied', attrs: { role: 'status' } });
    const copy = h('button', { attrs: { type: 'button', 'data-copy': kind.name } }, 'Copy');
    copy.addEventListener('click', () => {
      copyText(text, input)
        .then(() => (status.textContent = 'Copied'))
        .catch((err: Error) => (status.textContent = err.message));
    });
    const canvas = qrCanvas(text, `QR code of the ${kind.label.toLowerCase()} key`);
    return h(
      'div',
      { class: `key-row ${kind.name}` },
      h('div', { class: 'key-text' }, h('h3', null, kind.label), h('p', { class: 'hint' }, kind.hint), h('div', { class: 'copy-line' }, input, copy), status),
      canvas,
    );
  });
  openDialog(
    'Folder keys',
    'keys-dialog',
    h('p', { class: 'dialog-path' }, keys.path),
    h('p', { class: 'hint' }, `Folder ID ${keys.folderId}. On another device: Join a folder with one of these keys.`),
    ...rows,
  );
}

/** Archived files per page of the archive dialog (the API's most). */
const ARCHIVE_PAGE = 1000;

export async function showArchive(folderId: string, path: string): Promise<void> {
  const id = encodeURIComponent(folderId);
  const message = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'archive-message' } });
  const table = h('table', { class: 'archive', attrs: { id: 'archive-table' } });
  const days = h('input', { attrs: { type: 'number', min: '0', max: '3650', step: '1', value: '30', id: 'purge-days', 'aria-label': 'days' } });
  const purge = h('button', { class: 'danger', attrs: { type: 'button' } }, 'Delete older');
  const restoreAll = h('button', { attrs: { type: 'button', id: 'archive-restore-all' } }, 'Restore all missing files');
  const newer = h('button', { attrs: { type: 'button', id: 'archive-newer' } }, 'Newer');
  const older = h('button', { attrs: { type: 'button', id: 'archive-older' } }, 'Older');
  const pageInfo = h('span', { class: 'hint', attrs: { id: 'archive-page' } });
  let offset = 0;

  const load = async (): Promise<void> => {
    const listing = await api<ArchiveListing>('GET', `/folders/${id}/archive?offset=${offset}&limit=${ARCHIVE_PAGE}`);
    if (listing.files.length === 0 && offset > 0) {
      offset = Math.max(0, offset - ARCHIVE_PAGE);
      return load();
    }
    newer.disabled = offset === 0;
    older.disabled = !listing.truncated;
    pageInfo.textContent = listing.files.length ? `${offset + 1}–${offset + listing.files.length} of ${listing.total ?? '?'}` : '';
    clear(table);
    table.append(h('thead', null, h('tr', null, h('th', null, 'File'), h('th', null, 'Archived'), h('th', null, 'Size'), h('th', null, ''))));
    const body = h('tbody');
    for (const file of listing.files) {
      const restore = h('button', { attrs: { type: 'button', 'data-archive-path': file.archivePath } }, 'Restore');
      restore.addEventListener('click', () => {
        restore.disabled = true;
        message.className = 'form-error';
        api<{ restored: string }>('POST', `/folders/${id}/archive/restore`, { archivePath: file.archivePath })
          .then(({ restored }) => {
            message.className = 'form-ok';
            message.textContent = `Restored ${restored}`;
            return load();
          })
          .catch((err: ApiError) => {
            message.textContent = err.message;
            restore.disabled = false;
          });
      });
      body.append(
        h('tr', null, h('td', { class: 'file' }, file.path), h('td', null, formatTime(file.archivedAtMs)), h('td', null, formatBytes(file.size)), h('td', null, restore)),
      );
    }
    if (listing.files.length === 0) body.append(h('tr', null, h('td', { attrs: { colspan: '4' }, class: 'empty' }, 'The archive is empty.')));
    table.append(body);
  };
  newer.addEventListener('click', () => {
    offset = Math.max(0, offset - ARCHIVE_PAGE);
    void load();
  });
  older.addEventListener('click', () => {
    offset += ARCHIVE_PAGE;
    void load();
  });
  restoreAll.addEventListener('click', () => {
    if (!confirm('Put back the newest archived version of every file that is missing from the folder? Files there now are left alone.')) return;
    restoreAll.disabled = true;
    api<{ restored: number; skipped: number; failed: number }>('POST', `/folders/${id}/archive/restore`, { all: true })
      .then(({ restored, skipped, failed }) => {
        message.className = failed ? 'form-error' : 'form-ok';
        message.textContent = `Restored ${restored} ${restored === 1 ? 'file' : 'files'}` +
          `${skipped ? `; ${skipped} left alone (a file is there now)` : ''}${failed ? `; ${failed} failed (see the log)` : ''}.`;
        return load();
      })
      .catch((err: ApiError) => {
        message.className = 'form-error';
        message.textContent = err.message;
      })
      .finally(() => (restoreAll.disabled = false));
  });

  purge.addEventListener('click', () => {
    const olderThanDays = Number(days.value);
    if (!days.checkValidity() || !Number.isInteger(olderThanDays)) {
      message.className = 'form-error';
      message.textContent = 'Days must be a whole number from 0 to 3650.';
      return;
    }
    if (!confirm(`Delete archived files older than ${olderThanDays} days for good?`)) return;
    api<{ purged: number }>('POST', `/folders/${id}/archive/purge`, { olderThanDays })
      .then(({ purged }) => {
        message.className = 'form-ok';
        message.textContent = `Deleted ${purged} archived ${purged === 1 ? 'file' : 'files'}.`;
        return load();
      })
      .catch((err: ApiError) => {
        message.className = 'form-error';
        message.textContent = err.message;
      });
  });

  await load();
  openDialog(
    'Archive',
    'archive-dialog',
    h('p', { class: 'dialog-path' }, path),
    h('p', { class: 'hint' }, 'Deleted and overwritten files are kept here. Restoring puts a file back where it was and syncs it to the peers.'),
    message,
    h('div', { class: 'archive-pages' }, newer, pageInfo, older, restoreAll),
    h('div', { class: 'table-wrap' }, table),
    h('div', { class: 'purge' }, h('span', null, 'Delete archived files older than'), days, h('span', null, 'days'), purge),
  );
}
