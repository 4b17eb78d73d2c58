// The conflicts dialog: each conflict's two versions side by side (size, time, device) and one click to keep either or both.

import { api, ApiError, type ConflictListing, type ConflictReport, type ConflictVersionReport } from './api.js';
import { clear, formatBytes, formatTime, h } from './dom.js';
import { openDialog } from './dialogs.js';

/** Conflicts per page of the dialog (the API's most). */
const CONFLICT_PAGE = 500;

function device(version: ConflictVersionReport): string {
  return version.deviceName ? `${version.deviceName} (${version.device.slice(0, 7)})` : version.device.slice(0, 7);
}

function side(label: string, path: string, version: ConflictVersionReport, newer: boolean, button: HTMLButtonElement | null): HTMLElement {
  return h(
    'div',
    { class: 'conflict-side' },
    h('div', { class: 'conflict-label' }, label, newer ? h('span', { class: 'badge newer' }, 'newer') : null),
    h('code', { class: 'conflict-path' }, path),
    h(
      'dl',
      null,
      h('dt', null, 'Size'),
      h('dd', null, formatBytes(version.size)),
      h('dt', null, 'Changed'),
      h('dd', null, formatTime(version.mtimeMs)),
      h('dt', null, 'By'),
      h('dd', null, device(version)),
    ),
    button,
  );
}

/** Opens the dialog; the card's badge follows the status stream. */
export async function showConflicts(folderId: string, folderPath: string, access = 'rw'): Promise<void> {
  // Only a read-write device's choice is accepted by the others.
  const canResolve = access === 'rw';
  const id = encodeURIComponent(folderId);
  const message = h('div', { class: 'form-error', attrs: { role: 'alert', id: 'conflicts-message' } });
  const list = h('div', { class: 'conflict-list', attrs: { id: 'conflict-list' } });
  const summary = h('p', { class: 'hint', attrs: { id: 'conflicts-summary' } });
  // Names typed for a copy, by its path: a reload of the list (after another choice) keeps them.
  const typedNames = new Map<string, string>();

  const resolve = (conflict: ConflictReport, keep: 'original' | 'copy' | 'both', buttons: HTMLButtonElement[], name?: string): void => {
    for (const b of buttons) b.disabled = true;
    message.className = 'form-error';
    message.textContent = '';
    api<{ path: string; renamedTo?: string }>('POST', `/folders/${id}/conflicts/resolve`, { path: conflict.copyPath, keep, ...(name ? { name } : {}) })
      .then(async (done) => {
        typedNames.delete(conflict.copyPath);
        // The list is fresh before the message says done, so what the user does next acts on the new rows.
        await load();
        message.className = 'form-ok';
        message.textContent =
          keep === 'original' ? `Kept the original ${done.path}; the copy is in the archive.`
            : keep === 'copy' ? `Kept the copy as ${done.path}; the other version is in the archive.`
              : `Kept both: ${done.path} and ${done.renamedTo ?? ''}.`;
      })
      .catch((err: ApiError) => {
        message.className = 'form-error';
        message.textContent = err.message;
        for (const b of buttons) b.disabled = false;
      });
  };

  const row = (conflict: ConflictReport): HTMLElement => {
    const keepOriginal = h('button', { class: 'keep-original', attrs: { type: 'button' } }, 'Keep this one');
    const keepCopy = h('button', { class: 'keep-copy', attrs: { type: 'button' } }, 'Keep this one');
    const keepBoth = h('button', { class: 'keep-both', attrs: { type: 'button' } }, 'Keep both');
    const name = h('input', {
      class: 'both-name',
      attrs: { type: 'text', 'aria-label': 'New name of the copy (optional)', placeholder: 'Copy\'s new name (optional)', autocomplete: 'off', spellcheck: 'false' },
    });
    name.value = typedNames.get(conflict.copyPath) ?? '';
    name.addEventListener('input', () => typedNames.set(conflict.copyPath, name.value));
    const buttons = [keepOriginal, keepCopy, keepBoth];
    keepOriginal.addEventListener('click', () => resolve(conflict, 'original', buttons));
    keepCopy.addEventListener('click', () => resolve(conflict, 'copy', buttons));
    keepBoth.addEventListener('click', () => resolve(conflict, 'both', buttons, name.value.trim() || undefined));
    const originalNewer = conflict.original.mtimeMs >= conflict.copy.mtimeMs;
    return h(
      'article',
      { class: 'conflict', attrs: { 'data-path': conflict.path } },
      h('h3', { class: 'conflict-title' }, conflict.path),
      h(
        'div',
        { class: 'conflict-sides' },
        side('Has the name now', conflict.path, conflict.original, originalNewer, canResolve ? keepOriginal : null),
        side('Conflict copy', conflict.copyPath, conflict.copy, !originalNewer, canResolve ? keepCopy : null),
      ),
      canResolve ? h('div', { class: 'conflict-both' }, name, keepBoth) : null,
    );
  };

  const load = async (): Promise<void> => {
    const listing = await api<ConflictListing>('GET', `/folders/${id}/conflicts?limit=${CONFLICT_PAGE}`);
    clear(list);
    summary.textContent = listing.total === 0
      ? ''
      : `${listing.total} ${listing.total === 1 ? 'file was' : 'files were'} changed on two devices at once. Keep one version (the other goes to the archive) or both; the choice syncs to every device.` +
        (listing.truncated ? ` The first ${listing.conflicts.length} are shown.` : '') +
        (canResolve ? '' : ' This device holds the folder read-only: resolve them on a device with the read-write key.');
    if (listing.conflicts.length === 0) list.append(h('p', { class: 'empty' }, 'No conflicts.'));
    for (const conflict of listing.conflicts) list.append(row(conflict));
  };

  await load();
  openDialog('Conflicts', 'conflicts-dialog', h('p', { class: 'dialog-path' }, folderPath), summary, message, list);
}
